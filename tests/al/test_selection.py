"""Selection of utterances to label: direction, budgets, ties, errors, initial set, diversity."""

import math
import re
import subprocess
import sys

import numpy as np
import pytest

from espnet_lp.al.clustering import ClusteringError, kmeans, typical_order, typicality
from espnet_lp.al.selection import (
    Budget,
    SelectionError,
    initial_set,
    select,
    tie_breaker,
    total_hours,
)

H = 1 / 3600  # one second, in hours

# Per second: a 0.5, b 0.45, c 0.4, d 0.1. By score: b 18, c 12, a 5, d 1.
SCORES = {"a": 5.0, "b": 18.0, "c": 12.0, "d": 1.0}
DURS = {"a": 10.0, "b": 40.0, "c": 30.0, "d": 10.0}


@pytest.mark.parametrize("cost", ["duration", "none"])
def test_top_n_picks_highest_scores(cost):
    scores = {"lo": 0.1, "hi": 0.9, "mid": 0.5, "high2": 0.7}
    durs = {u: 1.0 for u in scores}
    assert select(scores, durs, Budget(utterances=2), cost=cost) == ["hi", "high2"]


def test_utterance_budget_ignores_duration():
    scores = {"short": 1.0, "long": 2.0}
    durs = {"short": 1.0, "long": 100.0}
    assert select(scores, durs, Budget(utterances=1)) == ["long"]


@pytest.mark.parametrize("cost, scores, expected", [
    # percentiles a .75, b 1, c .25, d .5; per second a .075, d .05, b .025, c .008:
    # a (50 s left), d (40 left), b (0 left), c does not fit
    ("duration", {"a": 3.0, "b": 4.0, "c": 1.0, "d": 2.0}, ["a", "d", "b"]),
    ("none", SCORES, ["b", "a", "d"]),  # b (20 s left), c 30 s skipped, a (10 left), d fits
])
def test_hours_budget_ranks_and_skips_what_does_not_fit(cost, scores, expected):
    assert select(scores, DURS, Budget(hours=60 * H), cost=cost) == expected


def test_per_second_ranking_is_right_for_negative_scores():
    """A ranking-trained LP head can output negative scores: the short utterance with the
    lower score is still worth more per second than the long one just above it."""
    scores, durs = {"long": -1.0, "short": -2.0}, {"long": 100.0, "short": 10.0}
    assert select(scores, durs, Budget(hours=100 * H)) == ["short"]
    assert select(scores, durs, Budget(hours=100 * H), cost="none") == ["long"]


@pytest.mark.parametrize("cost", ["duration", "none"])
def test_utterance_longer_than_budget_never_selected(cost):
    scores = {"long": 100.0, "short": 1.0}
    durs = {"long": 7200.0, "short": 60.0}
    assert select(scores, durs, Budget(hours=1.0), cost=cost) == ["short"]


@pytest.mark.parametrize("budget", [Budget(utterances=10), Budget(hours=100.0)])
def test_budget_larger_than_pool_takes_everything(budget):
    assert select(SCORES, DURS, budget, cost="none") == ["b", "c", "a", "d"]


@pytest.mark.parametrize("budget", [Budget(utterances=0), Budget(hours=0.0)])
def test_zero_budget_selects_nothing(budget):
    assert select(SCORES, DURS, budget) == []


@pytest.mark.parametrize("budget", [Budget(utterances=3), Budget(hours=1.0)])
def test_empty_pool_selects_nothing(budget):
    assert select({}, {}, budget) == []


def test_ties_broken_by_seed_whatever_the_dict_order():
    ids = [f"utt{i}" for i in range(8)]
    durs = {u: 1.0 for u in ids}
    forward = {u: 1.0 for u in ids}
    backward = {u: 1.0 for u in reversed(ids)}
    for seed in range(5):
        picked = select(forward, durs, Budget(utterances=3), seed=seed)
        assert picked == select(backward, durs, Budget(utterances=3), seed=seed)
        assert picked == sorted(ids, key=lambda u: tie_breaker(seed, u))[:3]
    firsts = {select(forward, durs, Budget(utterances=1), seed=s)[0] for s in range(10)}
    assert len(firsts) > 1


def test_ties_only_among_equal_scores():
    scores = {"x": 2.0, "y": 1.0, "z": 1.0}
    durs = {u: 1.0 for u in scores}
    for seed in range(5):
        assert select(scores, durs, Budget(utterances=2), seed=seed)[0] == "x"


def test_tie_breaker_is_stable_and_uniform_range():
    assert tie_breaker(0, "utt1") == 0.24346343078690924  # fixed: sha256, not hash()
    assert tie_breaker(7, "spk1-utt2") == 0.5617006185061909
    values = [tie_breaker(3, f"u{i}") for i in range(1000)]
    assert all(0.0 <= v < 1.0 for v in values)
    assert 0.4 < sum(values) / len(values) < 0.6


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_score_names_the_utterance(bad):
    scores = {"ok": 1.0, "spk1-bad": bad}
    with pytest.raises(SelectionError, match="'spk1-bad'.*not finite"):
        select(scores, {"ok": 1.0, "spk1-bad": 1.0}, Budget(utterances=1))


@pytest.mark.parametrize("durs, match", [
    ({"ok": 1.0}, "'spk1-x': no duration"),
    ({"ok": 1.0, "spk1-x": 0.0}, "'spk1-x': duration must be finite and > 0"),
    ({"ok": 1.0, "spk1-x": -2.0}, "'spk1-x': duration"),
    ({"ok": 1.0, "spk1-x": math.nan}, "'spk1-x': duration"),
])
def test_bad_duration_names_the_utterance(durs, match):
    with pytest.raises(SelectionError, match=match):
        select({"ok": 1.0, "spk1-x": 2.0}, durs, Budget(hours=1.0))


def test_unknown_cost_lists_the_valid_ones():
    with pytest.raises(SelectionError, match="duration, none.*'seconds'"):
        select(SCORES, DURS, Budget(utterances=1), cost="seconds")


def test_selection_error_is_a_value_error():
    assert issubclass(SelectionError, ValueError)


@pytest.mark.parametrize("conf, expected", [
    ({"utterances": 50}, Budget(utterances=50)),
    ({"hours": 1.5}, Budget(hours=1.5)),
    ({"hours": 2}, Budget(hours=2.0)),
    ({"utterances": 0}, Budget(utterances=0)),
])
def test_budget_from_config_accepts_both_forms(conf, expected):
    assert Budget.from_config(conf, "conf/al.yaml: budget") == expected


@pytest.mark.parametrize("conf", [
    {},
    {"utterances": 1, "hours": 1},
    {"utterances": -1},
    {"hours": -0.5},
    {"hours": math.nan},
    {"hours": math.inf},
    {"utterances": 1.5},
    {"utterances": True},
    {"minutes": 30},
    None,
    "50 utterances",
])
def test_budget_from_config_rejects_bad_forms(conf):
    where = "conf/al.yaml: budget"
    with pytest.raises(SelectionError, match=re.escape(where)):
        Budget.from_config(conf, where)


def test_budget_from_config_names_valid_forms():
    with pytest.raises(SelectionError, match=r"\{utterances: N\} or \{hours: H\}.*'minutes'"):
        Budget.from_config({"minutes": 30}, "round 1")


@pytest.mark.parametrize("kwargs", [{}, {"utterances": 1, "hours": 1.0}])
def test_budget_needs_exactly_one(kwargs):
    with pytest.raises(SelectionError, match="exactly one"):
        Budget(**kwargs)


@pytest.mark.parametrize("budget, text", [
    (Budget(utterances=50), "50 utterances"),
    (Budget(utterances=1), "1 utterance"),
    (Budget(hours=1.5), "1.5 h"),
])
def test_budget_describe(budget, text):
    assert budget.describe() == text


def _pool(n: int = 40, seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    return {f"utt{i:03d}": float(x) for i, x in enumerate(rng.uniform(1.0, 20.0, size=n))}


def test_initial_set_is_reproducible_and_in_tie_breaker_order():
    durs = _pool()
    picked = initial_set(durs, Budget(utterances=5), seed=3)
    assert picked == initial_set(dict(reversed(list(durs.items()))), Budget(utterances=5), 3)
    assert picked == sorted(durs, key=lambda u: tie_breaker(3, u))[:5]
    assert picked != initial_set(durs, Budget(utterances=5), seed=4)


def test_initial_set_fills_the_hours_budget():
    durs = _pool()
    budget = Budget(hours=60 * H)
    picked = initial_set(durs, budget, seed=0)
    assert picked == initial_set(durs, budget, seed=0)
    used = sum(durs[u] for u in picked)
    assert used <= 60.0 + 1e-6
    assert all(durs[u] > 60.0 - used for u in durs if u not in picked)  # nothing else fits
    assert total_hours(picked, durs) == pytest.approx(used / 3600)


def test_initial_set_rejects_bad_duration():
    with pytest.raises(SelectionError, match="'u2'"):
        initial_set({"u1": 1.0, "u2": -1.0}, Budget(utterances=1), seed=0)


def _two_clusters():
    """Cluster A (6 utts, all top scores) near (1, 0); cluster B (2 utts) near (0, 1)."""
    scores, emb = {}, {}
    for i in range(6):
        scores[f"a{i}"] = 10.0 - i
        emb[f"a{i}"] = [1.0, 0.01 * i]
    for i in range(2):
        scores[f"b{i}"] = 1.0 - 0.5 * i
        emb[f"b{i}"] = [0.01 * i, 1.0]
    return scores, {u: 10.0 for u in scores}, emb


@pytest.mark.parametrize("budget", [Budget(utterances=4), Budget(hours=40 * H)])
def test_diversity_takes_from_every_cluster_by_size(budget):
    scores, durs, emb = _two_clusters()
    plain = select(scores, durs, budget)
    assert plain == ["a0", "a1", "a2", "a3"]
    diverse = select(scores, durs, budget, embeddings=emb, num_clusters=2)
    assert diverse == ["a0", "a1", "a2", "b0"]  # quotas 4 * 6/8 = 3 and 4 * 2/8 = 1
    assert select(scores, durs, budget, embeddings=emb, num_clusters=1) == plain


def test_diversity_leftover_filled_by_global_ranking():
    scores, durs, emb = _two_clusters()
    durs["b0"] = durs["b1"] = 25.0  # B's share (10 s of 40) fits neither: A fills the rest
    diverse = select(scores, durs, Budget(hours=40 * H), embeddings=emb, num_clusters=2)
    assert diverse == ["a0", "a1", "a2", "a3"]


def test_diversity_more_clusters_than_utterances():
    scores, durs, emb = _two_clusters()
    picked = select(scores, durs, Budget(utterances=8), embeddings=emb, num_clusters=50)
    assert sorted(picked) == sorted(scores)


def test_diversity_missing_embedding_names_the_utterance():
    scores, durs, emb = _two_clusters()
    del emb["b1"]
    with pytest.raises(SelectionError, match="'b1': no embedding"):
        select(scores, durs, Budget(utterances=4), embeddings=emb, num_clusters=2)


def test_diversity_embeddings_of_different_lengths():
    scores, durs, emb = _two_clusters()
    emb["a3"] = [1.0, 0.0, 0.0]
    with pytest.raises(SelectionError, match=r"different lengths: \[2, 3\]"):
        select(scores, durs, Budget(utterances=4), embeddings=emb, num_clusters=2)


def test_kmeans_is_deterministic_and_finds_separated_blobs():
    rng = np.random.default_rng(0)
    means = np.array([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [0.0, 10.0, 0.0]])
    x = np.concatenate([m + 0.1 * rng.standard_normal((10, 3)) for m in means])
    labels = kmeans(x, 3, seed=5)
    np.testing.assert_array_equal(labels, kmeans(x, 3, seed=5))
    assert labels.shape == (30,)
    blobs = [set(labels[i * 10:(i + 1) * 10].tolist()) for i in range(3)]
    assert all(len(b) == 1 for b in blobs) and len(set.union(*blobs)) == 3


@pytest.mark.parametrize("k", [0, 4])
def test_kmeans_rejects_bad_k(k):
    with pytest.raises(ClusteringError, match=f"k={k}"):
        kmeans(np.zeros((3, 2)), k, seed=0)


def test_kmeans_identical_points():
    labels = kmeans(np.ones((5, 2)), 3, seed=0)
    assert labels.shape == (5,) and set(labels.tolist()) <= {0, 1, 2}


def test_kmeans_many_clusters_keeps_every_label_in_range():
    x = np.random.default_rng(1).standard_normal((500, 8))
    labels = kmeans(x, 100, seed=0)
    assert labels.min() >= 0 and labels.max() < 100 and len(set(labels.tolist())) > 80


# ---------------------------------------------------------------- typical acquisition
def test_typicality_is_higher_in_dense_regions():
    dense = 0.01 * np.arange(10)[:, None] * np.ones((1, 2))
    x = np.concatenate([dense, [[5.0, 5.0]]])
    typ = typicality(x, knn=3)
    assert typ.shape == (11,) and typ[:10].min() > 10 * typ[10]
    assert typicality(x[:1], knn=3).tolist() == [0.0]  # a lone point has no neighbours


def test_typical_order_is_a_permutation_largest_cluster_first():
    rng = np.random.default_rng(0)
    x = np.concatenate([[1.0, 0.0] + 0.01 * rng.standard_normal((12, 2)),
                        [0.0, 1.0] + 0.01 * rng.standard_normal((4, 2))])
    order = typical_order(x, 2, seed=0, knn=3, gate=0.5)
    assert sorted(order) == list(range(16))
    # level 0: the best-ranked typical point of the 12-point cluster, then of the 4-point one
    assert order[0] < 12 <= order[1]
    # the kept (typical) halves come first: 6 + 2 points, then the 8 gated out
    assert sum(i < 12 for i in order[:8]) == 6 and sum(i >= 12 for i in order[:8]) == 2


def _outlier_pool():
    """Three clusters of 20; in each, the best score sits on an outlier at the cluster's edge."""
    rng = np.random.default_rng(3)
    scores, emb, durs = {}, {}, {}
    for c, center in enumerate(([1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0])):
        for i in range(20):
            u = f"c{c}_{i:02d}"
            point = np.array(center) + 0.02 * rng.standard_normal(3)
            if i == 0:  # the outlier, best-scored of its cluster
                point = np.array(center) + 0.3 * np.roll([0.0, 1.0, 0.0], c)
            scores[u], emb[u], durs[u] = 100.0 - i - 0.1 * c, point.tolist(), 2.0
    return scores, durs, emb


def test_typical_picks_one_typical_utterance_per_cluster_not_the_outliers():
    scores, durs, emb = _outlier_pool()
    top = select(scores, durs, Budget(utterances=3))
    assert top == ["c0_00", "c1_00", "c2_00"]  # top-k: the three outliers
    picked = select(scores, durs, Budget(utterances=3), embeddings=emb, acquisition="typical",
                    typicality_knn=5)
    assert sorted(u[:2] for u in picked) == ["c0", "c1", "c2"]  # one per cluster
    assert not {"c0_00", "c1_00", "c2_00"} & set(picked)
    # among the typical half, the score decides: each pick is in its cluster's top 11
    assert all(int(u[3:]) <= 10 for u in picked)
    again = select(scores, durs, Budget(utterances=3), embeddings=emb, acquisition="typical",
                   typicality_knn=5)
    assert again == picked


def test_typical_fills_an_hours_budget():
    scores, durs, emb = _outlier_pool()
    picked = select(scores, durs, Budget(hours=13 * H), embeddings=emb, acquisition="typical")
    assert len(picked) == 6 and sorted({u[:2] for u in picked}) == ["c0", "c1", "c2"]


def test_typical_degenerate_pools():
    scores, durs, emb = _outlier_pool()
    # a budget as large as the pool takes it all (the gated-out points come last)
    assert sorted(select(scores, durs, Budget(utterances=60), embeddings=emb,
                         acquisition="typical")) == sorted(scores)
    # identical embeddings: one cloud, every point equally typical, the score decides
    same = {u: [1.0, 2.0, 3.0] for u in scores}
    assert select(scores, durs, Budget(utterances=3), embeddings=same,
                  acquisition="typical") == select(scores, durs, Budget(utterances=3))


@pytest.mark.parametrize("kwargs, match", [
    ({}, "acquisition typical needs the pool's embeddings"),
    ({"embeddings": "emb", "typicality_knn": 0}, "knn must be an integer >= 1"),
    ({"embeddings": "emb", "typicality_gate": 0.0}, r"gate must be in \(0, 1\]"),
    ({"embeddings": "emb", "typicality_gate": 1.5}, r"gate must be in \(0, 1\]"),
])
def test_typical_bad_settings_are_clear_errors(kwargs, match):
    scores, durs, emb = _outlier_pool()
    if kwargs.get("embeddings") == "emb":
        kwargs["embeddings"] = emb
    with pytest.raises(SelectionError, match=match):
        select(scores, durs, Budget(utterances=3), acquisition="typical", **kwargs)


# ---------------------------------------------------------------- softrank acquisition
POOL = {f"u{i:03d}": float(i) for i in range(200)}  # u199 scores highest
POOL_DURS = {u: 2.0 for u in POOL}


def test_softrank_is_deterministic_per_seed_and_round_and_draws_anew_each_round():
    def pick(seed, r):
        return select(POOL, POOL_DURS, Budget(utterances=20), acquisition="softrank",
                      seed=seed, round_index=r)

    assert pick(0, 1) == pick(0, 1)
    assert pick(0, 1) != pick(0, 2) and pick(0, 1) != pick(1, 1)


def test_softrank_favours_the_top_but_spreads_over_the_ranking():
    top = set(select(POOL, POOL_DURS, Budget(utterances=20)))
    in_top, ranks = 0, []
    for r in range(30):
        chosen = select(POOL, POOL_DURS, Budget(utterances=20), acquisition="softrank",
                        round_index=r)
        assert len(chosen) == len(set(chosen)) == 20
        in_top += len(top & set(chosen))
        ranks += [199 - POOL[u] for u in chosen]
    # uniform sampling would put 10% of the picks in the top 20; top-k 100%
    assert 0.2 < in_top / (30 * 20) < 0.9
    assert np.median(ranks) < 60 and max(ranks) > 100


def test_softrank_limits_are_topk_and_uniform():
    budget = Budget(utterances=20)
    assert select(POOL, POOL_DURS, budget, acquisition="softrank", beta=1e6) == \
        select(POOL, POOL_DURS, budget)
    ranks = [199 - POOL[u] for r in range(30) for u in select(
        POOL, POOL_DURS, budget, acquisition="softrank", beta=0.0, round_index=r)]
    assert 70 < np.mean(ranks) < 130  # uniform over 0..199: mean 99.5


def test_softrank_fills_an_hours_budget_and_works_with_diversity():
    durs = {u: 1.0 + (i % 5) for i, u in enumerate(POOL)}
    chosen = select(POOL, durs, Budget(hours=60 * H), acquisition="softrank")
    assert 55 <= sum(durs[u] for u in chosen) <= 60
    emb = {u: [math.cos(i), math.sin(i)] for i, u in enumerate(POOL)}
    diverse = select(POOL, POOL_DURS, Budget(utterances=16), acquisition="softrank",
                     embeddings=emb, num_clusters=4)
    assert len(set(diverse)) == 16


@pytest.mark.parametrize("kwargs, match", [
    ({"acquisition": "sample"}, "acquisition must be one of topk, softrank, typical"),
    ({"acquisition": "softrank", "beta": -1.0}, "beta must be a number >= 0"),
    ({"acquisition": "softrank", "beta": float("nan")}, "beta must be a number >= 0"),
])
def test_bad_acquisition_settings_are_clear_errors(kwargs, match):
    with pytest.raises(SelectionError, match=match):
        select(POOL, POOL_DURS, Budget(utterances=2), **kwargs)


def test_module_imports_neither_torch_nor_espnet():
    code = ("import sys, espnet_lp.al.selection; "
            "print(sorted(m for m in ('torch', 'espnet', 'espnet2') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

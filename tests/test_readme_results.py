"""The README's Results table quotes the committed benchmark files, figure for figure.

Issue 13's "done when": the README's numbers match ``tools/bench/results/``. A benchmark
rerun rewrites its JSON; these tests then fail until the README quotes the new figures, so
the table cannot drift from its files. Each figure is recomputed here from the JSON (means,
spreads, the best baseline, paired differences, goal verdicts) and must appear, formatted
as the README rounds it, in the row of its claim.
"""

import json
import re
from pathlib import Path
from typing import Dict, List

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "tools" / "bench" / "results"


def results_rows() -> Dict[str, str]:
    """First cell of each row of the README's Results table -> the whole row."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Results\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    assert len(rows) >= 3, "the README's Results section lost its table"
    return {line.split(" | ", 1)[0][2:]: line for line in rows[1:]}  # [0]: the header


def row(claim_start: str) -> str:
    hits = [text for claim, text in results_rows().items() if claim.startswith(claim_start)]
    assert len(hits) == 1, f"one Results row should start with {claim_start!r}, found {len(hits)}"
    return hits[0]


def load(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text())


def pm(stat: dict, scale: float = 1.0, digits: int = 2) -> str:
    """``mean ± sd`` as the README writes it."""
    return f"{stat['mean'] * scale:.{digits}f} ± {stat['sd'] * scale:.{digits}f}"


def spread(stat: dict, digits: int = 2) -> str:
    """``median [min, max]`` as the README writes it."""
    return (f"{stat['median']:.{digits}f} [{stat['min']:.{digits}f}, "
            f"{stat['max']:.{digits}f}]")


def signed(points: float) -> str:
    return f"{points:+.2f}"


def assert_quotes(text: str, figures: List[str]):
    missing = [f for f in figures if f not in text]
    assert not missing, f"README Results row does not quote {missing}:\n{text}"


def test_lp_quality_row_quotes_lp_quality_json():
    d = load("lp_quality")
    text = row("LP ranks unseen utterances")
    lp = [d["spearman"], d["within_condition"]["clean"], d["within_condition"]["other"]]

    def means(score: dict) -> str:
        figures = [score["spearman"], score["within_condition"]["clean"],
                   score["within_condition"]["other"]]
        return " / ".join(f"{s['mean']:.2f}" for s in figures)

    best = max(d["baselines"], key=lambda b: d["baselines"][b]["spearman"]["mean"])
    assert_quotes(text, [" / ".join(pm(s) for s in lp),
                         f"best baseline (`{best}`) {means(d['baselines'][best])}",
                         f"`ctc_confidence` {means(d['baselines']['ctc_confidence'])}"])
    above_all = all(
        lp_stat["mean"] > max(b[key]["mean"] if key == "spearman" else b["within_condition"]
                              [key]["mean"] for b in d["baselines"].values())
        for key, lp_stat in zip(["spearman", "clean", "other"], lp))
    assert ("above every baseline (met" in text) == above_all
    assert (">= 0.85 (met)" if d["spearman"]["mean"] >= 0.85 else ">= 0.85 (missed)") in text


def test_scoring_cost_row_quotes_scoring_cost_json():
    d = load("scoring_cost")
    text = row("LP scoring is as cheap")
    ratio = d["lp_over_encoder"]
    ratio_text = f"{ratio['median']:.2f}x [{ratio['min']:.2f}, {ratio['max']:.2f}]"
    assert_quotes(text, [ratio_text, f"beam 10: {d['lc_beam10_over_lp']:.0f}x LP"])
    met = ratio["median"] <= 1.1 and d["lc_beam10_over_lp"] >= 20
    assert ("(met)" in text) == met


def test_kd_rows_quote_kd_speedup_json():
    d = load("kd_speedup")
    epochs = d["epochs_ratio"]
    assert f"{epochs['online']['mean']:.2f}" == f"{epochs['cache']['mean']:.2f}", (
        "the README quotes one epochs ratio for both teachers")
    assert_quotes(row("KD reaches the no-KD student"), [pm(epochs["cache"])])
    cpu = d["cpu_ratio"]["cache"]
    assert_quotes(row("... and in less time with the cache"), [spread(cpu)])
    assert ("(met)" in row("KD reaches")) == (epochs["cache"]["mean"] <= 0.5)
    assert ("(met)" in row("... and in less time")) == (cpu["median"] <= 0.6)


def test_english_label_efficiency_row_quotes_its_json():
    top_k, typical = load("label_efficiency_en"), load("label_efficiency_en_typical")
    assert top_k["headline_set"] == typical["headline_set"] == "test_clean"
    text = row("LP saves labels (English")
    aulc = top_k["aulc"]
    rest = {s: a for s, a in aulc.items()
            if s not in ("random", "loss_prediction", "true_loss")}
    best_rest = min(rest, key=lambda s: rest[s]["mean"])
    final = top_k["sets"]["test_clean"]["final"]["random"]
    other = top_k["sets"]["test_other"]["aulc"]
    assert_quotes(text, [
        f"random **{pm(aulc['random'], 100, 1)}**",
        f"LP {pm(aulc['loss_prediction'], 100, 1)} with top-k",
        f"{pm(typical['aulc']['loss_prediction'], 100, 1)} with typicality-gated",
        f"`{best_rest}` {pm(rest[best_rest], 100, 1)}",
        f"`true_loss` {pm(aulc['true_loss'], 100, 1)}",
        f"random's final CER ({pm(final, 100, 1)})",
        f"within {min(a['mean'] for a in other.values()) * 100:.1f}-"
        f"{max(a['mean'] for a in other.values()) * 100:.1f}",
    ])
    assert all(r is None for s, r in top_k["hours_ratio"].items() if s != "random"), (
        "the row says no strategy reaches random's final CER")
    assert min(other, key=lambda s: other[s]["mean"]) == "random"


@pytest.mark.parametrize("name, strategy, label", [
    ("warm_dev", "loss_prediction", "top-k LP"),
    ("warm_bpe_dev", "loss_prediction", "BPE-100 tokens"),
    ("warm_typical_dev", "loss_prediction", "typicality-gated"),
    ("warm_softrank_dev", "loss_prediction", "softrank"),
    ("warm_diverse_dev", "lp_diverse", "`lp_diverse`"),
])
def test_warm_english_row_quotes_each_acquisitions_paired_difference(name, strategy, label):
    d = load(f"label_efficiency_en_{name}")
    paired = [d["sets"][s]["aulc_vs_random"][strategy]["mean"] * 100
              for s in ("dev_clean", "dev_other")]
    text = row("LP saves labels past the cold start")
    mean = sum(paired) / 2
    assert re.search(re.escape(label) + r"[^,;]*?" + re.escape(signed(mean)), text), (
        f"{label}: expected {signed(mean)} in {text}")


def test_warm_english_row_verdict_and_the_oracle():
    text = row("LP saves labels past the cold start")
    means = []
    for name, strategy in [("warm_dev", "loss_prediction"), ("warm_bpe_dev", "loss_prediction"),
                           ("warm_typical_dev", "loss_prediction"),
                           ("warm_softrank_dev", "loss_prediction"),
                           ("warm_diverse_dev", "lp_diverse")]:
        sets = load(f"label_efficiency_en_{name}")["sets"]
        means.append(sum(sets[s]["aulc_vs_random"][strategy]["mean"]
                         for s in ("dev_clean", "dev_other")) / 2)
    assert ("(missed: none sent)" in text) == (min(means) >= 0)
    warm = load("label_efficiency_en_warm_dev")["sets"]
    typical = load("label_efficiency_en_warm_typical_dev")["sets"]
    assert_quotes(text, [
        f"{signed(warm['dev_clean']['aulc_vs_random']['true_loss']['mean'] * 100)} on dev_clean",
        f"(dev_clean {pm(typical['dev_clean']['aulc_vs_random']['loss_prediction'], 100)})",
    ])


def test_mandarin_row_quotes_label_efficiency_zh_json():
    d = load("label_efficiency_zh")
    assert d["headline_set"] == "test"
    text = row("LP saves labels (Mandarin")
    aulc, paired = d["aulc"], d["aulc_vs_random"]["loss_prediction"]
    rest = [a["mean"] * 100 for s, a in aulc.items()
            if s not in ("random", "loss_prediction", "true_loss")]
    dev = d["sets"]["dev"]
    dev_lp = dev["aulc_vs_random"]["loss_prediction"]
    assert_quotes(text, [
        f"LP **{pm(aulc['loss_prediction'], 100, 1)}**",
        f"random {pm(aulc['random'], 100, 1)}",
        f"LP lower in {paired['lower_in_seeds']} of {paired['seeds']} seeds",
        f"paired difference {pm(paired, 100)} points",
        f"`true_loss` {pm(aulc['true_loss'], 100, 1)}",
        f"the rest {min(rest):.1f}-{max(rest):.1f}",
        f"hours ratio LP {d['hours_ratio']['loss_prediction']:.2f}",
        f"(acquired hours {d['acquired_ratio']['loss_prediction']:.2f})",
        f"on dev random is lowest ({dev['aulc']['random']['mean'] * 100:.1f}; "
        f"LP {signed(dev_lp['mean'] * 100)} ± {dev_lp['sd'] * 100:.2f})",
    ])
    assert min(dev["aulc"], key=lambda s: dev["aulc"][s]["mean"]) == "random"
    assert d["hours_ratio"]["loss_prediction"] > 0.5 and "missed" in text


@pytest.mark.parametrize("label, score", [
    ("`ctc_confidence`", "ctc_confidence"),
    ("`least_confidence` (beam 4)", "least_confidence"),
    ("`estimated_loss`", "estimated_loss"),
    ("LP, jointly trained heads (the paper)", "joint"),
    ("LP, heads refit on dev (`lp_refit`, the default)", "default"),
])
def test_benchmarks_lp_quality_table_quotes_lp_quality_json(label, score):
    d = load("lp_quality")
    if score in d["baselines"]:
        b = d["baselines"][score]
        stats = [b["spearman"], b["within_condition"]["clean"], b["within_condition"]["other"]]
    else:
        report = d["variants"][d["lp_variant"] if score == "default" else score]["report"]
        stats = [report["all"], report["clean"], report["other"]]
    text = (ROOT / "README.md").read_text().split("\n## Benchmarks\n", 1)[1]
    cells = [pm(s) for s in stats]
    pattern = (r"\|\s*" + re.escape(label) + r"\s*\|"
               + r"\|".join(r"\s*(?:\*\*)?" + re.escape(c) + r"(?:\*\*)?\s*" for c in cells)
               + r"\|")
    assert re.search(pattern, text), f"no lp_quality row {label} | {' | '.join(cells)}"

"""tools/bench/label_efficiency.py: the learning-curve plots of the reported sets.

The benchmark itself takes hours; these check what it writes from a finished run's rounds.
"""

import fcntl
import json
import shutil
import threading
import time
from pathlib import Path

import pytest
import torch

from tests.al.test_report import LOSS_PREDICTION, PNG_MAGIC, RANDOM, write_round

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def bench(tmp_path, monkeypatch):
    """The script's module, writing under tmp_path, never into the repository."""
    monkeypatch.syspath_prepend(str(ROOT / "tools" / "bench"))
    import label_efficiency

    monkeypatch.setattr(label_efficiency, "ROOT", tmp_path / "repo")
    (tmp_path / "repo" / "tools" / "bench" / "results").mkdir(parents=True)
    return label_efficiency


def test_one_plot_per_reported_set_the_headline_under_the_name(bench, tmp_path):
    al_dir = tmp_path / "al"
    for strategy, per_seed in (("random", RANDOM), ("loss_prediction", LOSS_PREDICTION)):
        for seed, wers in enumerate(per_seed):
            for rnd, wer in enumerate(wers):
                write_round(al_dir, strategy, seed, rnd, wer)
    pngs = bench.plot_sets(al_dir, ["dev_clean", "test_clean"], "wer", "label_efficiency_en",
                           "test_clean")
    # the headline set is the one under the result's own name (the README shows it)
    assert pngs == {"test_clean": "label_efficiency_en.png",
                    "dev_clean": "label_efficiency_en_dev_clean.png"}
    results = tmp_path / "repo" / "tools" / "bench" / "results"
    images = {name: (results / name).read_bytes() for name in pngs.values()}
    assert all(data.startswith(PNG_MAGIC) for data in images.values())
    assert len(set(images.values())) == 2  # two sets, two different curves
    assert sorted(p.name for p in results.iterdir()) == sorted(pngs.values())


def test_a_set_without_results_is_a_clear_error(bench, tmp_path):
    from espnet_lp.al.report import ReportError

    write_round(tmp_path / "al", "random", 0, 0, 0.5)
    with pytest.raises(ReportError, match="test_other"):
        bench.plot_sets(tmp_path / "al", ["test_other"], "wer", "label_efficiency_en", "test_other")
    assert not any((tmp_path / "repo" / "tools" / "bench" / "results").iterdir())


# ---- units kept over sessions ---------------------------------------------------------------
UTTS = [f"u{i:02d}" for i in range(12)]


def fake_recipe_run(rounds, calls, die_after=None, machine="m1", trained=None):
    """Stands in for the recipe: its data stages (``stage`` 1, no unit), or stage 5 of one
    unit: what the loop writes (round 0's shared lists, figures and model, trained unless a
    ``checkpoint.pth`` is there to resume, in bytes that differ by ``machine``; every
    round's metrics.json, selected, round 0's pool scores)."""

    def run_recipe(args, recipe_dir, run_metric, seed, strategy, stage):
        assert recipe_dir.is_dir()
        if die_after is not None and len(calls) == die_after:
            raise KeyboardInterrupt("the machine went away")
        calls.append((seed, strategy, stage))
        if strategy is None:
            return
        meta = recipe_dir / "downloads/synth/synth_meta/aishell_utterances.tsv"
        meta.parent.mkdir(parents=True, exist_ok=True)
        meta.write_text("utt_id\tcondition\tduration\n" + "".join(
            f"{u}\t{'other' if i % 2 else 'clean'}\t{2.0 + i}\n" for i, u in enumerate(UTTS)))
        al = recipe_dir / "exp" / "al" / f"seed{seed}"
        initial = al / "initial" / "round0"
        initial.mkdir(parents=True, exist_ok=True)
        model = initial / "model"
        if not (model / "checkpoint.pth").exists():  # round 0 trained here
            if trained is not None:
                trained.append((seed, machine))
            model.mkdir()
            for epoch in (3, 7):
                (model / f"{epoch}epoch.pth").write_bytes(f"{seed} {machine} {epoch}".encode())
            (model / "valid.acc.best.pth").symlink_to("3epoch.pth")
            torch.save({"model": {"w": torch.full((2,), float(seed))}, "optimizers": [
                {"state": {0: {"exp_avg": torch.ones(1000)}}, "param_groups": []}]},
                model / "checkpoint.pth")
        (initial / "labeled").write_text("".join(f"{u}\n" for u in UTTS[:4]))
        (initial / "pool").write_text("".join(f"{u}\n" for u in UTTS[4:]))
        base = 0.8 + 0.01 * seed
        (initial / "shared_metrics.json").write_text(json.dumps(
            {"decode": {"dev": {"cer": base}, "test": {"cer": base}}}))
        step = {"random": 0.05, "loss_prediction": 0.07, "true_loss": 0.08}[strategy]
        for r in range(rounds + 1):
            d = al / strategy / f"round{r}"
            d.mkdir(parents=True, exist_ok=True)
            cer = base - step * r
            (d / "metrics.json").write_text(json.dumps(
                {"strategy": strategy, "seed": seed, "round": r, "labeled_utterances": 4 + 2 * r,
                 "labeled_hours": 0.1 * (r + 1), "simulation_only": strategy == "true_loss",
                 "decode": {"dev": {"cer": cer, "utterances": 5},
                            "test": {"cer": cer + 0.01, "utterances": 5}}}))
            if r < rounds:
                (d / "selected").write_text(f"{UTTS[5 + 2 * r]} 1.0 x\n{UTTS[4 + 2 * r]} 0.5 x\n")
            if r == 0:
                (d / "scores.tsv").write_text("".join(
                    f"{u}\t{(i * (3 if strategy == 'true_loss' else 7)) % 11}\n"
                    for i, u in enumerate(UTTS[4:])))

    return run_recipe


@pytest.fixture
def repo(bench, tmp_path, monkeypatch):
    """A checkout for the bench: the recipe dir, the AL config; results captured."""
    root = tmp_path / "repo"
    (root / "egs" / "aishell" / "al1").mkdir(parents=True)
    (root / "egs" / "TEMPLATE").mkdir()
    (root / "conf" / "al").mkdir(parents=True)
    (root / "conf" / "al" / "bench_zh.yaml").write_text(
        (ROOT / "conf" / "al" / "bench_zh.yaml").read_text())
    written = {}
    monkeypatch.setattr(bench, "write_results", lambda name, data, table, header, **kw:
                        written.update({name: (data, table), f"{name} notes": kw["notes"]}))
    monkeypatch.setattr(bench, "git_commit", lambda: "abc1234")
    return root, written


def bench_cmd(work, seeds):
    return ["--lang", "zh", "--work_dir", str(work), "--seeds", seeds, "--rounds", "2",
            "--strategies", "random loss_prediction true_loss", "--nj", "1"]


def test_units_kept_in_one_session_are_not_run_again_in_the_next(bench, repo, tmp_path,
                                                                 monkeypatch):
    root, written = repo
    calls = []
    monkeypatch.setattr(bench, "run_recipe", fake_recipe_run(2, calls, die_after=5))
    with pytest.raises(KeyboardInterrupt):  # the first machine goes away mid-benchmark
        bench.main(bench_cmd(tmp_path / "machine1", "0 1"))
    runs = root / "tools/bench/runs/label_efficiency_zh"
    # the data stages once per work dir, then the papers' comparison first
    assert calls == [(None, None, 1), (0, "random", 5), (0, "loss_prediction", 5),
                     (0, "true_loss", 5), (1, "random", 5)]
    assert sorted(p.parent.relative_to(runs).as_posix() for p in runs.glob("*/*/unit.json")) \
        == ["seed0/loss_prediction", "seed0/random", "seed0/true_loss", "seed1/random"]
    assert not written
    # a fresh machine, a fresh work dir: only the units not kept run; then the report
    calls.clear()
    trained = []
    monkeypatch.setattr(bench, "run_recipe", fake_recipe_run(2, calls, machine="m2",
                                                             trained=trained))
    bench.main(bench_cmd(tmp_path / "machine2", "0 1"))
    assert calls == [(None, None, 1), (1, "loss_prediction", 5), (1, "true_loss", 5)]
    assert not trained  # seed 1's round 0 restored from the first machine's model
    data, table = written["label_efficiency_zh"]
    assert data["seeds"] == [0, 1] and data["round0_same_everywhere"] is True
    assert data["unit_commits"] == ["abc1234"]
    assert data["sets"]["test"]["aulc"]["random"]["sd"] is not None  # over the two seeds
    assert data["aulc"]["loss_prediction"]["mean"] < data["aulc"]["random"]["mean"]
    paired = data["aulc_vs_random"]["loss_prediction"]
    assert (paired["seeds"], paired["lower_in_seeds"]) == (2, 2)
    assert paired["mean"] == pytest.approx(data["aulc"]["loss_prediction"]["mean"]
                                           - data["aulc"]["random"]["mean"])
    # random's final CER after 2 of its 2 rounds, LP's after 0.1 / 0.07 of them: the hours
    # ratio counts the shared 0.1 h of round 0, the acquired-hours ratio does not
    assert data["hours_ratio"]["loss_prediction"] == pytest.approx((0.1 + 0.1 / 0.7) / 0.3)
    assert data["acquired_ratio"]["loss_prediction"] == pytest.approx((0.1 / 0.7) / 0.2)
    assert data["per_round"]["test"]["random"][2]["per_seed"] == \
        {0: pytest.approx(0.71), 1: pytest.approx(0.72)}
    assert data["pool"] == {"utterances": 12, "hours": pytest.approx(sum(
        2.0 + i for i in range(12)) / 3600, abs=0.01)}
    assert data["selected"]["loss_prediction"]["utterances"] == 8  # 2 rounds x 2 x 2 seeds
    assert set(data["round0_pool_spearman"]) == {"loss_prediction"}
    notes = written["label_efficiency_zh notes"]
    assert any(n.startswith("true_loss reads the hidden transcripts") for n in notes)
    assert any(n.startswith("Round-0 scores vs") and "loss_prediction" in n for n in notes)
    recipe_results = (root / "egs/aishell/al1/RESULTS.md").read_text()
    assert recipe_results.startswith(
        "<!-- tools/bench/label_efficiency.py --lang zh, commit abc1234 -->")
    # the committed file names the kept runs by their path in the repository
    assert "Source: `tools/bench/runs/label_efficiency_zh` (" in recipe_results
    assert str(tmp_path) not in recipe_results
    # --report_only remakes it from the kept records alone, on a machine with no work dir
    written.clear()
    monkeypatch.setattr(bench, "run_recipe", fake_recipe_run(2, calls, die_after=0))
    bench.main(bench_cmd(tmp_path / "machine3", "0") + ["--report_only"])
    assert written["label_efficiency_zh"][1] == table
    assert not (tmp_path / "machine3" / "egs").exists()


def test_units_of_other_settings_or_another_round0_are_not_mixed(bench, repo, tmp_path,
                                                                 monkeypatch, capsys):
    root, written = repo
    calls = []
    with pytest.raises(SystemExit, match="no kept units"):
        bench.main(bench_cmd(tmp_path / "m0", "0") + ["--report_only"])
    assert not (root / "tools" / "bench" / "runs").exists()
    monkeypatch.setattr(bench, "run_recipe", fake_recipe_run(2, calls, die_after=2))
    with pytest.raises(KeyboardInterrupt):
        bench.main(bench_cmd(tmp_path / "m1", "0"))
    more_rounds = bench_cmd(tmp_path / "m2", "0")
    more_rounds[more_rounds.index("--rounds") + 1] = "3"
    with pytest.raises(SystemExit, match=r"other settings \(rounds: 2 -> 3\)"):
        bench.main(more_rounds)
    assert calls == [(None, None, 1), (0, "random", 5)]
    # units kept before round-0 models were: round 0 trained again, compared by its figures,
    # and its model kept from then on
    trained = []
    runs = root / "tools/bench/runs/label_efficiency_zh"
    shutil.rmtree(runs / "seed0/initial/round0/model")
    monkeypatch.setattr(bench, "run_recipe", fake_recipe_run(2, calls, machine="m2",
                                                             trained=trained))
    bench.main(bench_cmd(tmp_path / "m2b", "0") + ["--strategies", "random loss_prediction"])
    assert trained == [(0, "m2")] and "round 0 differs" not in capsys.readouterr().out
    assert json.loads((runs / "seed0/loss_prediction/unit.json").read_text())[
        "round0_same_as_kept"] is True
    shutil.rmtree(runs / "seed0/loss_prediction")
    # another machine restores the kept round-0 model instead of training it again
    trained.clear()
    kept_model = root / "tools/bench/runs/label_efficiency_zh/seed0/initial/round0/model"
    assert sorted(p.name for p in kept_model.iterdir()) == \
        ["3epoch.pth", "7epoch.pth", "checkpoint.pth"]  # no links; no optimizer moments:
    assert torch.load(kept_model / "checkpoint.pth")["optimizers"][0]["state"] == {}
    monkeypatch.setattr(bench, "run_recipe", fake_recipe_run(2, calls, machine="m3",
                                                             trained=trained))
    bench.main(bench_cmd(tmp_path / "m3", "0") + ["--strategies", "random loss_prediction"])
    assert not trained and "round 0 differs" not in capsys.readouterr().out
    assert json.loads((kept_model.parents[2] / "loss_prediction/unit.json").read_text()) == \
        {"commit": "abc1234", "round0_same_as_kept": True}
    # round 0 trained again elsewhere (not restored) comes out different: kept, said loudly
    monkeypatch.setattr(bench, "restore_round0_model", lambda kept, model_dir: False)
    monkeypatch.setattr(bench, "run_recipe", fake_recipe_run(2, calls, machine="m4",
                                                             trained=trained))
    bench.main(bench_cmd(tmp_path / "m4", "0"))
    assert trained == [(0, "m4")]
    assert "round 0 differs from the kept one" in capsys.readouterr().out
    assert written["label_efficiency_zh"][0]["round0_same_everywhere"] is False


def test_invocations_sharing_a_work_dir_run_its_data_stages_once(bench, repo, tmp_path,
                                                                 monkeypatch):
    """One invocation per core, other seeds, one work dir: the second waits for the first's
    data stages (a lock), then runs only its own units."""
    calls = []
    monkeypatch.setattr(bench, "run_recipe", fake_recipe_run(2, calls))
    work = tmp_path / "work"
    work.mkdir()
    waiting, errors = threading.Event(), []
    real_flock = fcntl.flock

    def flock(fd, op):  # says when the second invocation is about to wait on the lock
        waiting.set()
        real_flock(fd, op)

    def second_invocation():
        try:
            bench.main(bench_cmd(work, "1"))
        except BaseException as error:  # re-raised in the test's thread
            errors.append(error)

    second = threading.Thread(target=second_invocation)
    lock = open(work / "bench_settings.lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the first invocation, in its data stages
        monkeypatch.setattr(bench.fcntl, "flock", flock)
        second.start()
        assert waiting.wait(timeout=30)
        time.sleep(0.2)
        assert not calls and second.is_alive()  # waiting, not preparing the data again
        monkeypatch.setattr(bench.fcntl, "flock", real_flock)
        bench.main(bench_cmd(tmp_path / "elsewhere", "0"))  # stands in for the first's data
        shutil.copy(tmp_path / "elsewhere/bench_settings.json", work / "bench_settings.json")
        shutil.copytree(tmp_path / "elsewhere/egs", work / "egs", symlinks=True)
        calls.clear()
    finally:
        lock.close()  # releases the lock
        second.join(timeout=30)
    if errors:
        raise errors[0]
    assert not second.is_alive()
    assert calls == [(1, "random", 5), (1, "loss_prediction", 5), (1, "true_loss", 5)]
    # a work dir made with other settings is refused, before anything runs
    calls.clear()
    stamp = work / "bench_settings.json"
    stamp.write_text(stamp.read_text().replace('"rounds": 2', '"rounds": 9'))
    with pytest.raises(SystemExit, match="made with other settings"):
        bench.main(bench_cmd(work, "2"))
    assert not calls


def test_a_run_without_the_oracle_has_no_oracle_notes(bench, repo, tmp_path, monkeypatch):
    root, written = repo
    monkeypatch.setattr(bench, "run_recipe", fake_recipe_run(2, []))
    bench.main(["--lang", "zh", "--work_dir", str(tmp_path / "m"), "--seeds", "0",
                "--rounds", "2", "--strategies", "random loss_prediction", "--nj", "1"])
    data, _ = written["label_efficiency_zh"]
    assert set(data["aulc"]) == {"random", "loss_prediction"}
    assert data["round0_pool_spearman"] == {}
    notes = written["label_efficiency_zh notes"]
    assert not any("true_loss" in n or n.startswith("Round-0") for n in notes)
    assert any(n.startswith("Learning curves") for n in notes)

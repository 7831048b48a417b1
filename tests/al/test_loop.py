"""The active-learning loop end to end on the generated corpus, resume after SIGKILL, lock."""

import json
import os
import signal
import subprocess
import sys

import pytest
import yaml

from espnet_lp.al.score_files import merge_shards
from espnet_lp.al.selection import Budget, select
from espnet_lp.al.state import read_ids
from tests.asr.conftest import TINY

STAGES = ["initial/round0/annotate", "initial/round0/train", "initial/round0/decode",
          "loss_prediction/round0/share", "loss_prediction/round0/score",
          "loss_prediction/round0/select", "loss_prediction/round0/annotate",
          "loss_prediction/round1/train", "loss_prediction/round1/decode"]


def al_run_cmd(en_inputs, al_dir, strategies):
    data = en_inputs / "data"
    return [sys.executable, "-m", "espnet_lp.bin.al_run", "--al_dir", str(al_dir),
            "--strategies", *strategies, "--initial_utts", "8", "--budget_utts", "6",
            "--rounds", "1", "--train_set", str(data / "train_clean_100"),
            "--valid_set", str(data / "dev_clean"), "--test_sets", str(data / "dev_clean"),
            "--token_list", str(en_inputs / "token_list"), "--train_config", str(TINY),
            "--train_opts", "--max_epoch 1 --batch_size 4", "--nj", "2",
            # typicality-gated: embeddings merged over 2 shards, k-means, resume determinism
            "--acquisition", "typical", "--typicality_knn", "3"]


def run(cmd, cwd, fault=None):
    env = dict(os.environ)
    env.pop("ESPNET_LP_FAULT_AFTER", None)
    if fault:
        env["ESPNET_LP_FAULT_AFTER"] = fault
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)


@pytest.fixture(scope="module")
def clean_run(en_inputs, tmp_path_factory):
    """random + loss_prediction, one acquisition round, uninterrupted."""
    work = tmp_path_factory.mktemp("al_clean")
    proc = run(al_run_cmd(en_inputs, work / "al", ["random", "loss_prediction"]), work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work / "al"


def round_outputs(al_dir, strategy):
    r0, r1 = al_dir / strategy / "round0", al_dir / strategy / "round1"
    return {"selected": (r0 / "selected").read_text(), "labeled1": read_ids(r1 / "labeled"),
            "pool1": read_ids(r1 / "pool"),
            "metrics": [json.loads((r / "metrics.json").read_text()) for r in (r0, r1)]}


@pytest.mark.slow
def test_rounds_report_and_label_accounting(clean_run, en_inputs):
    pool = (en_inputs / "data/train_clean_100/wav.scp").read_text().split()[::2]
    for strategy in ("random", "loss_prediction"):
        out = round_outputs(clean_run, strategy)
        selected = [line.split()[0] for line in out["selected"].splitlines()]
        assert len(selected) == 6
        assert set(out["labeled1"]) & set(out["pool1"]) == set()
        assert sorted(out["labeled1"] + out["pool1"]) == sorted(pool)
        assert set(selected) <= set(out["labeled1"])
        m0, m1 = out["metrics"]
        assert (m0["labeled_utterances"], m1["labeled_utterances"]) == (8, 14)
        assert 0 <= m1["decode"]["dev_clean"]["wer"]
    # typical acquisition: loss_prediction's pick is the typical order of its merged scores
    # and embeddings; random, the control, stays the uniform draw of its scores
    durations = {u: float(d) for u, d in (line.split() for line in (
        en_inputs / "data/train_clean_100/utt2dur").read_text().splitlines())}
    for strategy, expected_acquisition in (("random", "topk"), ("loss_prediction", "typical")):
        rdir = clean_run / strategy / "round0"
        scores, embeddings = merge_shards(rdir / "scores", read_ids(rdir / "pool"), 2)
        assert (embeddings is None) == (strategy == "random")
        redo = select(scores, durations, Budget(utterances=6), seed=0, embeddings=embeddings,
                      acquisition=expected_acquisition, typicality_knn=3)
        selected = [line.split()[0] for line in (rdir / "selected").read_text().splitlines()]
        assert selected == redo, strategy
    # round 0 is shared: same initial set and the same model for every strategy
    assert read_ids(clean_run / "random/round0/labeled") == \
        read_ids(clean_run / "loss_prediction/round0/labeled")
    assert (clean_run / "random/round0/model").resolve() == \
        (clean_run / "initial/round0/model").resolve()
    labeled1 = (clean_run / "loss_prediction/round1/data/labeled/text").read_text()
    assert len(labeled1.splitlines()) == 14  # the oracle revealed what was selected
    assert not (clean_run / "loss_prediction/round0/data/pool/text").exists()  # hidden
    results = (clean_run / "RESULTS.md").read_text()
    assert "| random | 1 | 14 |" in results and "loss_prediction" in results
    assert "initial" not in results
    png = (clean_run / "learning_curve.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    config = yaml.safe_load((clean_run / "config.yaml").read_text())
    assert config["strategies"] == ["random", "loss_prediction"]
    # every LP model's heads are refit on the validation set, and the pool is scored with them
    for model in (clean_run / "initial/round0/model", clean_run / "loss_prediction/round1/model"):
        assert (model / "lp_refit.pth").is_file() and (model / "lp_refit.json").is_file()
    score_log = (clean_run / "loss_prediction/round0/scores/split/score.1.log").read_text()
    assert "--asr_model_file" in score_log and "lp_refit.pth" in score_log.splitlines()[0]


@pytest.mark.slow
def test_sigkill_at_every_stage_then_resume_gives_the_clean_result(
        clean_run, en_inputs, tmp_path):
    """Killed after each stage's outputs are written but before it is recorded (the worst
    moment), then rerun: each rerun redoes that stage and the end state equals the clean
    run's (same selection, same labeled set, same WER)."""
    cmd = al_run_cmd(en_inputs, tmp_path / "al", ["loss_prediction"])
    for stage in STAGES:
        proc = run(cmd, tmp_path, fault=stage)
        assert proc.returncode == -signal.SIGKILL, (stage, proc.stderr[-2000:])
        assert (tmp_path / "al" / ".lock").exists()  # left behind by the killed run
    proc = run(cmd, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "stale lock" in proc.stderr
    assert round_outputs(tmp_path / "al", "loss_prediction") == \
        round_outputs(clean_run, "loss_prediction")


@pytest.mark.slow
def test_a_run_continues_with_its_training_config_moved(clean_run, en_inputs, tmp_path):
    """A checkout moved (or another clone): the same training config under another path is
    the same run; the same path with other bytes is not."""
    import shutil

    al = tmp_path / "al"
    shutil.copytree(clean_run, al)
    stored = (al / "config.yaml").read_text()
    moved = tmp_path / "elsewhere" / "train_lp_tiny.yaml"
    moved.parent.mkdir()
    shutil.copyfile(TINY, moved)

    def rerun():
        cmd = al_run_cmd(en_inputs, al, ["random", "loss_prediction"])
        cmd[cmd.index("--train_config") + 1] = str(moved)
        return run(cmd, tmp_path)

    proc = rerun()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"started with the training config {TINY}" in proc.stderr
    assert (al / "config.yaml").read_text() == stored  # the dir keeps what it started with
    assert round_outputs(al, "loss_prediction") == round_outputs(clean_run, "loss_prediction")
    moved.write_text(moved.read_text() + "# edited\n")
    proc = rerun()
    assert proc.returncode == 1 and "made with other settings" in proc.stderr
    assert f"train_config: '{TINY}' -> '{moved}'" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_a_run_split_by_only_strategies_is_the_clean_run(clean_run, en_inputs, tmp_path):
    """random now, loss_prediction later (another session, another machine): the same round
    0 (its LP heads refit although only random ran), the same selections and results."""
    cmd = al_run_cmd(en_inputs, tmp_path / "al", ["random", "loss_prediction"])
    proc = run(cmd + ["--only_strategies", "random"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (tmp_path / "al" / "loss_prediction").exists()
    assert (tmp_path / "al/initial/round0/model/lp_refit.pth").is_file()
    assert round_outputs(tmp_path / "al", "random") == round_outputs(clean_run, "random")
    model0 = tmp_path / "al/initial/round0/model"
    stamps = {p: p.stat().st_mtime_ns for p in model0.rglob("*") if p.is_file()}
    proc = run(cmd + ["--only_strategies", "loss_prediction"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in model0.rglob("*") if p.is_file()} == stamps
    assert round_outputs(tmp_path / "al", "loss_prediction") == \
        round_outputs(clean_run, "loss_prediction")
    results = (tmp_path / "al" / "RESULTS.md").read_text()
    assert "| random | 1 | 14 |" in results and "loss_prediction" in results


@pytest.mark.slow
def test_a_strategy_joins_a_finished_run(clean_run, en_inputs, tmp_path):
    """A finished random + loss_prediction dir, rerun with ctc_confidence added: only the
    newcomer runs, from the same round 0; what was there is untouched; the list may then
    come in any order, but never without a strategy the dir has (the newcomer included)."""
    import shutil

    al = tmp_path / "al"
    shutil.copytree(clean_run, al)
    stored = yaml.safe_load((al / "config.yaml").read_text())
    kept = {s: round_outputs(al, s) for s in ("random", "loss_prediction")}
    model0 = al / "initial/round0/model"
    stamps = {p: p.stat().st_mtime_ns for p in model0.rglob("*") if p.is_file()}
    proc = run(al_run_cmd(en_inputs, al, ["random", "ctc_confidence", "loss_prediction"]),
               tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ctc_confidence join the run's strategies (random, loss_prediction)" in proc.stderr
    config = yaml.safe_load((al / "config.yaml").read_text())
    assert config == {**stored, "added_strategies": ["ctc_confidence"]}
    assert {s: round_outputs(al, s) for s in kept} == kept
    assert {p: p.stat().st_mtime_ns for p in model0.rglob("*") if p.is_file()} == stamps
    assert read_ids(al / "ctc_confidence/round0/labeled") == read_ids(model0.parent / "labeled")
    newcomer = round_outputs(al, "ctc_confidence")
    assert newcomer["metrics"][1]["labeled_utterances"] == 14
    assert "ctc_confidence" in (al / "RESULTS.md").read_text()
    proc = run(al_run_cmd(en_inputs, al, ["loss_prediction", "random", "ctc_confidence"]),
               tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert yaml.safe_load((al / "config.yaml").read_text()) == config
    assert round_outputs(al, "ctc_confidence") == newcomer
    # the list it started with no longer holds every strategy of the dir
    for strategies, dropped in ((["random", "loss_prediction"], "ctc_confidence"),
                                (["random", "ctc_confidence"], "loss_prediction")):
        proc = run(al_run_cmd(en_inputs, al, strategies), tmp_path)
        assert proc.returncode == 1, proc.stderr[-3000:]
        assert (f"strategies are random, loss_prediction, ctc_confidence; --strategies drops "
                f"{dropped}: keep them all") in proc.stderr
        assert "Traceback" not in proc.stderr
    assert yaml.safe_load((al / "config.yaml").read_text()) == config
    # another setting changed too: the message names it, not the (fine) strategy list
    cmd = al_run_cmd(en_inputs, al, ["random", "loss_prediction", "ctc_confidence"])
    cmd[cmd.index("--budget_utts") + 1] = "5"
    proc = run(cmd, tmp_path)
    assert proc.returncode == 1
    assert ("made with other settings (budget_per_round: {'utterances': 6} -> "
            "{'utterances': 5}); use another --al_dir") in proc.stderr


@pytest.mark.slow
def test_an_lp_strategy_cannot_join_a_round_0_trained_without_refit(en_inputs, tmp_path):
    """Round 0 of a random-only run has no refit LP heads: loss_prediction is refused (not
    scored with unrefit heads); a confidence strategy may still join."""
    def cmd(strategies):
        c = al_run_cmd(en_inputs, tmp_path / "al", strategies)
        c[c.index("--rounds") + 1] = "0"
        return c

    proc = run(cmd(["random"]), tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (tmp_path / "al/initial/round0/model/lp_refit.pth").exists()
    stored = (tmp_path / "al/config.yaml").read_text()
    proc = run(cmd(["random", "loss_prediction"]), tmp_path)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert ("loss_prediction cannot join this run: its round 0 was trained when none of its "
            "strategies (random) scored with the LP heads") in proc.stderr
    assert "Traceback" not in proc.stderr
    assert (tmp_path / "al/config.yaml").read_text() == stored
    assert not (tmp_path / "al/loss_prediction").exists()
    proc = run(cmd(["random", "ctc_confidence"]), tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "al/ctc_confidence/round0/metrics.json").is_file()


@pytest.mark.slow
def test_second_run_and_changed_settings_are_refused(clean_run, en_inputs, tmp_path):
    lock = clean_run / ".lock"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock.write_text(f"{holder.pid} {os.uname().nodename}\n")
        proc = run(al_run_cmd(en_inputs, clean_run, ["random", "loss_prediction"]), tmp_path)
        assert proc.returncode == 1
        assert f"another run (pid {holder.pid}) is using" in proc.stderr
    finally:
        holder.kill()
        lock.unlink()
    proc = run(al_run_cmd(en_inputs, clean_run, ["random"]), tmp_path)
    assert proc.returncode == 1
    assert ("strategies are random, loss_prediction; --strategies drops loss_prediction: "
            "keep them all (add others if you like) and run a part with --only_strategies"
            ) in proc.stderr
    assert "Traceback" not in proc.stderr
    cmd = al_run_cmd(en_inputs, clean_run, ["random", "loss_prediction"])
    cmd[cmd.index("--rounds") + 1] = "2"
    proc = run(cmd, tmp_path)
    assert proc.returncode == 1 and "made with other settings (rounds: 1 -> 2)" in proc.stderr
    assert "Traceback" not in proc.stderr

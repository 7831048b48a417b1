"""Faults of the active-learning commands that write: SIGKILL in the middle of al_score,
lp_refit and al_report then a rerun; a second writer of the same output; launch's jobs after
their launcher is killed. Small on purpose: an untrained tiny model, a few utterances, a few
kill points (the write protocol itself is tested at every step in tests/data/test_faults.py).
"""

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from espnet_lp.bin.al_report import main as report_main
from espnet_lp.bin.al_score import main as score_main
from espnet_lp.bin.lp_refit import main as refit_main
from tests.al.test_bad_inputs_al import write_metrics
from tests.io_helpers import (
    ROOT,
    check_kill_points,
    children,
    hidden_entries,
    hold_lock,
    make_tiny_exp,
    process_state,
    run_cli,
    snapshot,
    wait_until,
)


@pytest.fixture(scope="module")
def exp(en_inputs, tmp_path_factory):
    return make_tiny_exp(en_inputs / "token_list", tmp_path_factory.mktemp("al_faults_exp"))


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Killed runs are forked children computing with one thread (``run_killed``); the
    reference runs here must compute the same floats, bit for bit."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def first_middle_last(total: int):
    return [1, total // 2, total - 2, total]


def score_args(exp: Path, data: Path, out: Path, strategy: str, *extra: str):
    return ["--asr_train_config", str(exp / "config.yaml"), "--asr_model_file",
            str(exp / "model.pth"), "--strategy", strategy, "--data_dir", str(data),
            "--key_file", str(out.parent / "keys"), "--output_dir", str(out), *extra]


def refit_args(exp: Path, data: Path, out: Path, *extra: str):
    return ["--asr_train_config", str(exp / "config.yaml"), "--asr_model_file",
            str(exp / "model.pth"), "--data_dir", str(data), "--output_file",
            str(out / "refit.pth"), "--steps", "3", *extra]


def report_args(al: Path, out: Path, *extra: str):
    return ["--al_dir", str(al), "--sets", "dev_clean", "--output_dir", str(out), *extra]


@pytest.fixture
def keys(en_inputs, tmp_path):
    """Four utterances of the pool to score."""
    lines = (en_inputs / "data/dev_clean/wav.scp").read_text().splitlines(keepends=True)
    (tmp_path / "keys").write_text("".join(lines[:4]))
    return tmp_path / "keys"


# ---- SIGKILL in the middle, then a rerun ---------------------------------------------------
def test_al_score_killed_then_rerun(exp, en_inputs, keys, tmp_path):
    """A shard scored by ``random`` is rescored by ``lp_diverse``: score and embedding files
    appear together, or neither does."""
    data, out = en_inputs / "data/dev_clean", tmp_path / "scores"
    score_main(score_args(exp, data, out, "random"))
    total = check_kill_points(lambda: score_main(score_args(exp, data, out, "lp_diverse")),
                              out, [out / "score.1", out / "embedding.1.npz"], tmp_path,
                              points=first_middle_last)
    assert total > 4


def test_lp_refit_killed_then_rerun(exp, en_inputs, tmp_path):
    data, out = en_inputs / "data/dev_clean", tmp_path / "refit"
    refit_main(refit_args(exp, data, out, "--seed", "0"))
    check_kill_points(lambda: refit_main(refit_args(exp, data, out, "--seed", "1")), out,
                      [out / "refit.pth", out / "refit.json"], tmp_path,
                      points=first_middle_last)


def test_al_report_killed_at_every_step_then_rerun(tmp_path):
    pytest.importorskip("matplotlib")
    al, out = tmp_path / "al", tmp_path / "report"
    write_metrics(al)
    report_main(report_args(al, out, "--plot", "false"))
    (al / "random/round1/metrics.json").write_text(
        (al / "random/round1/metrics.json").read_text().replace("0.8", "0.6"))
    total = check_kill_points(
        lambda: report_main(report_args(al, out)), out,
        [out / "RESULTS.md", out / "results.json", out / "learning_curve.png"], tmp_path,
        points=lambda n: range(1, n + 1))
    assert total > 5


# ---- a second writer --------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["al_score", "lp_refit", "al_report"])
def test_second_writer_is_refused(command, exp, en_inputs, keys, tmp_path, capsys, caplog):
    """While another process writes the output, the command stops with one line naming it and
    changes nothing; once that process is gone it runs."""
    data, out = en_inputs / "data/dev_clean", tmp_path / "out"
    if command == "al_score":
        main, args, locked = score_main, score_args(exp, data, out, "random"), out / "score.1"
    elif command == "lp_refit":
        main, args, locked = refit_main, refit_args(exp, data, out), out / "refit.pth"
    else:
        write_metrics(tmp_path / "al")
        main, args, locked = report_main, report_args(tmp_path / "al", out, "--plot", "false"), \
            out / "RESULTS.md"
    release = hold_lock(locked)
    try:
        code, report = run_cli(main, args, capsys, caplog)
    finally:
        release()
    assert code == 1 and "another process" in report and str(locked) in report, report
    assert "Traceback" not in report
    assert snapshot(out, hidden=False) in (None, {})
    code, report = run_cli(main, args, capsys, caplog)
    assert code == 0, report
    assert locked.is_file() and hidden_entries(out) == []


def test_concurrent_reports_one_wins(tmp_path):
    """Really concurrent al_report runs on one output: each succeeds or is refused in one
    line, and the report is complete."""
    al, out = tmp_path / "al", tmp_path / "report"
    write_metrics(al)
    report_main(report_args(al, tmp_path / "reference", "--plot", "false"))
    cmd = [sys.executable, "-m", "espnet_lp.bin.al_report",
           *report_args(al, out, "--plot", "false")]
    procs = [subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    for proc in procs:
        err = proc.communicate(timeout=120)[1]
        assert "Traceback" not in err
        assert proc.returncode == 0 or (proc.returncode == 1 and "another process" in err), err
    assert snapshot(out) == snapshot(tmp_path / "reference")
    assert hidden_entries(tmp_path) == []


# ---- launch: jobs die with their launcher ---------------------------------------------------
def test_launch_jobs_die_with_a_killed_launcher(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "espnet_lp.bin.launch", "JOB=1:2",
                             str(tmp_path / "job.JOB.log"), "--", "sleep", "60"], cwd=ROOT,
                            stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: len(children(proc.pid)) >= 2, 60, "the jobs to start")
        jobs = children(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        wait_until(lambda: all(process_state(j) in (None, "Z") for j in jobs), 10,
                   f"jobs {jobs} to exit after their launcher was killed")
    finally:
        if proc.poll() is None:
            proc.kill()

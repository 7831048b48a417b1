"""Local jobs forked from the preloaded interpreter behave as fresh ``python -m`` processes."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from espnet_lp.al import preloaded
from espnet_lp.al.jobs import JobError, python_module, run_jobs

PROBE = textwrap.dedent("""
    import json, os, sys
    import torch
    print(json.dumps({"name": __name__, "argv": sys.argv[1:], "cwd": os.getcwd(),
                      "var": os.environ.get("PROBE_VAR"), "threads": torch.get_num_threads(),
                      "stdin": sys.stdin.read(), "path0": sys.path[0]}))
    print("to stderr", file=sys.stderr)
    mode = sys.argv[1]
    if mode == "exit3":
        sys.exit(3)
    if mode == "message":
        sys.exit("a message for the user")
    if mode == "raise":
        raise ValueError("boom")
    if mode == "sleep":
        open(sys.argv[2], "w").write(str(os.getpid()))
        import time
        time.sleep(120)
""")


@pytest.fixture
def probe_dir(tmp_path, monkeypatch):
    (tmp_path / "espnet_lp_probe.py").write_text(PROBE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROBE_VAR", "from the driver")
    return tmp_path


def run_probe(probe_dir, mode, preload):
    os.environ["ESPNET_LP_PRELOAD"] = "1" if preload else "0"
    log = probe_dir / f"{mode}.{int(preload)}.log"
    try:
        run_jobs([python_module("espnet_lp_probe", [mode])], [log], max_parallel=2)
        error = None
    except JobError as e:
        error = str(e)
    lines = log.read_text().splitlines()
    return json.loads(lines[1]), lines[2:], error


@pytest.mark.parametrize("mode,status", [("ok", None), ("exit3", "exit status 3"),
                                         ("message", "exit status 1"),
                                         ("raise", "exit status 1")])
def test_a_preloaded_job_is_a_fresh_process(probe_dir, monkeypatch, mode, status):
    monkeypatch.setenv("ESPNET_LP_PRELOAD", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the zygote's torch may have started with more
    fresh = run_probe(probe_dir, mode, preload=False)
    forked = run_probe(probe_dir, mode, preload=True)
    assert forked[0] == fresh[0]
    assert forked[0]["name"] == "__main__" and forked[0]["argv"] == [mode]
    assert forked[0]["var"] == "from the driver" and forked[0]["stdin"] == ""
    assert forked[0]["threads"] == 1
    assert "to stderr" in forked[1]
    if status is None:
        assert fresh[2] is None and forked[2] is None
    else:
        assert status in forked[1][-1] and status in fresh[1][-1]
        assert forked[2] is not None and fresh[2] is not None
    if mode == "message":
        assert "a message for the user" in forked[1]
    if mode == "raise":
        assert "ValueError: boom" in forked[1]


def test_preloaded_modules_are_there_before_the_job_imports(probe_dir, monkeypatch):
    monkeypatch.setenv("ESPNET_LP_PRELOAD", "1")
    (probe_dir / "espnet_lp_probe2.py").write_text(
        "import sys\nprint(sorted(m for m in sys.modules if m == 'espnet2.tasks.asr'))\n")
    log = probe_dir / "p2.log"
    run_jobs([python_module("espnet_lp_probe2", [])], [log])
    assert "['espnet2.tasks.asr']" in log.read_text()


def test_jobs_die_with_a_killed_driver(probe_dir):
    """SIGKILL of the driver: its zygote and the job it forked are gone within seconds."""
    pid_file = probe_dir / "job.pid"
    env = {**os.environ, "ESPNET_LP_PRELOAD": "1", "PYTHONPATH": os.getcwd()}
    driver = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        from pathlib import Path
        from espnet_lp.al.jobs import python_module, run_jobs
        run_jobs([python_module("espnet_lp_probe", ["sleep", {str(pid_file)!r}])],
                 [Path("sleep.log")])
    """)], cwd=probe_dir, env=env)
    deadline = time.time() + 120
    while not pid_file.exists() or not pid_file.read_text():
        assert driver.poll() is None and time.time() < deadline, "the job did not start"
        time.sleep(0.2)
    job = int(pid_file.read_text())
    zygote = int(open(f"/proc/{job}/stat").read().split(")")[1].split()[1])  # its parent
    assert zygote != driver.pid
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    deadline = time.time() + 10
    while any(_alive(p) for p in (job, zygote)) and time.time() < deadline:
        time.sleep(0.1)
    assert not _alive(job) and not _alive(zygote)


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_off_switch_and_what_is_forked(monkeypatch):
    monkeypatch.setenv("ESPNET_LP_PRELOAD", "0")
    assert not preloaded.enabled()
    assert preloaded.module_of([sys.executable, "-m", "espnet2.bin.asr_train", "--x"]) == \
        "espnet2.bin.asr_train"
    assert preloaded.module_of(["srun", sys.executable, "-m", "x"]) is None
    assert preloaded.module_of(["/other/python", "-m", "x"]) is None


def test_an_unwritable_log_is_a_job_error_naming_it(tmp_path):
    (tmp_path / "file").write_text("")
    log = tmp_path / "file" / "job.log"
    with pytest.raises(JobError, match=f"{log}: cannot write the job's log"):
        run_jobs([python_module("json.tool", ["--help"])], [log])

"""Helpers of the bad-input and fault tests: run a command in-process or killed at a chosen
file-system step, snapshot output locations, a tiny untrained model exp dir."""

import os
import shutil
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Callable, Dict, List, Optional

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The os functions that change the file system: a run is killed just before one of them.
MUTATORS = ("rename", "replace", "unlink", "rmdir", "mkdir")


def snapshot(path: Path, hidden: bool = True) -> Optional[Dict[str, bytes]]:
    """Every file under ``path`` (or ``path`` itself) with its bytes; None if absent.

    ``hidden=False``: without dot-entries (locks and temporary siblings a killed run leaves
    for the next run to remove), i.e. what a reader of the output sees.
    """
    path = Path(path)
    if path.is_file():
        return {"": path.read_bytes()}
    if not path.is_dir():
        return None
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file() and (hidden or not any(
                part.startswith(".") for part in p.relative_to(path).parts))}


def hidden_entries(directory: Path) -> List[str]:
    """Dot-entries (temporary siblings, locks, journals) anywhere under ``directory``."""
    return sorted(str(p) for p in Path(directory).rglob(".*"))


def run_killed(fn: Callable[[], None], kill_at: int, count_file: Path) -> bool:
    """Run ``fn`` in a forked child that SIGKILLs itself just before its ``kill_at``-th
    file-system change (see :data:`MUTATORS`).

    Returns:
        True if it was killed; False if it finished first (then ``count_file`` holds how many
        changes it made).
    """
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 3
        try:
            # one thread, always: the parent's OpenMP pool is not in the child (a parallel
            # region would wait for it forever), and results must not depend on whether
            # the parent had imported torch yet
            os.environ["OMP_NUM_THREADS"] = "1"
            if "torch" in sys.modules:
                sys.modules["torch"].set_num_threads(1)
            count = [0]

            def wrap(real):
                def mutate(*args, **kwargs):
                    count[0] += 1
                    if count[0] == kill_at:
                        os.kill(os.getpid(), signal.SIGKILL)
                    return real(*args, **kwargs)
                return mutate

            originals = {name: getattr(os, name) for name in MUTATORS}
            for name, real in originals.items():
                setattr(os, name, wrap(real))
            fn()
            for name, real in originals.items():
                setattr(os, name, real)
            Path(count_file).write_text(str(count[0]))
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL
        return True
    assert os.WEXITSTATUS(status) == 0, "the run failed without being killed"
    return False


def check_kill_points(run: Callable[[], None], root: Path, outputs: List[Path], tmp_path: Path,
                      points: Optional[Callable[[int], List[int]]] = None,
                      stride: int = 1) -> int:
    """Kill ``run`` before some of its file-system changes, each time from the same earlier
    state: after each kill every output must be wholly old or wholly new (a mix only while a
    commit journal says how to finish it), and a rerun must give the new outputs and leave
    nothing behind.

    Args:
        points: Given the number of changes an uninterrupted run makes, the changes to kill
            before (each must be reached); None: every ``stride``-th until the run finishes.

    Returns:
        With ``points``, the number of changes an uninterrupted run makes; else the number of
        kill points tried.
    """
    from espnet_lp.utils.outputs import can_exchange

    saved = tmp_path / "saved_root"
    shutil.copytree(root, saved, symlinks=True)
    old = {o: snapshot(o) for o in outputs}
    run()
    new = {o: snapshot(o) for o in outputs}
    assert new != old and hidden_entries(root) == []
    gapless = can_exchange(root)

    def kill_then_rerun(k: int) -> bool:
        shutil.rmtree(root)
        shutil.copytree(saved, root, symlinks=True)
        killed = run_killed(run, k, tmp_path / "count")
        if killed:
            states = {o: snapshot(o, hidden=False) for o in outputs}
            journal = any(p.endswith(".commit") for p in hidden_entries(root))
            for o, state in states.items():
                if state is None and journal and not gapless:
                    continue  # no atomic exchange here: the journal restores it
                assert state in (old[o], new[o]), f"{o} half-written when killed at step {k}"
            changed = [o for o in outputs if old[o] != new[o]]
            if len({states[o] == new[o] for o in changed}) > 1:
                assert journal, f"old and new outputs mixed without a journal, killed at step {k}"
        run()
        assert {o: snapshot(o) for o in outputs} == new, f"rerun after a kill at step {k}"
        assert hidden_entries(root) == [], f"leftovers after a kill at step {k} and a rerun"
        return killed

    if points is not None:
        assert not kill_then_rerun(10 ** 9)
        total = int((tmp_path / "count").read_text())
        for k in sorted(set(points(total))):
            assert kill_then_rerun(k), k
        return total
    tried, k = 0, 1
    while kill_then_rerun(k):
        tried += 1
        k += stride
    return tried


def hold_lock(path: Path):
    """Hold :func:`output_lock` of ``path`` in a forked child (another process); returns a
    function that releases it."""
    from espnet_lp.utils.outputs import output_lock

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read)
            with output_lock(path):
                os.write(write, b"x")
                time.sleep(120)
        finally:
            os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"x"
    os.close(read)

    def release():
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)

    return release


def run_cli(main: Callable, args: List[str], capsys, caplog) -> (int, str):
    """Run a CLI ``main`` in-process; returns its exit status and everything it reported.

    Any exception other than ``SystemExit`` fails the test: it would be a traceback.
    """
    caplog.clear()
    capsys.readouterr()
    try:
        main(args)
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out + captured.err + caplog.text


def python(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """Run the venv's Python from the repository root."""
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          **kwargs)


def process_state(pid: int) -> Optional[str]:
    """The state letter of a process (``Z``: zombie), or None if it does not exist."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def children(pid: int) -> List[int]:
    """Live child processes of ``pid``."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(stat.parent.name))
    return out


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def make_tiny_exp(token_list: Path, out: Path) -> Path:
    """An exp dir (``config.yaml``, ``model.pth``) of the tiny LP config, untrained: a model
    every model-reading CLI can load, in seconds."""
    import torch
    import yaml
    from espnet2.tasks.asr import ASRTask

    out.mkdir(parents=True, exist_ok=True)
    args = ASRTask.get_parser().parse_args(
        ["--config", str(ROOT / "conf/tuning/train_lp_tiny.yaml"), "--token_list",
         str(token_list), "--token_type", "char", "--output_dir", str(out)])
    torch.manual_seed(0)
    model = ASRTask.build_model(args)  # turns args.token_list into the tokens
    (out / "config.yaml").write_text(yaml.safe_dump(vars(args), allow_unicode=True),
                                     encoding="utf-8")
    torch.save(model.state_dict(), out / "model.pth")
    return out

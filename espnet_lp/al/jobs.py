"""Run the loop's sub-commands: ESPnet training, sharded decoding and scoring (local backend).

Every command is a separate Python process (``python -m ...``), as ESPnet's ``run.pl`` runs
them, with its output in a log file. Up to ``nj`` run at once; a failure names its log. On
Linux the children are killed when the driver dies (even by SIGKILL), so a killed run leaves
no worker writing into the exp dir behind it.
"""

import logging
import signal
import subprocess
import sys
from pathlib import Path
from typing import List, Sequence

from espnet_lp.errors import EspnetLPError

logger = logging.getLogger(__name__)


class JobError(EspnetLPError):
    """A sub-command that failed (its log says why)."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def python_module(module: str, args: Sequence[str]) -> List[str]:
    """The command line of ``python -m module args`` with this interpreter."""
    return [sys.executable, "-m", module, *[str(a) for a in args]]


def run_jobs(cmds: Sequence[Sequence[str]], logs: Sequence[Path], max_parallel: int = 1) -> None:
    """Run commands, at most ``max_parallel`` at a time; raise if any fails.

    Args:
        cmds: Command lines.
        logs: One log file per command (stdout and stderr; appended, as a resumed run adds
            to the log of the killed one).
        max_parallel: How many run at once.
    """
    pending = list(zip(cmds, logs))
    running: List[tuple] = []
    failed: List[Path] = []
    while pending or running:
        while pending and len(running) < max(1, max_parallel):
            cmd, log = pending.pop(0)
            log.parent.mkdir(parents=True, exist_ok=True)
            handle = open(log, "a", encoding="utf-8")
            handle.write("# " + " ".join(str(c) for c in cmd) + "\n")
            handle.flush()
            proc = subprocess.Popen(list(cmd), stdout=handle, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
            running.append((proc, handle, log))
        proc, handle, log = running.pop(0)
        if proc.wait() != 0:
            failed.append(log)
        handle.close()
    if failed:
        tail = _tail(failed[0])
        raise JobError(f"{len(failed)} job(s) failed; see {', '.join(map(str, failed))}\n"
                       f"last lines of {failed[0]}:\n{tail}")


def _tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"

"""Run sub-commands (training, sharded decoding and scoring, teacher caching) on a backend.

Every command is a separate process (``python -m ...``) with its output in a log file, as
ESPnet's ``run.pl``/``slurm.pl`` run them (local ``python -m`` jobs are forked from an
interpreter with ESPnet imported, :mod:`espnet_lp.al.preloaded`, to skip 8-15 s of imports):

- ``local``: processes on this machine, up to ``max_parallel`` at once;
- ``slurm``: each command is one Slurm job step submitted with ``srun`` (plus the user's
  ``slurm_opts``, e.g. ``--partition=cpu --time=2:00:00``), all at once: Slurm schedules
  them. ``srun`` waits for its job and exits with its status, so the driver collects every
  job's exit code as for local processes.

A failed job fails the whole call, naming its log. On Linux the local processes (and the
``srun`` clients, whose death cancels their Slurm jobs) are killed when the driver dies, even
by SIGKILL, so a killed run leaves no worker writing into the exp dir behind it.
"""

import logging
import os
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

from espnet_lp.al import preloaded
from espnet_lp.errors import EspnetLPError
from espnet_lp.utils.workers import _set_pdeathsig

logger = logging.getLogger(__name__)


class JobError(EspnetLPError):
    """A sub-command that failed (its log says why)."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    # prctl was bound at import (utils.workers): loading a library between fork and exec
    # can deadlock on a lock another thread of the parent held
    _set_pdeathsig(signal.SIGTERM)


BACKENDS = ("local", "slurm")


@dataclass(frozen=True)
class Backend:
    """Where jobs run: ``local`` or ``slurm`` (with extra ``srun`` options)."""

    name: str = "local"
    slurm_opts: str = ""

    def __post_init__(self):
        if self.name not in BACKENDS:
            raise JobError(f"unknown job backend {self.name!r}; choose from {BACKENDS}")
        try:
            shlex.split(self.slurm_opts)
        except ValueError as e:
            raise JobError(f"slurm_opts {self.slurm_opts!r}: {e}") from None

    def wrap(self, cmd: Sequence[str], log: Path, ngpu: int = 0) -> List[str]:
        """The command line that runs ``cmd`` on this backend."""
        if self.name == "local":
            return [str(c) for c in cmd]
        # "=" forms: srun options with optional values would take a separate word as one
        opts = [f"--job-name=espnet_lp.{log.stem}", "--ntasks=1", "--nodes=1",
                "--kill-on-bad-exit=1"]
        if ngpu > 0:
            opts.append(f"--gres=gpu:{ngpu}")
        return ["srun", *opts, *shlex.split(self.slurm_opts), *[str(c) for c in cmd]]


def python_module(module: str, args: Sequence[str]) -> List[str]:
    """The command line of ``python -m module args`` with this interpreter."""
    return [sys.executable, "-m", module, *[str(a) for a in args]]


def run_jobs(cmds: Sequence[Sequence[str]], logs: Sequence[Path], max_parallel: int = 1,
             backend: Optional[Backend] = None, ngpu: int = 0) -> None:
    """Run commands on ``backend`` (default local); raise if any fails.

    Args:
        cmds: Command lines.
        logs: One log file per command (stdout and stderr; appended, as a resumed run adds
            to the log of the killed one).
        max_parallel: How many run at once locally (Slurm: all are submitted at once).
        backend: Where they run.
        ngpu: GPUs each job needs (Slurm: ``--gres=gpu:N``).
    """
    backend = backend or Backend()
    env = None
    if backend.name == "slurm":
        max_parallel = len(cmds)
    elif "OMP_NUM_THREADS" not in os.environ:  # share the cores among the jobs running at once
        at_once = max(1, min(max_parallel, len(cmds)))
        env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // at_once))}
    pending = list(zip(cmds, logs))
    running: List[tuple] = []
    failed: List[Path] = []
    while pending or running:
        while pending and len(running) < max(1, max_parallel):
            cmd, log = pending.pop(0)
            try:
                log.parent.mkdir(parents=True, exist_ok=True)
                handle = open(log, "a", encoding="utf-8")
            except OSError as e:
                raise JobError(f"{log}: cannot write the job's log ({e.strerror or e})") \
                    from None
            line = backend.wrap(cmd, log, ngpu)
            handle.write("# " + shlex.join(line) + "\n")
            handle.flush()
            module = preloaded.module_of(line) if backend.name == "local" else None
            proc = None
            try:
                if module is not None and preloaded.enabled():
                    try:
                        proc = preloaded.PreloadedJob(module, line[3:], log, env)
                    except preloaded.ZygoteError as e:
                        logger.warning("%s; running %s as a plain process", e, module)
                if proc is None:
                    proc = subprocess.Popen(line, stdout=handle, stderr=subprocess.STDOUT,
                                            env=env, stdin=subprocess.DEVNULL,
                                            preexec_fn=_die_with_parent)
            except FileNotFoundError:
                handle.close()
                raise JobError(f"{line[0]}: command not found (job backend "
                               f"{backend.name!r}; see {log})") from None
            running.append((proc, handle, log))
        proc, handle, log = running.pop(0)
        if proc.wait() != 0:
            failed.append(log)
            handle.write(f"# exit status {proc.returncode}\n")
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

#!/usr/bin/env python3
r"""Run a command as N parallel jobs on the recipe's backend (like Kaldi/ESPnet's run.pl).

``JOB=1:N`` runs the command N times with every ``JOB`` in the log path and the command
replaced by the job number; without it the command runs once. The backend is ``local``
(processes here, ``--max_parallel`` at once) or ``slurm`` (``srun`` job steps with
``--slurm_opts``); recipes take both from ``cmd.sh``. A failed job makes the whole command
fail, naming its log; when this launcher is killed its jobs die with it.

Usage:
    python -m espnet_lp.bin.launch --backend local JOB=1:4 exp/log/kd_cache.JOB.log -- \
        python -m espnet_lp.bin.kd_cache --key_file exp/log/keys.JOB ...
    python -m espnet_lp.bin.launch --backend slurm --slurm_opts "--partition=gpu" --ngpu 1 \
        exp/teacher/train.log -- python -m espnet2.bin.asr_train --ngpu 1 ...
"""

import argparse
import re
import shutil
import sys
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from espnet_lp.al.jobs import BACKENDS, Backend, JobError, run_jobs
from espnet_lp.utils.cli import new_parser, parse, run_cli

JOB_RANGE = re.compile(r"^JOB=(\d+):(\d+)$")


def get_parser() -> argparse.ArgumentParser:
    """Build the argument parser."""
    parser = new_parser(__doc__)
    parser.add_argument("--backend", choices=BACKENDS, default="local")
    parser.add_argument("--slurm_opts", default="", help="Extra srun options (slurm)")
    parser.add_argument("--max_parallel", type=int, default=0,
                        help="Local jobs at once (0: all)")
    parser.add_argument("--ngpu", type=int, default=0, help="GPUs per job (slurm: --gres)")
    parser.add_argument("spec", nargs="+", metavar="[JOB=1:N] LOG",
                        help="Job range and log path, then '--' and the command (JOB in both "
                             "is replaced by the job number)")
    return parser


def split_spec(head: Sequence[str], cmd: Sequence[str]) -> Tuple[range, str, List[str]]:
    """``[JOB=a:b] LOG`` and the command -> (job numbers, log template, command template)."""
    head, cmd = list(head), list(cmd)
    if not cmd:
        raise JobError("launch: no command after '--'")
    jobs = range(1, 2)
    if head and head[0].startswith("JOB=") and not JOB_RANGE.match(head[0]):
        raise JobError(f"launch: bad job range {head[0]} (want JOB=1:N, N >= 1)")
    if head and JOB_RANGE.match(head[0]):
        first, last = map(int, JOB_RANGE.match(head[0]).groups())
        if first < 1 or last < first:
            raise JobError(f"launch: bad job range {head[0]} (want JOB=1:N, N >= 1)")
        jobs = range(first, last + 1)
        head = head[1:]
    if len(head) != 1:
        raise JobError(f"launch: expected one log path before '--', got {head}")
    if len(jobs) > 1 and "JOB" not in head[0]:
        raise JobError(f"launch: {len(jobs)} jobs need JOB in the log path ({head[0]})")
    return jobs, head[0], cmd


def _check_log(log: Path) -> None:
    """A log path that cannot be written (a directory, under a file) is one line."""
    from espnet_lp.utils.fileio import path_problem

    problem = path_problem(log)
    if problem not in (None, "not found"):
        raise JobError(f"launch: log {log}: {problem}")


def launch(args) -> None:
    """Run the jobs; raise :class:`JobError` when one fails."""
    for name in ("max_parallel", "ngpu"):
        if getattr(args, name) < 0:
            raise JobError(f"launch: --{name} must be >= 0, got {getattr(args, name)}")
    jobs, log, cmd = split_spec(args.spec, args.command)
    backend = Backend(args.backend, args.slurm_opts)
    cmds = [[c.replace("JOB", str(j)) for c in cmd] for j in jobs]
    logs = [Path(log.replace("JOB", str(j))) for j in jobs]
    for path in logs:
        _check_log(path)
    program = cmds[0][0] if args.backend == "local" else "srun"
    if shutil.which(program) is None:
        raise JobError(f"launch: {program}: command not found (job backend {args.backend!r})")
    run_jobs(cmds, logs, args.max_parallel or len(cmds), backend, ngpu=args.ngpu)


def main(cmd: Optional[Sequence[str]] = None) -> None:
    """Run the command as jobs."""
    argv = list(sys.argv[1:] if cmd is None else cmd)
    if "--" not in argv:
        get_parser().error("the command must follow '--': launch [JOB=1:N] LOG -- COMMAND...")
    cut = argv.index("--")
    args = parse(get_parser(), argv[:cut])
    args.command = argv[cut + 1:]
    run_cli(lambda: launch(args))


if __name__ == "__main__":
    main()

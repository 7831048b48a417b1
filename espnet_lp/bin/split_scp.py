#!/usr/bin/env python3
"""Split a Kaldi-style list (``wav.scp``, ``text``, an id list) into N key files.

Like Kaldi's ``utils/split_scp.pl``: contiguous chunks whose sizes differ by at most one line,
in input order, so shard ``n`` of a sharded job (``kd_cache``, pool scoring, decoding) gets
``--key_file <out_n>``.

Usage:
    python -m espnet_lp.bin.split_scp data/train/wav.scp exp/keys/keys.1 exp/keys/keys.2
    python -m espnet_lp.bin.split_scp --nj 8 data/train/wav.scp exp/keys   # exp/keys/keys.{1..8}
"""

import argparse
from pathlib import Path
from typing import List, Optional, Sequence

from espnet_lp.data.errors import DataPrepError
from espnet_lp.utils.cli import new_parser, parse, run_cli
from espnet_lp.utils.fileio import path_problem
from espnet_lp.utils.outputs import atomic_outputs, check_not_an_input


def get_parser() -> argparse.ArgumentParser:
    """Build the argument parser."""
    parser = new_parser(__doc__)
    parser.add_argument("--nj", type=int, default=None,
                        help="Number of shards: then the single output is a directory that "
                             "receives keys.1 .. keys.<nj>")
    parser.add_argument("scp", type=Path, help="Input list")
    parser.add_argument("outputs", type=Path, nargs="+", help="Output key files (or directory)")
    return parser


def split_lines(lines: List[str], n: int) -> List[List[str]]:
    """``n`` contiguous chunks of ``lines``, sizes differing by at most one."""
    size, extra = divmod(len(lines), n)
    chunks, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        chunks.append(lines[start:end])
        start = end
    return chunks


def read_lines(path: Path) -> List[str]:
    """The lines of a UTF-8 list, each non-empty; errors name ``file:line``."""
    problem = path_problem(path)
    if problem is not None:
        raise DataPrepError(f"{path}: {problem}")
    lines = []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataPrepError(f"{path}:{lineno}: not valid UTF-8 ({e.reason})") from None
            if not line.strip():
                raise DataPrepError(f"{path}:{lineno}: empty line")
            lines.append(line if line.endswith("\n") else line + "\n")
    return lines


def main(cmd: Optional[Sequence[str]] = None) -> None:
    """Write the shards, all together, atomically (stale shards of a larger ``--nj`` go)."""
    args = parse(get_parser(), cmd)

    def body() -> None:
        outputs, stale = args.outputs, []
        if args.nj is not None:
            if len(outputs) != 1 or args.nj < 1:
                raise DataPrepError("--nj N needs exactly one output directory and N >= 1")
            stale = [p for p in outputs[0].glob("keys.*")
                     if p.name[5:].isdigit() and int(p.name[5:]) > args.nj]
            outputs = [outputs[0] / f"keys.{n}" for n in range(1, args.nj + 1)]
        elif len(set(outputs)) != len(outputs):
            raise DataPrepError("an output key file is named twice")
        check_not_an_input(outputs, [args.scp])
        lines = read_lines(args.scp)
        if len(lines) < len(outputs):
            raise DataPrepError(f"{args.scp}: {len(lines)} lines cannot fill "
                                f"{len(outputs)} shards (use fewer jobs)")
        with atomic_outputs(files=outputs, remove=stale) as staged:
            for out, chunk in zip(outputs, split_lines(lines, len(outputs))):
                staged[out].write_text("".join(chunk), encoding="utf-8")

    run_cli(body)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Combine data directories with disjoint utterance ids (Kaldi's ``combine_data.sh``).

Every source must have transcripts (``text``), or none may: a source without them would
drop every transcript of the others. Untranscribed audio is added with ``--untranscribed``.

Usage:
    python -m espnet_lp.bin.combine_data_dirs data/dev data/dev_clean data/dev_other
    # labeled set + the pool without transcripts (distillation uses its audio, KL term only):
    python -m espnet_lp.bin.combine_data_dirs --untranscribed data/pool data/train_kd data/labeled
"""

import argparse
from typing import Optional, Sequence

from espnet_lp.data.datadir import DataDir
from espnet_lp.data.errors import DataPrepError
from espnet_lp.data.validate import read_valid_data_dir
from espnet_lp.utils.cli import new_parser, parse, run_cli
from espnet_lp.utils.outputs import check_not_an_input


def get_parser() -> argparse.ArgumentParser:
    """Build the argument parser."""
    parser = new_parser(__doc__)
    parser.add_argument("dst", help="Output data directory (written atomically)")
    parser.add_argument("--untranscribed", action="append", default=[], metavar="DIR",
                        help="Add this directory's utterances without transcripts (their "
                             "text, if any, is dropped); repeatable")
    parser.add_argument("src", nargs="+", help="Input data directories")
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> None:
    """Combine and write."""
    args = parse(get_parser(), cmd)

    def body() -> None:
        check_not_an_input([args.dst], list(args.src) + list(args.untranscribed))
        data = DataDir.combine([read_valid_data_dir(s) for s in args.src], names=args.src)
        if args.untranscribed:
            if data.text is None:
                raise DataPrepError(f"--untranscribed adds audio to transcribed data, but "
                                    f"{args.src[0]} has no text")
            pool = DataDir.combine([read_valid_data_dir(s, require_text=False)
                                    for s in args.untranscribed], names=args.untranscribed)
            data = data.with_untranscribed(pool)
        data.write(args.dst)

    run_cli(body)


if __name__ == "__main__":
    main()

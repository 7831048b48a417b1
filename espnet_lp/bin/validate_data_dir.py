#!/usr/bin/env python3
"""Check a data directory like Kaldi's ``utils/validate_data_dir.sh``.

Usage:
    python -m espnet_lp.bin.validate_data_dir data/train_clean_100
    python -m espnet_lp.bin.validate_data_dir --no_text data/pool   # untranscribed set
"""

import argparse
from typing import Optional, Sequence

from espnet_lp.data.validate import validate_data_dir
from espnet_lp.utils.cli import new_parser, parse, run_cli


def get_parser() -> argparse.ArgumentParser:
    """Build the argument parser."""
    parser = new_parser(__doc__)
    parser.add_argument("--no_text", action="store_true", help="Do not require a text file")
    parser.add_argument("--no_audio_check", action="store_true",
                        help="Do not check that the audio files exist")
    parser.add_argument("data_dir", nargs="+")
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> None:
    """Validate each directory; exit 1 with every problem listed if one is invalid."""
    args = parse(get_parser(), cmd)

    def body() -> None:
        for d in args.data_dir:
            validate_data_dir(d, require_text=not args.no_text,
                              check_audio_exists=not args.no_audio_check)

    run_cli(body)


if __name__ == "__main__":
    main()

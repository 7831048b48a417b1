#!/usr/bin/env python3
"""Make the token list and shape files ESPnet training needs from data directories.

Usage:
    python -m espnet_lp.bin.make_asr_inputs --token_list_from data/train \
        --output_dir exp/asr_inputs data/train data/dev
    # -> exp/asr_inputs/token_list, exp/asr_inputs/{train,dev}/{speech_shape,text_shape.char}
"""

import argparse
from pathlib import Path
from typing import Optional, Sequence

from espnet_lp.data.asr_inputs import build_char_token_list, write_shape_files, write_token_list
from espnet_lp.data.datadir import DataDir
from espnet_lp.data.errors import DataPrepError
from espnet_lp.utils.cli import new_parser, parse, run_cli


def get_parser() -> argparse.ArgumentParser:
    """Build the argument parser."""
    parser = new_parser(__doc__)
    parser.add_argument("--token_list_from", type=Path, nargs="+", default=None,
                        help="Data dir(s) whose text defines the character token list")
    parser.add_argument("--output_dir", type=Path, required=True)
    parser.add_argument("--sample_rate", type=int, default=16000)
    parser.add_argument("data_dirs", nargs="*", type=Path,
                        help="Data dirs to write shape files for (<output_dir>/<name>/)")
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> None:
    """Write the token list and shape files."""
    args = parse(get_parser(), cmd)

    def body() -> None:
        if args.token_list_from:
            texts = []
            for d in args.token_list_from:
                data = DataDir.read(d)
                if data.text is None:
                    raise DataPrepError(f"{d}: no text to build tokens from")
                texts += data.text.values()
            write_token_list(args.output_dir / "token_list", build_char_token_list(texts))
        for d in args.data_dirs:
            write_shape_files(DataDir.read(d), args.output_dir / d.name, args.sample_rate)

    run_cli(body)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Make the token list (and BPE model) and shape files ESPnet training needs, as asr.sh does.

Writes, in ESPnet's paths and formats:

- ``<token_list_dir>/tokens.txt`` (``<blank>``, ``<unk>``, tokens by frequency,
  ``<sos/eos>``) and, for ``--token_type bpe``, ``<token_list_dir>/bpe.model`` (sentencepiece,
  trained on ``--token_list_from``); asr.sh's dirs are ``data/token_list/char`` and
  ``data/token_list/bpe_unigram<nbpe>``;
- ``<shape_dir>/<set>/speech_shape`` (``utt samples``) and ``text_shape.<token_type>``
  (``utt tokens,vocabulary``) for every data dir given; asr.sh's are under
  ``exp/asr_stats_raw_<lang>_<token_type>/``.

Without ``--token_list_from`` the existing token list (and BPE model) is used.

Usage:
    python -m espnet_lp.bin.make_asr_inputs --token_type bpe --nbpe 100 \
        --token_list_from data/train_clean_100 --token_list_dir data/token_list/bpe_unigram100 \
        --shape_dir exp/asr_stats_raw_en_bpe100 data/train_clean_100 data/dev
    python -m espnet_lp.bin.make_asr_inputs --token_list_from data/train \
        --token_list_dir data/token_list/char --shape_dir exp/asr_stats_raw_zh_char \
        data/train data/dev
"""

import argparse
from pathlib import Path
from typing import Optional, Sequence

from espnet_lp.data.asr_inputs import (
    TOKEN_TYPES,
    build_token_list,
    build_tokenizer,
    train_bpe_model,
    write_shape_files,
    write_token_list,
)
from espnet_lp.data.datadir import DataDir
from espnet_lp.data.errors import DataPrepError
from espnet_lp.utils.cli import new_parser, parse, run_cli


def get_parser() -> argparse.ArgumentParser:
    """Build the argument parser."""
    parser = new_parser(__doc__)
    parser.add_argument("--token_type", choices=TOKEN_TYPES, default="char")
    parser.add_argument("--nbpe", type=int, default=100, help="BPE vocabulary size")
    parser.add_argument("--bpemode", choices=("unigram", "bpe"), default="unigram")
    parser.add_argument("--token_list_from", type=Path, nargs="+", default=None,
                        help="Data dir(s) whose text defines the token list (and BPE model)")
    parser.add_argument("--token_list_dir", type=Path, required=True,
                        help="Holds tokens.txt (and bpe.model)")
    parser.add_argument("--shape_dir", type=Path, default=None,
                        help="Shape files go to <shape_dir>/<data dir name>/")
    parser.add_argument("--sample_rate", type=int, default=16000)
    parser.add_argument("data_dirs", nargs="*", type=Path,
                        help="Data dirs to write shape files for")
    return parser


def make_inputs(args) -> None:
    """Token list, BPE model and shape files as the arguments say."""
    token_list = args.token_list_dir / "tokens.txt"
    bpemodel = args.token_list_dir / "bpe.model" if args.token_type == "bpe" else None
    if args.data_dirs and args.shape_dir is None:
        raise DataPrepError("shape files need --shape_dir")
    if args.token_list_from:
        texts = []
        for d in args.token_list_from:
            data = DataDir.read(d)
            if data.text is None:
                raise DataPrepError(f"{d}: no text to build tokens from")
            texts += [t for t in data.text.values() if t]
        if bpemodel is not None:
            train_bpe_model(texts, args.token_list_dir / "bpe", args.nbpe, args.bpemode)
        write_token_list(token_list, build_token_list(texts, build_tokenizer(args.token_type,
                                                                             bpemodel)))
    elif not token_list.is_file():
        raise DataPrepError(f"{token_list}: not found (give --token_list_from to make it)")
    for d in args.data_dirs:
        write_shape_files(DataDir.read(d), args.shape_dir / d.name, token_list,
                          args.token_type, bpemodel, args.sample_rate)


def main(cmd: Optional[Sequence[str]] = None) -> None:
    """Write the token list and shape files."""
    args = parse(get_parser(), cmd)
    run_cli(lambda: make_inputs(args))


if __name__ == "__main__":
    main()

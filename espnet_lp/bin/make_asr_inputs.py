#!/usr/bin/env python3
r"""Make the token list (and BPE model) and shape files ESPnet training needs, as asr.sh does.

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
import contextlib
import logging
import shutil
from pathlib import Path
from typing import Iterator, Optional, Sequence

from espnet_lp.data.asr_inputs import (
    BPE_MODES,
    TOKEN_TYPES,
    build_token_list,
    build_tokenizer,
    shape_texts,
    train_bpe_model,
    write_token_list,
)
from espnet_lp.data.errors import DataPrepError
from espnet_lp.data.validate import read_valid_data_dir
from espnet_lp.utils.cli import new_parser, parse, run_cli
from espnet_lp.utils.fileio import path_problem, temp_sibling
from espnet_lp.utils.outputs import atomic_outputs, output_lock

logger = logging.getLogger(__name__)


def get_parser() -> argparse.ArgumentParser:
    """Build the argument parser."""
    parser = new_parser(__doc__)
    parser.add_argument("--token_type", choices=TOKEN_TYPES, default="char")
    parser.add_argument("--nbpe", type=int, default=100, help="BPE vocabulary size")
    parser.add_argument("--bpemode", choices=BPE_MODES, default="unigram")
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


def _check_args(args) -> None:
    if args.data_dirs and args.shape_dir is None:
        raise DataPrepError("shape files need --shape_dir")
    names = [d.name for d in args.data_dirs]
    for name in names:
        if names.count(name) > 1:
            raise DataPrepError(f"two data dirs named {name!r}: their shape files would both "
                                f"go to {args.shape_dir / name}")
    if args.token_type == "bpe" and args.nbpe < 2:
        raise DataPrepError(f"--nbpe must be >= 2, got {args.nbpe}")
    if args.sample_rate < 1:
        raise DataPrepError(f"--sample_rate must be positive, got {args.sample_rate}")


def make_inputs(args) -> None:
    """Token list, BPE model and shape files as the arguments say, replaced together (a
    killed run never leaves shape files counting another vocabulary than the token list)."""
    _check_args(args)
    token_list = args.token_list_dir / "tokens.txt"
    bpemodel = args.token_list_dir / "bpe.model" if args.token_type == "bpe" else None
    texts = []
    for d in args.token_list_from or []:
        data = read_valid_data_dir(d)
        if data.text is None:
            raise DataPrepError(f"{d}: no text to build tokens from")
        texts += [t for t in data.text.values() if t]
    if not args.token_list_from and path_problem(token_list) is not None:
        raise DataPrepError(f"{token_list}: {path_problem(token_list)} (give --token_list_from "
                            "to make it)")
    sets = [(d, read_valid_data_dir(d, require_text=False)) for d in args.data_dirs]
    outputs = [token_list] if args.token_list_from else []
    if args.token_list_from and bpemodel is not None:
        outputs += [bpemodel, bpemodel.with_suffix(".vocab")]
    with output_lock(outputs), _work_dir(token_list if args.token_list_from else None) as tmp:
        new_list, new_bpe = token_list, bpemodel
        if args.token_list_from:
            if bpemodel is not None:
                new_bpe = train_bpe_model(texts, tmp / "bpe", args.nbpe, args.bpemode)
            new_list = tmp / "tokens.txt"
            write_token_list(new_list, build_token_list(
                texts, build_tokenizer(args.token_type, new_bpe)))
        shapes = {}
        for d, data in sets:
            try:
                texts = shape_texts(data, new_list, args.token_type, new_bpe, args.sample_rate,
                                    str(d), unknown_is_error=not args.token_list_from)
            except DataPrepError as e:  # name the token list to be, not its temporary copy
                raise DataPrepError(str(e).replace(str(new_list), str(token_list))) from None
            for name, text in texts.items():
                shapes[args.shape_dir / d.name / name] = text
        with atomic_outputs(files=outputs + list(shapes)) as staged:
            for final in outputs:
                shutil.copyfile(tmp / final.name, staged[final])
            for final, text in shapes.items():
                staged[final].write_text(text, encoding="utf-8")
    logger.info("Wrote %s", ", ".join(map(str, outputs + list(shapes))))


@contextlib.contextmanager
def _work_dir(beside: Optional[Path]) -> Iterator[Optional[Path]]:
    """A private directory next to ``beside`` (one the next run removes if this one is
    killed: see :func:`espnet_lp.utils.fileio.remove_stale`), or None."""
    if beside is None:
        yield None
        return
    tmp = temp_sibling(beside)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(cmd: Optional[Sequence[str]] = None) -> None:
    """Write the token list and shape files."""
    args = parse(get_parser(), cmd)
    run_cli(lambda: make_inputs(args))


if __name__ == "__main__":
    main()

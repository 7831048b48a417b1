#!/usr/bin/env python3
"""Prepare ESPnet/Kaldi data directories from a LibriSpeech or AISHELL-1 tree.

Writes ``wav.scp``, ``text``, ``utt2spk``, ``spk2utt`` and ``utt2dur`` (sorted, C-locale
order) per subset, atomically: a failed run leaves no partial data directory.

Usage:
    python -m espnet_lp.bin.prepare_data --corpus librispeech --corpus_dir /data/LibriSpeech \
        --subsets train-clean-100 dev-clean test-clean --output_dir data
    python -m espnet_lp.bin.prepare_data --corpus aishell --corpus_dir /data/aishell \
        --subsets train dev test --output_dir data --on_unmatched skip
    # fetch the official archives first when corpus_dir does not exist:
    python -m espnet_lp.bin.prepare_data --corpus librispeech --corpus_dir downloads \
        --subsets dev-clean --output_dir data --download true
"""

import argparse
import logging
from pathlib import Path
from typing import Optional, Sequence

from espnet_lp.data import aishell, librispeech
from espnet_lp.data.errors import DataPrepError
from espnet_lp.data.prepare import ON_ERROR_CHOICES, build_data_dir
from espnet_lp.utils.cli import new_parser, parse, run_cli, str2bool

logger = logging.getLogger(__name__)


def get_parser() -> argparse.ArgumentParser:
    """Build the argument parser."""
    parser = new_parser(__doc__)
    parser.add_argument("--corpus", required=True, choices=("librispeech", "aishell"))
    parser.add_argument("--corpus_dir", required=True, type=Path,
                        help="LibriSpeech: the LibriSpeech/ dir or its parent; AISHELL: the dir "
                             "holding data_aishell/ and resource_aishell/")
    parser.add_argument("--subsets", nargs="+", required=True,
                        help=f"LibriSpeech: {' '.join(librispeech.SUBSETS)}; "
                             f"AISHELL: {' '.join(aishell.SPLITS)}")
    parser.add_argument("--output_dir", required=True, type=Path,
                        help="Data dirs go to OUTPUT_DIR/<subset> (LibriSpeech: '-' -> '_')")
    parser.add_argument("--download", type=str2bool, default=False,
                        help="Download the official archives if corpus_dir does not exist")
    g = parser.add_argument_group("checks")
    g.add_argument("--on_bad", choices=ON_ERROR_CHOICES, default="fail",
                   help="Utterances with unreadable/corrupt/empty/stereo/wrong-rate audio or "
                        "empty/non-UTF-8 transcripts")
    g.add_argument("--on_unmatched", choices=ON_ERROR_CHOICES, default="fail",
                   help="Transcripts without audio and audio without transcripts")
    g.add_argument("--audio_check", choices=("full", "header"), default="full",
                   help="'full' decodes every file (catches truncated bodies); 'header' is fast")
    g.add_argument("--sample_rate", type=int, default=16000)
    g.add_argument("--num_jobs", type=int, default=1, help="Processes for the audio checks")
    return parser


def _listings(args):
    if args.corpus == "librispeech":
        if not args.corpus_dir.exists():
            if not args.download:
                raise DataPrepError(f"{args.corpus_dir}: not found (pass --download true to "
                                    "fetch the official archives)")
            librispeech.download_librispeech(args.corpus_dir, args.subsets)
        for subset in args.subsets:
            if subset not in librispeech.SUBSETS:
                raise DataPrepError(f"unknown LibriSpeech subset {subset!r}; "
                                    f"valid: {librispeech.SUBSETS}")
            yield (librispeech.data_dir_name(subset),
                   librispeech.list_librispeech(args.corpus_dir, subset))
    else:
        if not args.corpus_dir.exists():
            if not args.download:
                raise DataPrepError(f"{args.corpus_dir}: not found (pass --download true to "
                                    "fetch the official archives)")
            aishell.download_aishell(args.corpus_dir)
        yield from aishell.list_aishell(args.corpus_dir, args.subsets).items()


def prepare(args) -> None:
    """Build every requested data directory in memory first, then write them all.

    Nothing is written if any subset fails, so the output never mixes old and new subsets.
    """
    built, errors = [], []
    for name, listing in _listings(args):
        logger.info("%s: checking %d utterances", name, len(listing.utterances))
        try:
            built.append((name, build_data_dir(
                listing, sample_rate=args.sample_rate, on_bad=args.on_bad,
                on_unmatched=args.on_unmatched, full_decode=args.audio_check == "full",
                num_jobs=args.num_jobs, name=f"{args.corpus} {name}")))
        except DataPrepError as e:  # check the other subsets too: report everything at once
            errors.append(str(e))
    if errors:
        raise DataPrepError("nothing written:\n" + "\n".join(errors))
    for name, data in built:
        data.write(args.output_dir / name)
        logger.info("Wrote %s: %d utterances, %d speakers, %.3f hours", args.output_dir / name,
                    len(data), len(data.spk2utt()), data.total_hours())


def main(cmd: Optional[Sequence[str]] = None) -> None:
    """Run data preparation."""
    args = parse(get_parser(), cmd)
    run_cli(lambda: prepare(args))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
r"""Prepare ESPnet/Kaldi data directories from a LibriSpeech or AISHELL-1 tree.

Writes ``wav.scp``, ``text``, ``utt2spk``, ``spk2utt`` and ``utt2dur`` (sorted, C-locale
order) per subset, all subsets together, atomically: a failed or killed run leaves no partial
data directory and never mixes old and new subsets.

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
from typing import List, Optional, Sequence

from espnet_lp.data import aishell, librispeech
from espnet_lp.data.errors import DataPrepError
from espnet_lp.data.prepare import ON_ERROR_CHOICES, build_data_dir
from espnet_lp.utils.cli import new_parser, parse, run_cli, str2bool
from espnet_lp.utils.fileio import path_problem
from espnet_lp.utils.outputs import atomic_outputs, output_lock

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


def _output_names(args) -> List[str]:
    """Data dir name of each requested subset (checked before anything is read)."""
    valid = librispeech.SUBSETS if args.corpus == "librispeech" else aishell.SPLITS
    for subset in args.subsets:
        if subset not in valid:
            raise DataPrepError(f"unknown {args.corpus} subset {subset!r}; valid: {valid}")
        if args.subsets.count(subset) > 1:
            raise DataPrepError(f"--subsets: {subset} given twice")
    if args.num_jobs < 1:
        raise DataPrepError(f"--num_jobs must be >= 1, got {args.num_jobs}")
    if args.sample_rate < 1:
        raise DataPrepError(f"--sample_rate must be positive, got {args.sample_rate}")
    if args.corpus == "librispeech":
        return [librispeech.data_dir_name(s) for s in args.subsets]
    return list(args.subsets)


def _listings(args):
    problem = path_problem(args.corpus_dir, "dir")
    if problem == "not found" and args.download:
        if args.corpus == "librispeech":
            librispeech.download_librispeech(args.corpus_dir, args.subsets)
        else:
            aishell.download_aishell(args.corpus_dir)
    elif problem == "not found":
        raise DataPrepError(f"{args.corpus_dir}: not found (pass --download true to fetch the "
                            "official archives)")
    elif problem is not None:
        raise DataPrepError(f"{args.corpus_dir}: corpus directory {problem}")
    if args.corpus == "librispeech":
        for subset in args.subsets:
            yield (librispeech.data_dir_name(subset),
                   librispeech.list_librispeech(args.corpus_dir, subset))
    else:
        yield from aishell.list_aishell(args.corpus_dir, args.subsets).items()


def prepare(args) -> None:
    """Build every requested data directory in memory first, then write them all.

    Nothing is written if any subset fails, and the subsets are moved into place together
    (:func:`espnet_lp.utils.fileio.atomic_outputs`): even a run killed while writing never
    leaves old and new subsets mixed (the next run finishes or discards the move). A second
    run writing the same data dirs at the same time is refused.
    """
    outputs = [args.output_dir / name for name in _output_names(args)]
    with output_lock(outputs):
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
            raise DataPrepError("nothing written: " + "\n".join(errors))
        dirs = [args.output_dir / name for name, _ in built]
        with atomic_outputs(dirs=dirs) as staged:
            for name, data in built:
                data.write_staged(staged[args.output_dir / name], args.output_dir / name)
    for name, data in built:
        logger.info("Wrote %s: %d utterances, %d speakers, %.3f hours", args.output_dir / name,
                    len(data), len(data.spk2utt()), data.total_hours())


def main(cmd: Optional[Sequence[str]] = None) -> None:
    """Run data preparation."""
    args = parse(get_parser(), cmd)
    run_cli(lambda: prepare(args))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Copy a seeded subset of a data directory (by speakers, utterances or hours, or an id list).

Usage:
    python -m espnet_lp.bin.subset_data_dir --utterances 500 --seed 0 data/train data/train_500
    python -m espnet_lp.bin.subset_data_dir --hours 10 data/train_clean_100 data/train_10h
    python -m espnet_lp.bin.subset_data_dir --speakers 20 --utterances 400 data/train data/sub
    python -m espnet_lp.bin.subset_data_dir --utt_list ids.txt data/train data/selected
    python -m espnet_lp.bin.subset_data_dir --spk_list spk.txt --exclude data/train data/rest
"""

import argparse
import logging
from pathlib import Path
from typing import Optional, Sequence

from espnet_lp.data.errors import DataPrepError
from espnet_lp.data.kaldi_io import read_id_list
from espnet_lp.data.subset import select_subset
from espnet_lp.data.validate import read_valid_data_dir
from espnet_lp.utils.cli import new_parser, parse, run_cli
from espnet_lp.utils.outputs import check_not_an_input


def get_parser() -> argparse.ArgumentParser:
    """Build the argument parser."""
    parser = new_parser(__doc__)
    parser.add_argument("--utterances", type=int, default=None)
    parser.add_argument("--hours", type=float, default=None)
    parser.add_argument("--speakers", type=int, default=None)
    parser.add_argument("--utt_list", type=Path, default=None,
                        help="File with one utterance id per line (first column)")
    parser.add_argument("--spk_list", type=Path, default=None,
                        help="File with one speaker id per line: keep their utterances")
    parser.add_argument("--exclude", action="store_true",
                        help="With --utt_list/--spk_list: keep everything else instead")
    parser.add_argument("--seed", type=seed_type, default=0, help="Non-negative integer")
    parser.add_argument("src")
    parser.add_argument("dst")
    return parser


def seed_type(value: str) -> int:
    """argparse type of ``--seed``: numpy's generators take non-negative integers only."""
    try:
        seed = int(value)
    except ValueError:
        seed = -1
    if seed < 0:
        raise argparse.ArgumentTypeError(f"a non-negative integer, not {value!r}")
    return seed


def main(cmd: Optional[Sequence[str]] = None) -> None:
    """Write the subset to ``dst`` atomically."""
    args = parse(get_parser(), cmd)

    def body() -> None:
        check_not_an_input([args.dst], [args.src])
        data = read_valid_data_dir(args.src)
        lists = [p for p in (args.utt_list, args.spk_list) if p is not None]
        if lists:
            if len(lists) > 1 or any(v is not None for v in
                                     (args.utterances, args.hours, args.speakers)):
                raise DataPrepError("--utt_list/--spk_list cannot be combined with other "
                                    "criteria")
            listed = set(read_id_list(lists[0]))
            by_utt = args.utt_list is not None
            known = set(data.wav_scp) if by_utt else set(data.utt2spk.values())
            unknown = sorted(listed - known)
            what = "utterance" if by_utt else "speaker"
            if unknown and (not args.exclude or len(unknown) == len(listed)):
                # excluding ids of which none is there excludes nothing: the wrong kind of id
                raise DataPrepError(f"{lists[0]}: {len(unknown)} {what} ids not in {args.src}, "
                                    f"e.g. {unknown[0]}")
            if unknown:
                logging.warning("%s: %d of %d %s ids to exclude are not in %s (e.g. %s)",
                                lists[0], len(unknown), len(listed), what, args.src, unknown[0])
            key = (lambda u: u) if by_utt else data.utt2spk.get
            ids = [u for u in data.utt_ids if (key(u) in listed) != args.exclude]
            if not ids:
                raise DataPrepError(f"{lists[0]}: selects no utterance of {args.src}")
        else:
            ids = select_subset(data, utterances=args.utterances, hours=args.hours,
                                speakers=args.speakers, seed=args.seed)
        data.subset(ids).write(args.dst)

    run_cli(body)


if __name__ == "__main__":
    main()

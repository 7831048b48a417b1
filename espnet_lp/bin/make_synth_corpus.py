#!/usr/bin/env python3
r"""Generate synthetic LibriSpeech- and AISHELL-1-layout corpora with espeak-ng.

Usage:
    python -m espnet_lp.bin.make_synth_corpus --out downloads --seed 0
    python -m espnet_lp.bin.make_synth_corpus --out big --languages en --train_utts 4000 \
        --other_fraction 0.5 --num_jobs 2
"""

import argparse
import os
from typing import Optional, Sequence

from espnet_lp.synth.config import SynthConfig
from espnet_lp.synth.corpus import make_corpus
from espnet_lp.utils.cli import parse, run_cli, str2bool


def get_parser() -> argparse.ArgumentParser:
    """Build the argument parser."""
    d = SynthConfig()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--log_level", default="INFO",
                        choices=("ERROR", "WARNING", "INFO", "DEBUG"))
    parser.add_argument("--out", required=True,
                        help="Output directory (gets LibriSpeech/, data_aishell/, ...)")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--num_jobs", type=int, default=min(4, os.cpu_count() or 1),
                        help="Parallel synthesis processes (the output does not depend on it)")
    parser.add_argument("--overwrite", action="store_true",
                        help="Replace a corpus generated before with another config")
    g = parser.add_argument_group("size")
    g.add_argument("--languages", nargs="+", default=list(d.languages), choices=("en", "zh"))
    g.add_argument("--train_utts", type=int, default=d.train_utts,
                   help="Training pool utterances per language")
    g.add_argument("--dev_utts", type=int, default=d.dev_utts, help="Per dev subset")
    g.add_argument("--test_utts", type=int, default=d.test_utts, help="Per test subset")
    g.add_argument("--extra_train_utts", type=int, default=d.extra_train_utts,
                   help="Separate labeled set with its own speakers (LibriSpeech "
                        "train-clean-360; extra AISHELL train speakers), e.g. for a KD teacher")
    g.add_argument("--utts_per_speaker", type=int, default=d.utts_per_speaker)
    g = parser.add_argument_group("difficulty")
    g.add_argument("--other_fraction", type=float, default=d.other_fraction,
                   help="Share of the training pool in the harder 'other' condition")
    g.add_argument("--snrs", type=float, nargs="+", default=list(d.snrs),
                   help="Noise SNRs (dB) of 'other' speech")
    g.add_argument("--rate_factors", type=float, nargs="+", default=list(d.rate_factors),
                   help="Tempo factors of 'other' speech")
    g.add_argument("--reverb_prob", type=float, default=d.reverb_prob)
    g = parser.add_argument_group("text")
    g.add_argument("--en_vocab", type=int, default=d.en_vocab,
                   help="English: use only the most frequent N words")
    g.add_argument("--zh_chars", type=int, default=d.zh_chars,
                   help="Mandarin: use only N characters, the most frequent (with "
                        "--zh_homophone_free, the most frequent of each reading)")
    g.add_argument("--zh_homophone_free", type=str2bool, default=d.zh_homophone_free,
                   help="Mandarin: keep one character per espeak-ng reading (syllable and "
                        "tone), so that the audio determines the transcript")
    g.add_argument("--zh_pack_clauses", type=str2bool, default=d.zh_pack_clauses,
                   help="Mandarin: join short clauses into sentences of --zh_min_chars to "
                        "--zh_max_chars characters (else one clause per sentence)")
    g.add_argument("--zh_min_chars", type=int, default=d.zh_min_chars)
    g.add_argument("--zh_max_chars", type=int, default=d.zh_max_chars)
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> None:
    """Run the generator."""
    args = parse(get_parser(), cmd)

    def body() -> None:
        cfg = SynthConfig(
            seed=args.seed, languages=tuple(args.languages), train_utts=args.train_utts,
            dev_utts=args.dev_utts, test_utts=args.test_utts,
            extra_train_utts=args.extra_train_utts, other_fraction=args.other_fraction,
            utts_per_speaker=args.utts_per_speaker, snrs=tuple(args.snrs),
            rate_factors=tuple(args.rate_factors), reverb_prob=args.reverb_prob,
            en_vocab=args.en_vocab, zh_chars=args.zh_chars,
            zh_homophone_free=args.zh_homophone_free, zh_pack_clauses=args.zh_pack_clauses,
            zh_min_chars=args.zh_min_chars, zh_max_chars=args.zh_max_chars)
        make_corpus(cfg, args.out, num_jobs=args.num_jobs, overwrite=args.overwrite)

    run_cli(body)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
r"""Summarise active-learning runs: learning-curve tables, AUC, labels saved, and a plot.

Collects every ``metrics.json`` under ``--al_dir`` (any layout, e.g.
``exp/al/<strategy>/round<r>/`` or ``exp/al/seed<k>/<strategy>/round<r>/``) and writes
``RESULTS.md``, ``results.json`` and ``learning_curve.png`` (first set) to ``--output_dir``.

Usage:
    python -m espnet_lp.bin.al_report --al_dir exp/al --sets dev_clean test_clean --metric wer
    python -m espnet_lp.bin.al_report --al_dir exp/al --sets dev test --metric cer \
        --baseline random --output_dir exp/al/report
    # without matplotlib (tables and JSON only):
    python -m espnet_lp.bin.al_report --al_dir exp/al --sets dev_clean --plot false
"""

import argparse
import logging
from pathlib import Path
from typing import Optional, Sequence

from espnet_lp.al.report import METRICS, write_report
from espnet_lp.utils.cli import new_parser, parse, run_cli, str2bool, str_or_none

logger = logging.getLogger(__name__)


def get_parser() -> argparse.ArgumentParser:
    """Build the argument parser."""
    parser = new_parser(__doc__)
    g = parser.add_argument_group("input")
    g.add_argument("--al_dir", type=Path, required=True,
                   help="Directory searched recursively for metrics.json")
    g.add_argument("--sets", nargs="+", required=True,
                   help="Evaluation sets to report (the plot shows the first)")
    g.add_argument("--metric", default="wer", choices=METRICS)
    g.add_argument("--baseline", type=str_or_none, default=None,
                   help="Strategy whose final value the others must reach (default: random, "
                        "when it was run)")
    g = parser.add_argument_group("output")
    g.add_argument("--output_dir", type=str_or_none, default=None,
                   help="Where to write the report (default: --al_dir)")
    g.add_argument("--plot", type=str2bool, default=True,
                   help="Draw learning_curve.png (needs matplotlib)")
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> None:
    """Write the report."""
    args = parse(get_parser(), cmd)

    def body() -> None:
        paths = write_report(args.al_dir, args.sets, args.metric, output_dir=args.output_dir,
                             baseline=args.baseline, plot=args.plot)
        logger.info("report: %s", paths["markdown"])

    run_cli(body)


if __name__ == "__main__":
    main()

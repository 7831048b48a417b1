#!/usr/bin/env python3
r"""Human annotation of an active-learning round: export for annotators, import their work.

``al_run --oracle human`` (``./run.sh --oracle human``) stops when a selection needs
transcripts and exports it to ``<al_dir>/<strategy>/round<r>/annotation/`` (the initial set:
``<al_dir>/initial/round0/annotation/``): Label Studio tasks (``tasks.json``, the model's
hypothesis as pre-annotation) and labeling config (``label_config.xml``), a TSV with an
empty transcript column (``tasks.tsv``), the audio (``audio/``) and a README.

``export`` rewrites those files, e.g. with another way of serving the audio. ``import``
checks a Label Studio JSON export or the filled TSV against the round's selection and the
token list, reports every problem at once (writing nothing), or writes the transcripts and
builds the next round's labeled set; then rerun the same ``al_run`` (or ``./run.sh``)
command to continue.

Usage:
    python -m espnet_lp.bin.al_annotate import --al_dir exp/al/seed0 --strategy random \
        --round 0 --input project-1-at-2026-01-01.json
    python -m espnet_lp.bin.al_annotate import --al_dir exp/al/seed0 --strategy initial \
        --round 0 --input exp/al/seed0/initial/round0/annotation/tasks.tsv
    python -m espnet_lp.bin.al_annotate import ... --on_duplicate latest --case upper \
        --oov map --oov_map conf/oov_map.txt
    # audio from a static server of exp/al instead of Label Studio's local files:
    python -m espnet_lp.bin.al_annotate export --al_dir exp/al/seed0 --strategy random \
        --round 0 --audio_url_prefix http://localhost:8081/
"""

import argparse
import logging
from pathlib import Path
from typing import Optional, Sequence

from espnet_lp.al.annotation.export import ExportOptions, write_export
from espnet_lp.al.annotation.formats import FORMATS
from espnet_lp.al.annotation.importer import CASES, ON_DUPLICATE, OOV_ACTIONS, OTHER_EXPORTS
from espnet_lp.al.annotation.importer import ImportOptions, import_annotations, token_chars
from espnet_lp.al.annotation.layout import AnnotationDir, ExportRequest, selection_round_dir
from espnet_lp.utils.cli import new_parser, parse, run_cli, str2bool, str_or_none

logger = logging.getLogger("espnet_lp.bin.al_annotate")


def _round_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("round")
    g.add_argument("--al_dir", type=Path, required=True, help="al_run's --al_dir")
    g.add_argument("--strategy", required=True,
                   help="Strategy whose selection it is ('initial': the initial set)")
    g.add_argument("--round", type=int, required=True, help="Round that selected")


def get_parser() -> argparse.ArgumentParser:
    """Build the argument parser."""
    parser = new_parser(__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    exp = sub.add_parser("export", help="(Re)write a round's files for annotators")
    _round_args(exp)
    g = exp.add_argument_group("audio")
    g.add_argument("--document_root", type=str_or_none, default=None,
                   help="Root of the served files (default: the AL dir's parent)")
    g.add_argument("--audio_url_prefix", type=str_or_none, default=None,
                   help="URL of --document_root on a static server (default: Label Studio's "
                        "local-files serving)")
    imp = sub.add_parser("import", help="Check and import a round's transcripts")
    _round_args(imp)
    g = imp.add_argument_group("input")
    g.add_argument("--input", type=Path, required=True,
                   help="Label Studio JSON (or JSON_MIN) export, or the filled tasks.tsv")
    g.add_argument("--format", choices=FORMATS, default="auto")
    g = imp.add_argument_group("checks")
    g.add_argument("--on_duplicate", choices=ON_DUPLICATE, default="error",
                   help="Several transcripts of one utterance: error, or keep the latest")
    g.add_argument("--oov", choices=OOV_ACTIONS, default="reject",
                   help="Characters outside the token list: reject, or map (--oov_map)")
    g.add_argument("--oov_map", type=str_or_none, default=None,
                   help="'FROM TO' lines ('<space>' is a space; no TO deletes)")
    g.add_argument("--case", choices=CASES, default="keep",
                   help="Change the transcripts' case first (LibriSpeech tokens: upper)")
    g.add_argument("--other_exports", choices=OTHER_EXPORTS, default="error",
                   help="Records of other rounds' exports (one Label Studio project for "
                        "several rounds): error, or skip them")
    g.add_argument("--replace", type=str2bool, default=False,
                   help="Replace other transcripts imported before for this round (only "
                        "until the loop used them)")
    return parser


def export(args) -> None:
    """Rewrite the export files of a round (the selection itself stays)."""
    adir = AnnotationDir(selection_round_dir(args.al_dir, args.strategy, args.round))
    request = ExportRequest.read(adir.request)
    chars = "".join(sorted(token_chars(request.token_list)))
    options = ExportOptions(Path(args.document_root) if args.document_root else None,
                            args.audio_url_prefix)
    write_export(args.al_dir, adir, request, options, chars)
    logger.info("exported %d utterances of %s: %s (see %s)", len(request.utterances),
                request.describe(), adir.dir, adir.readme)


def do_import(args) -> None:
    """Check the annotators' file, then write the transcripts and the next labeled set."""
    options = ImportOptions(args.format, args.on_duplicate, args.oov, args.oov_map,
                            args.case, args.other_exports, args.replace)
    result = import_annotations(args.al_dir, args.strategy, args.round, args.input, options)
    if result.unchanged:
        logger.info("%s: the same transcripts were imported before; nothing to do", args.input)
    else:
        logger.info("imported %d transcripts from %s", result.transcripts, args.input)
    if result.applied:
        logger.info("labeled set: %s. Next: rerun the same al_run command (or ./run.sh with "
                    "the same options) to continue", result.labeled_dir)
    else:
        logger.info("the run holding %s applies them when it gets there (or rerun it "
                    "later)", args.al_dir)


def main(cmd: Optional[Sequence[str]] = None) -> None:
    """Run ``export`` or ``import``."""
    args = parse(get_parser(), cmd)
    run_cli(lambda: export(args) if args.command == "export" else do_import(args))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
r"""Refit the loss-prediction heads of a trained LP model on held-out transcribed utterances.

The ASR is frozen; only the LP heads change. Use utterances the ASR did not train on (the
validation set): on its own training utterances the ASR's losses are memorised and the heads
learn a relation that does not hold on the unlabeled pool (see ``espnet_lp.asr.lp_refit``).
Writes a full checkpoint (the ASR's tensors unchanged, the refit heads) that every ESPnet
tool loads as ``--asr_model_file``, and ``<output_file>.json`` with the refit's figures.
The active-learning loop runs this after every training (``lp_refit: true`` in its yaml).

Usage:
    python -m espnet_lp.bin.lp_refit \
        --asr_train_config exp/asr_lp/config.yaml \
        --asr_model_file exp/asr_lp/valid.acc.best.pth \
        --data_dir data/dev --output_file exp/asr_lp/valid.acc.best.lp_refit.pth
"""

import argparse
import json
import logging
import math
from pathlib import Path
from typing import Optional, Sequence

from espnet_lp.asr.lp_losses import LP_LOSSES
from espnet_lp.errors import EspnetLPError
from espnet_lp.utils.cli import new_parser, parse, run_cli, str2bool
from espnet_lp.utils.espnet_loader import streaming_batches
from espnet_lp.utils.outputs import output_lock

logger = logging.getLogger(__name__)


class LPRefitError(EspnetLPError, ValueError):
    """A model or data dir the LP heads cannot be refit with."""


def get_parser() -> argparse.ArgumentParser:
    """Build the argument parser."""
    parser = new_parser(__doc__)
    g = parser.add_argument_group("model")
    g.add_argument("--asr_train_config", type=Path, required=True)
    g.add_argument("--asr_model_file", type=Path, required=True)
    g.add_argument("--ngpu", type=int, default=0)
    g = parser.add_argument_group("data")
    g.add_argument("--data_dir", type=Path, required=True,
                   help="Held-out data dir with wav.scp and text (not the training set)")
    g.add_argument("--batch_size", type=int, default=8)
    g = parser.add_argument_group("refit")
    g.add_argument("--steps", type=int, default=300)
    g.add_argument("--lr", type=float, default=0.003)
    g.add_argument("--weight_decay", type=float, default=1e-4)
    g.add_argument("--combined_weight", type=float, default=1.0,
                   help="Weight of the loss on the heads' ctc_weight mix (what is ranked by)")
    g.add_argument("--loss", default="margin_ranking", choices=sorted(LP_LOSSES) + ["model"],
                   help="Refit loss ('model': the LP decoder's own)")
    g.add_argument("--reinit", type=str2bool, default=False,
                   help="Start from fresh heads (default: from the jointly trained ones)")
    g.add_argument("--valid_fraction", type=float, default=0.2,
                   help="Share of the utterances kept aside to choose the step")
    g.add_argument("--seed", type=int, default=0)
    g = parser.add_argument_group("output")
    g.add_argument("--output_file", type=Path, required=True,
                   help="Checkpoint to write (full model state dict)")
    return parser


def _batches(train_args, data_dir: Path, batch_size: int, device: str):
    for keys, batch in streaming_batches(train_args, data_dir, batch_size, with_text=True):
        batch = {k: v.to(device) for k, v in batch.items()}
        yield (list(keys), batch["speech"], batch["speech_lengths"], batch["text"],
               batch["text_lengths"])


def check_options(args) -> None:
    """The refit options alone (also what ``al_run --lp_refit_opts`` is checked with)."""
    if args.steps < 1 or not 0.0 <= args.valid_fraction < 1.0:
        raise LPRefitError(f"--steps must be >= 1 and --valid_fraction in [0, 1): "
                           f"{args.steps}, {args.valid_fraction}")
    for name, value, ok, want in (
            ("batch_size", args.batch_size, args.batch_size >= 1, ">= 1"),
            ("lr", args.lr, 0 < args.lr < math.inf, "a positive number"),
            ("weight_decay", args.weight_decay, 0 <= args.weight_decay < math.inf, ">= 0"),
            ("combined_weight", args.combined_weight, 0 <= args.combined_weight < math.inf,
             ">= 0"), ("ngpu", args.ngpu, args.ngpu >= 0, ">= 0")):
        if not ok:
            raise LPRefitError(f"--{name} must be {want}, got {value}")


def report_file(args) -> Path:
    """``<output_file>.json``: the refit's figures."""
    return args.output_file.with_suffix(".json")


def check_inputs(args) -> None:
    """Options, model files, the held-out data dir and the output file, before a model is
    loaded or anything written."""
    from espnet_lp.utils.cli import check_data_args, check_model_files, model_sample_rate
    from espnet_lp.utils.fileio import path_problem

    check_options(args)
    if args.ngpu > 0:
        import torch

        if not torch.cuda.is_available():
            raise LPRefitError(f"--ngpu {args.ngpu}: no CUDA device here (use --ngpu 0)")
    config = check_model_files(str(args.asr_train_config), str(args.asr_model_file))
    problem = path_problem(args.data_dir, "dir")
    if problem is not None:
        raise LPRefitError(f"{args.data_dir}: held-out data dir {problem}")
    for name in ("wav.scp", "text"):
        if path_problem(args.data_dir / name) is not None:
            raise LPRefitError(f"{args.data_dir / name}: {path_problem(args.data_dir / name)}")
    check_data_args([f"{args.data_dir / 'wav.scp'},speech,sound"],
                    sample_rate=model_sample_rate(config))
    for path in (args.output_file, report_file(args)):
        if path.resolve() in (args.asr_model_file.resolve(), args.asr_train_config.resolve()):
            raise LPRefitError(f"--output_file {args.output_file}: would overwrite the model "
                               f"it refits ({path}); write another file")
        if path.is_dir():
            raise LPRefitError(f"{path}: is a directory; --output_file names a checkpoint "
                               "file")


def check_transcripts_fit(args, train_args) -> None:
    """The held-out transcripts are in the model's tokens (not those of another corpus,
    which would all be ``<unk>``)."""
    from espnet_lp.data.asr_inputs import check_unknown_tokens
    from espnet_lp.data.datadir import DataDir
    from espnet_lp.data.errors import DataPrepError

    try:
        check_unknown_tokens(DataDir.read(args.data_dir).text.values(), train_args.token_list,
                             train_args.token_type, getattr(train_args, "bpemodel", None),
                             f"{args.data_dir / 'text'}",
                             f"the token list of {args.asr_train_config}")
    except DataPrepError as e:
        raise LPRefitError(str(e)) from None


def refit(args) -> dict:
    """Check, load, collect, refit, write; return the report."""
    check_inputs(args)
    with output_lock([args.output_file, report_file(args)]):
        return _refit(args)


def _refit(args) -> dict:
    import torch
    from espnet2.tasks.asr import ASRTask

    from espnet_lp.asr.lp_refit import (
        check_refittable,
        collect_held_out,
        refit_heads,
    )
    from espnet_lp.utils.outputs import atomic_outputs

    device = "cuda" if args.ngpu > 0 else "cpu"
    try:
        model, train_args = ASRTask.build_model_from_file(args.asr_train_config,
                                                          args.asr_model_file, device)
    except RuntimeError as e:
        if "Error(s) in loading state_dict" not in str(e):
            raise
        raise LPRefitError(f"{args.asr_model_file} does not fit {args.asr_train_config}: "
                           f"{' '.join(str(e).split())[:300]}") from None
    check_transcripts_fit(args, train_args)
    try:
        lp = check_refittable(getattr(model, "lp_decoder", None))
    except ValueError as e:
        raise LPRefitError(f"{args.asr_train_config}: {e}") from None
    model.eval()
    try:
        data = collect_held_out(model, _batches(train_args, args.data_dir,
                                                args.batch_size, device))
    except ValueError as e:
        raise LPRefitError(f"{args.data_dir}: {e}") from None
    data.pooled = {k: v.to(device) for k, v in data.pooled.items()}
    data.targets = {k: v.to(device) for k, v in data.targets.items()}
    report = refit_heads(lp, data, float(model.ctc_weight), steps=args.steps, lr=args.lr,
                         weight_decay=args.weight_decay, combined_weight=args.combined_weight,
                         loss=None if args.loss == "model" else args.loss,
                         reinit=args.reinit, valid_fraction=args.valid_fraction, seed=args.seed)
    report.update(data_dir=str(args.data_dir), source_model=str(args.asr_model_file))
    with atomic_outputs(files=[args.output_file, report_file(args)]) as staged:
        with open(staged[args.output_file], "wb") as f:  # (a path would name the archive
            torch.save(model.state_dict(), f)  # after the temporary file: other bytes each run)
        staged[report_file(args)].write_text(json.dumps(report, indent=1, sort_keys=True)
                                             + "\n", encoding="utf-8")
    logger.info("wrote %s", args.output_file)
    return report


def main(cmd: Optional[Sequence[str]] = None) -> None:
    """Refit the LP heads."""
    args = parse(get_parser(), cmd)
    run_cli(lambda: refit(args))


if __name__ == "__main__":
    main()

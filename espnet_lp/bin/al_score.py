#!/usr/bin/env python3
r"""Score one shard of the unlabeled pool with an acquisition strategy (like asr_inference).

Run one job per key file with the same ``--output_dir``; job N writes ``score.N`` (and
``embedding.N.npz`` for strategies that return embeddings), atomically, once it is done.
``espnet_lp.bin.al_select`` merges the shards. Scores are computed one utterance at a time by
default for models that do not keep padding out (``--batch_size 0``, auto): in plain ESPnet
models padded frames leak through the frontend, the subsampling mask and the convolution
modules, so batching would make an utterance's score depend on its neighbours and on the
sharding. LP models (``model_conf.mask_padding: true``, the default) are scored in batches of
16 utterances of similar length (sorted 512 at a time), with the same scores.

Usage:
    python -m espnet_lp.bin.al_score --strategy loss_prediction \
        --asr_train_config exp/al/loss_prediction/round1/model/config.yaml \
        --asr_model_file exp/al/loss_prediction/round1/model/valid.acc.best.pth \
        --data_dir exp/al/loss_prediction/round1/data/pool --key_file keys.3 --job 3 \
        --output_dir exp/al/loss_prediction/round1/scores
    # simulation reference (reads the pool's hidden transcripts):
    python -m espnet_lp.bin.al_score --strategy true_loss --use_transcripts true ...
"""

import argparse
import logging
import time
from pathlib import Path
from typing import Optional, Sequence, Tuple

import numpy as np

from espnet_lp.al.score_files import write_shard
from espnet_lp.al.scoring import (
    STRATEGIES,
    PoolBatch,
    Scorer,
    ScoringError,
    get_strategy,
    score_batch,
)
from espnet_lp.utils.cli import new_parser, parse, run_cli, str2bool, str_or_none
from espnet_lp.utils.espnet_loader import length_sorted_batches, streaming_batches
from espnet_lp.utils.outputs import output_lock

logger = logging.getLogger(__name__)


def get_parser() -> argparse.ArgumentParser:
    """Build the argument parser."""
    parser = new_parser(__doc__)
    g = parser.add_argument_group("model")
    g.add_argument("--asr_train_config", type=str, required=True)
    g.add_argument("--asr_model_file", type=str, required=True)
    g.add_argument("--ngpu", type=int, default=0)
    g = parser.add_argument_group("strategy")
    g.add_argument("--strategy", required=True, choices=sorted(STRATEGIES))
    g.add_argument("--seed", type=int, default=0, help="Seed of 'random'")
    g.add_argument("--round", type=int, default=0, help="Round index ('random' draws anew)")
    g.add_argument("--beam_size", type=int, default=4, help="least_confidence's beam search")
    g.add_argument("--ctc_weight", type=float, default=0.3,
                   help="CTC weight of least_confidence's joint beam search")
    g.add_argument("--use_transcripts", type=str2bool, default=False,
                   help="Read the pool's transcripts (true_loss, simulation only)")
    g = parser.add_argument_group("data")
    g.add_argument("--data_dir", type=Path, required=True, help="Pool data dir (wav.scp)")
    g.add_argument("--key_file", type=str_or_none, default=None, help="Shard: ids to score")
    g.add_argument("--batch_size", type=int, default=0,
                   help="0: 16 for models with mask_padding (batch-invariant), else 1")
    g = parser.add_argument_group("output")
    g.add_argument("--output_dir", type=Path, required=True)
    g.add_argument("--job", type=int, default=1, help="Shard number (score.<job>)")
    return parser


def _speech2text(args):
    from espnet2.bin.asr_inference import Speech2Text

    device = "cuda" if args.ngpu > 0 else "cpu"
    try:
        return Speech2Text(asr_train_config=args.asr_train_config,
                           asr_model_file=args.asr_model_file, device=device,
                           beam_size=args.beam_size, ctc_weight=args.ctc_weight, lm_weight=0.0,
                           nbest=1)
    except RuntimeError as e:
        if "Error(s) in loading state_dict" not in str(e):
            raise
        raise ScoringError(f"{args.asr_model_file} does not fit {args.asr_train_config}: "
                           f"{' '.join(str(e).split())[:300]}") from None


def _loader(args, speech2text):
    singles = streaming_batches(speech2text.asr_train_args, args.data_dir, 1,
                                with_text=args.use_transcripts, key_file=args.key_file)
    if args.batch_size == 1:
        return singles
    # batch-invariant model: batches of similar length, so that less padding is computed
    return length_sorted_batches(singles, args.batch_size, window=32 * args.batch_size)


def check_options(args) -> None:
    """The scoring options alone (also what ``al_run --score_opts`` is checked with)."""
    strategy = get_strategy(args.strategy)
    if strategy.simulation_only and not args.use_transcripts:
        raise ScoringError(f"{args.strategy} reads hidden transcripts: pass "
                           "--use_transcripts true (simulation only)")
    for name, low in (("job", 1), ("round", 0), ("seed", 0), ("batch_size", 0),
                      ("beam_size", 1), ("ngpu", 0)):
        if getattr(args, name) < low:
            raise ScoringError(f"--{name} must be >= {low}, got {getattr(args, name)}")
    if not 0.0 <= args.ctc_weight <= 1.0:
        raise ScoringError(f"--ctc_weight must be in [0, 1], got {args.ctc_weight}")


def check_inputs(args) -> None:
    """Options, model files, the pool's data dir, key file and audio, and the output dir:
    a mistake is one line naming it, before a model is loaded or a file written."""
    from espnet_lp.utils.cli import check_data_args, check_model_files, model_sample_rate
    from espnet_lp.utils.fileio import path_problem

    check_options(args)
    if args.ngpu > 0:
        import torch

        if not torch.cuda.is_available():
            raise ScoringError(f"--ngpu {args.ngpu}: no CUDA device here (use --ngpu 0)")
    config = check_model_files(args.asr_train_config, args.asr_model_file)
    problem = path_problem(args.data_dir, "dir")
    if problem is not None:
        raise ScoringError(f"{args.data_dir}: pool data dir {problem}")
    check_data_args([f"{args.data_dir / 'wav.scp'},speech,sound"], args.key_file,
                    model_sample_rate(config))
    if args.use_transcripts and path_problem(args.data_dir / "text") is not None:
        raise ScoringError(f"{args.data_dir / 'text'}: {path_problem(args.data_dir / 'text')};"
                           f" {args.strategy} needs the pool's transcripts (simulation only)")
    problem = path_problem(args.output_dir, "dir")
    if problem not in (None, "not found"):
        raise ScoringError(f"{args.output_dir}: output directory {problem}")


def shard_files(args) -> Tuple[Path, Path]:
    """The shard's score file and embedding file."""
    return args.output_dir / f"score.{args.job}", args.output_dir / f"embedding.{args.job}.npz"


def score_shard(args) -> int:
    """Score the shard and write its files; return the number of utterances.

    The shard's files are locked first (a second run of the same shard is refused) and
    replaced together (a killed run leaves the previous ones).
    """
    check_inputs(args)
    with output_lock(shard_files(args)):
        return _score_shard(args)


def _score_shard(args) -> int:
    strategy = get_strategy(args.strategy)
    speech2text = _speech2text(args)
    model = speech2text.asr_model.eval()
    scorer = Scorer(model, seed=args.seed, round_index=args.round,
                    beam_search=lambda: speech2text)
    device = next(model.parameters()).device
    if args.batch_size <= 0:
        args.batch_size = 16 if getattr(model, "mask_padding", False) else 1
    ids, scores, embeddings = [], [], []
    start, last_log = time.perf_counter(), time.perf_counter()
    for keys, batch in _loader(args, speech2text):
        batch = {k: v.to(device) for k, v in batch.items()}
        pool = PoolBatch(list(keys), batch["speech"], batch["speech_lengths"],
                         batch.get("text"), batch.get("text_lengths"))
        out = score_batch(strategy, scorer, pool)
        ids += list(keys)
        scores += out.scores.tolist()
        if out.embedding is not None:
            embeddings.append(out.embedding.numpy())
        if time.perf_counter() - last_log > 30:
            last_log = time.perf_counter()
            logger.info("%s: %d utterances, %.1f utt/s", args.strategy, len(ids),
                        len(ids) / (last_log - start))
    write_shard(args.output_dir, args.job, ids, scores,
                np.concatenate(embeddings) if embeddings else None)
    elapsed = time.perf_counter() - start
    logger.info("%s job %d: scored %d utterances in %.1f s (%.1f utt/s)", args.strategy,
                args.job, len(ids), elapsed, len(ids) / max(elapsed, 1e-9))
    return len(ids)


def main(cmd: Optional[Sequence[str]] = None) -> None:
    """Score one shard."""
    args = parse(get_parser(), cmd)
    run_cli(lambda: score_shard(args))


if __name__ == "__main__":
    main()

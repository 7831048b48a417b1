#!/usr/bin/env python3
r"""Run active-learning rounds: R rounds x strategies from one seeded initial set.

Per round and strategy: train (stock ``espnet2.bin.asr_train``), decode the test sets (stock
``asr_inference``, WER/CER with jiwer), score the pool (``al_score``, ``--nj`` shards), select
within the round's budget, and let the oracle transcribe the selection. Resumable: rerun the
same command after a crash or kill and it continues with the first unfinished stage. Results:
``<al_dir>/RESULTS.md``, ``learning_curve.png``, ``results.json``.

With ``--oracle human`` people transcribe the selections: when one waits for transcripts,
its files for annotators are exported (``<round dir>/annotation/``), every strategy goes
as far as it can, and al_run exits with status 3 (``EXIT_ANNOTATION_PENDING``) after saying
what to do: annotate, ``python -m espnet_lp.bin.al_annotate import ...``, then rerun the
same command, which resumes with the next stage.

Usage:
    python -m espnet_lp.bin.al_run --al_dir exp/al --al_config conf/al/default.yaml \
        --strategies random ctc_confidence loss_prediction \
        --train_set data/train_clean_100 --valid_set data/dev_clean \
        --test_sets data/dev_clean data/test_clean --token_list data/token_list/char/tokens.txt \
        --train_config conf/tuning/train_lp_tiny.yaml --nj 2
    # budgets in hours, 5 rounds, distilling from the recipe's teacher in every round:
    python -m espnet_lp.bin.al_run ... --initial_hours 1 --budget_hours 1 --rounds 5 \
        --teacher_spec exp/kd/teacher.yaml --kd_weight 0.5
    # untranscribed pool, people transcribe (Label Studio or a TSV):
    python -m espnet_lp.bin.al_run ... --oracle human
    # the baseline now, LP on another day (the same run: round 0 is shared, not retrained):
    python -m espnet_lp.bin.al_run ... --strategies random loss_prediction --only_strategies random
    python -m espnet_lp.bin.al_run ... --strategies random loss_prediction \
        --only_strategies loss_prediction
    # a strategy joins the finished run (only it runs, from the same round 0):
    python -m espnet_lp.bin.al_run ... --strategies random loss_prediction ctc_confidence
"""

import argparse
import logging
import shlex
import sys
from dataclasses import fields
from pathlib import Path
from typing import Optional, Sequence

from espnet_lp.al.config_check import parse_kd_opts
from espnet_lp.al.loop import ALRun
from espnet_lp.al.run_config import ALConfig, ALRunError
from espnet_lp.al.oracle import ORACLES, AnnotationPending
from espnet_lp.al.scoring import STRATEGIES
from espnet_lp.al.selection import ACQUISITIONS
from espnet_lp.utils.cli import new_parser, parse, run_cli, str2bool, str_or_none
from espnet_lp.utils.fileio import read_yaml

#: Keys of an ``--al_config`` yaml (the strategy-independent settings of a run).
AL_CONFIG_KEYS = ("strategies", "initial", "budget_per_round", "rounds", "cost", "retrain",
                  "warm_start_opts", "seed", "num_clusters", "acquisition", "acquisition_beta",
                  "typicality_knn", "typicality_gate", "lp_refit")
#: Exit status of a run that stopped because selections wait for people's transcripts.
EXIT_ANNOTATION_PENDING = 3


def get_parser() -> argparse.ArgumentParser:
    """Build the argument parser."""
    parser = new_parser(__doc__)
    parser.add_argument("--al_dir", type=Path, required=True)
    parser.add_argument("--al_config", type=str_or_none, default=None,
                        help=f"yaml with any of {', '.join(AL_CONFIG_KEYS)} (flags override)")
    g = parser.add_argument_group("active learning")
    g.add_argument("--strategies", nargs="+", default=None, choices=sorted(STRATEGIES))
    g.add_argument("--only_strategies", nargs="+", default=[], choices=sorted(STRATEGIES),
                   help="Run only these of the strategies now; the others stay as far as "
                        "they got (the same run: round 0 stays shared). Splits a run over "
                        "sessions or machines, or adds a strategy's rounds later")
    g.add_argument("--initial_utts", type=int, default=None)
    g.add_argument("--initial_hours", type=float, default=None)
    g.add_argument("--budget_utts", type=int, default=None, help="Per round")
    g.add_argument("--budget_hours", type=float, default=None, help="Per round")
    g.add_argument("--rounds", type=int, default=None)
    g.add_argument("--cost", choices=("duration", "none"), default=None)
    g.add_argument("--retrain", choices=("scratch", "warm_start"), default=None)
    g.add_argument("--warm_start_opts", default=None,
                   help="Extra asr_train options of warm-started rounds, e.g. '--max_epoch 6'")
    g.add_argument("--seed", type=int, default=None)
    g.add_argument("--num_clusters", type=int, default=None, help="lp_diverse's k-means")
    g.add_argument("--acquisition", choices=ACQUISITIONS, default=None,
                   help="topk: the best-scored utterances (default); softrank: a sample that "
                        "favours them, probability ~ rank ** -beta; typical: the best-scored "
                        "typical utterance of each k-means cluster of the pool (TypiClust)")
    g.add_argument("--acquisition_beta", type=float, default=None,
                   help="softrank's sharpness (default 1)")
    g.add_argument("--typicality_knn", type=int, default=None,
                   help="typical: neighbours of the typicality estimate (default 20)")
    g.add_argument("--typicality_gate", type=float, default=None,
                   help="typical: fraction of each cluster the score chooses from (default 0.5)")
    g.add_argument("--lp_refit", type=str2bool, default=None,
                   help="Refit LP heads on --valid_set after each training (default true)")
    g.add_argument("--lp_refit_opts", default="", help="Extra lp_refit options")
    g.add_argument("--oracle", choices=ORACLES, default="simulated",
                   help="Who transcribes selections: the pool's held-back transcripts, or "
                        f"people (exit status {EXIT_ANNOTATION_PENDING} while waiting; see "
                        "espnet_lp.bin.al_annotate)")
    g = parser.add_argument_group("data and model")
    g.add_argument("--train_set", required=True, help="Training pool data dir")
    g.add_argument("--valid_set", required=True)
    g.add_argument("--test_sets", nargs="+", required=True)
    g.add_argument("--token_list", required=True)
    g.add_argument("--token_type", default="char")
    g.add_argument("--bpemodel", type=str_or_none, default=None)
    g.add_argument("--train_config", required=True)
    g.add_argument("--train_opts", default="", help="Extra asr_train options (one string)")
    g.add_argument("--decode_opts", default="--beam_size 1 --ctc_weight 1.0",
                   help="asr_inference options (default: CTC greedy; an under-trained "
                        "attention decoder loops at joint beam 1)")
    g.add_argument("--score_opts", default="", help="Extra al_score options")
    g.add_argument("--cer_remove_spaces", type=str2bool, default=False, help="Mandarin: true")
    g.add_argument("--metric", choices=("wer", "cer"), default="wer",
                   help="What RESULTS.md and the learning curve show (Mandarin: cer)")
    g = parser.add_argument_group("distillation")
    g.add_argument("--teacher_spec", type=str_or_none, default=None)
    g.add_argument("--kd_weight", type=float, default=0.0)
    g.add_argument("--kd_opts", default="", help="ctc_kl options, e.g. 'temperature=2.0'")
    g.add_argument("--kd_pool", type=str2bool, default=False,
                   help="Also train on the pool's audio with the KL term only")
    g = parser.add_argument_group("resources")
    g.add_argument("--nj", type=int, default=1)
    g.add_argument("--ngpu", type=int, default=0)
    g.add_argument("--backend", choices=("local", "slurm"), default="local",
                   help="Where training, decoding and scoring jobs run (cmd.sh's cmd_backend)")
    g.add_argument("--slurm_opts", default="", help="Extra srun options (backend slurm)")
    return parser


def _budget(utts: Optional[int], hours: Optional[float], name: str):
    if utts is not None and hours is not None:
        raise ALRunError(f"give --{name}_utts or --{name}_hours, not both")
    if utts is not None:
        return {"utterances": utts}
    return None if hours is None else {"hours": hours}


def build_config(args) -> ALConfig:
    """The run's config: defaults < ``--al_config`` yaml < flags."""
    values = {}
    if args.al_config is not None:
        conf = read_yaml(args.al_config, ALRunError, "AL config") or {}
        if not isinstance(conf, dict):
            raise ALRunError(f"{args.al_config}: expected a mapping of {AL_CONFIG_KEYS}")
        unknown = sorted(set(conf) - set(AL_CONFIG_KEYS))
        if unknown:
            raise ALRunError(f"{args.al_config}: unknown keys {unknown}; known: "
                             f"{', '.join(AL_CONFIG_KEYS)}")
        values.update(conf)
    if args.warm_start_opts is not None:
        values["warm_start_opts"] = args.warm_start_opts
    if isinstance(values.get("warm_start_opts"), str):
        values["warm_start_opts"] = _split(values["warm_start_opts"], "warm_start_opts")
    if not isinstance(values.get("warm_start_opts", []), list):
        raise ALRunError(f"{args.al_config}: warm_start_opts must be a string of options or a "
                         "list of them")
    values["warm_start_opts"] = [str(v) for v in values.get("warm_start_opts", [])]
    flags = {"strategies": args.strategies, "rounds": args.rounds, "cost": args.cost,
             "retrain": args.retrain, "seed": args.seed, "num_clusters": args.num_clusters,
             "acquisition": args.acquisition, "acquisition_beta": args.acquisition_beta,
             "typicality_knn": args.typicality_knn, "typicality_gate": args.typicality_gate,
             "lp_refit": args.lp_refit,
             "initial": _budget(args.initial_utts, args.initial_hours, "initial"),
             "budget_per_round": _budget(args.budget_utts, args.budget_hours, "budget")}
    values.update({k: v for k, v in flags.items() if v is not None})
    if "strategies" not in values:
        raise ALRunError("name the strategies (--strategies or strategies: in --al_config)")
    values.update(
        train_set=args.train_set, valid_set=args.valid_set, test_sets=args.test_sets,
        token_list=args.token_list, token_type=args.token_type, bpemodel=args.bpemodel,
        train_config=args.train_config, train_opts=_split(args.train_opts, "--train_opts"),
        decode_opts=_split(args.decode_opts, "--decode_opts"),
        score_opts=_split(args.score_opts, "--score_opts"),
        lp_refit_opts=_split(args.lp_refit_opts, "--lp_refit_opts"),
        nj=args.nj, only_strategies=list(args.only_strategies), ngpu=args.ngpu,
        backend=args.backend, slurm_opts=args.slurm_opts,
        teacher_spec=args.teacher_spec, kd_weight=args.kd_weight,
        kd_conf=parse_kd_opts(args.kd_opts), kd_pool=args.kd_pool,
        cer_remove_spaces=args.cer_remove_spaces, metric=args.metric, oracle=args.oracle)
    known = {f.name for f in fields(ALConfig)}
    return ALConfig(**{k: v for k, v in values.items() if k in known})


def _split(text: str, flag: str):
    try:
        return shlex.split(text)
    except ValueError as e:
        raise ALRunError(f"{flag} {text!r}: {e}") from None


def main(cmd: Optional[Sequence[str]] = None) -> None:
    """Run or resume the rounds, then write the report."""
    args = parse(get_parser(), cmd)
    run_cli(lambda: _run(args))


def _run(args) -> None:
    try:
        ALRun(build_config(args), args.al_dir).run()
    except AnnotationPending as e:
        logging.getLogger("espnet_lp").warning(
            "stopped for annotation:\n%s\nthen rerun this al_run command (same arguments): "
            "it resumes with the next stage", e)
        sys.exit(EXIT_ANNOTATION_PENDING)


if __name__ == "__main__":
    main()

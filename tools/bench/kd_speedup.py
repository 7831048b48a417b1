#!/usr/bin/env python3
"""Benchmark: does distillation speed up training of the tiny student?

A teacher (``conf/tuning/train_asr_teacher_cpu.yaml``: a stock ESPnet conformer larger than
the student) is trained on a larger labeled set with its own speakers (synthetic
``train-clean-360``); then the same student (tiny config, same seed, same data:
``train-clean-100``) is trained with and without KD (``ctc_kl``, online teacher). Prints the
validation CER per epoch of both and epochs(KD) / epochs(no KD) to reach the no-KD final CER
(goal <= 0.5). Rerunning with the same ``--work_dir`` reuses the trained teacher.

Usage:
    python tools/bench/kd_speedup.py                    # ~20 min on 2 CPU cores
    python tools/bench/kd_speedup.py --work_dir /tmp/kd --kd_weight 0.5 --frame_select all
"""

import argparse
import shlex
import shutil
import tempfile
from pathlib import Path

import torch

from common import ROOT, prepare_english, train_args, write_results


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work_dir", type=Path, default=None)
    parser.add_argument("--student_utts", type=int, default=300)
    parser.add_argument("--teacher_utts", type=int, default=1200)
    parser.add_argument("--eval_utts", type=int, default=60)
    parser.add_argument("--teacher_epochs", type=int, default=20)
    parser.add_argument("--student_epochs", type=int, default=15)
    # Tuned on this setup (see results/kd_speedup.md): weight 0.5 / 0.8 with all frames at
    # T=1 reach the no-KD final CER at epoch 9 of 15; non-blank frames and T=2 help most.
    parser.add_argument("--kd_weight", type=float, default=0.9)
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--frame_select", default="teacher_nonblank",
                        choices=("all", "teacher_nonblank"))
    parser.add_argument("--kd_opts", default="", help="Extra asr_train options of the KD run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", type=Path,
                        default=ROOT / "conf" / "tuning" / "train_lp_tiny.yaml",
                        help="Student config")
    parser.add_argument("--teacher_config", type=Path,
                        default=ROOT / "conf" / "tuning" / "train_asr_teacher_cpu.yaml")
    return parser


def epoch_stats(exp: Path) -> dict:
    """ESPnet's per-epoch reporter statistics of a finished training run."""
    return torch.load(exp / "checkpoint.pth", weights_only=False)["reporter"]["stats"]


def valid_cer(stats: dict) -> list:
    return [round(float(stats[e]["valid"]["cer_ctc"]), 4) for e in sorted(stats)]


def best_acc_cer(stats: dict) -> float:
    """Validation CER of the checkpoint KD uses (best validation accuracy)."""
    best = max(stats, key=lambda e: float(stats[e]["valid"]["acc"]))
    return round(float(stats[best]["valid"]["cer_ctc"]), 4)


def training_seconds(stats: dict) -> float:
    """Training + validation time of all epochs (so a reused teacher still reports its cost)."""
    return round(sum(stats[e][phase]["time"].total_seconds()  # a datetime.timedelta
                     for e in stats for phase in stats[e]), 1)


def epochs_to_reach(curve, target):
    return next((i + 1 for i, c in enumerate(curve) if c <= target), None)


def main() -> None:
    args = get_parser().parse_args()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="kd_speedup."))
    prepare_english(work, args.student_utts, args.eval_utts, args.seed,
                    ["train-clean-100", "train-clean-360", "dev-clean"],
                    extra_train_utts=args.teacher_utts)

    from espnet_lp.asr.teacher import kd_train_args
    from espnet_lp.bin.asr_train import main as train_main

    seed = ["--seed", str(args.seed)]
    teacher = work / "exp" / f"teacher_{args.teacher_config.stem}"
    teacher_reused = (teacher / "valid.acc.best.pth").exists()
    # Rerunning in the same --work_dir resumes (ESPnet) or reuses the finished teacher.
    train_main(train_args(work, teacher, args.teacher_config, train="train_clean_360")
               + ["--max_epoch", str(args.teacher_epochs), "--resume", "true"] + seed)
    student = ["--max_epoch", str(args.student_epochs)] + seed
    for name, extra in [
        ("no_kd", []),
        ("kd", kd_train_args({"asr_train_config": str(teacher / "config.yaml"),
                              "asr_model_file": str(teacher / "valid.acc.best.pth")},
                             args.kd_weight, {"temperature": args.temperature,
                                              "frame_select": args.frame_select})
         + shlex.split(args.kd_opts)),
    ]:
        shutil.rmtree(work / "exp" / name, ignore_errors=True)  # students always start afresh
        train_main(train_args(work, work / "exp" / name, args.config) + student + extra)

    stats = {name: epoch_stats(exp) for name, exp in
             [("teacher", teacher), ("no_kd", work / "exp" / "no_kd"), ("kd", work / "exp" / "kd")]}
    no_kd, kd = valid_cer(stats["no_kd"]), valid_cer(stats["kd"])
    target = no_kd[-1]
    reached = epochs_to_reach(kd, target)
    ratio = None if reached is None else round(reached / len(no_kd), 3)
    result = {
        "epochs_ratio": ratio,
        "epochs_kd_to_reach_no_kd_final": reached,
        "no_kd_final_cer": target,
        "kd_final_cer": kd[-1],
        "teacher_cer": best_acc_cer(stats["teacher"]),
        "cer_per_epoch": {"no_kd": no_kd, "kd": kd},
        "seconds": {name: training_seconds(st) for name, st in stats.items()},
        "teacher_reused": teacher_reused,
        "student_utterances": args.student_utts,
        "teacher_utterances": args.teacher_utts,
        "kd_weight": args.kd_weight,
        "temperature": args.temperature,
        "frame_select": args.frame_select,
        "kd_opts": args.kd_opts,
        "teacher_config": str(args.teacher_config),
        "goal": {"epochs_ratio": "<= 0.5"},
    }
    table = [[e + 1, no_kd[e], kd[e]] for e in range(len(no_kd))]
    table.append(["teacher (valid.acc.best)", result["teacher_cer"], ""])
    table.append(["epochs(KD)/epochs(no KD) to reach the no-KD final CER",
                  "goal <= 0.5", ratio if ratio is not None else "not reached"])
    write_results("kd_speedup", result, table, ["epoch", "valid CER (CTC greedy), no KD",
                                                "valid CER, KD"])


if __name__ == "__main__":
    main()

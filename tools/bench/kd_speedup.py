#!/usr/bin/env python3
"""Benchmark: does distillation speed up training of the tiny student?

A teacher (tiny config) is trained on a larger labeled set with its own speakers (synthetic
``train-clean-360``); then the same student (same seed, same data: ``train-clean-100``) is
trained with and without KD (``ctc_kl``, online teacher). Prints the validation CER per epoch
of both and epochs(KD) / epochs(no KD) to reach the no-KD final CER (goal <= 0.5).

Usage:
    python tools/bench/kd_speedup.py                 # ~10 min on 2 CPU cores
    python tools/bench/kd_speedup.py --student_utts 600 --kd_weight 0.7 --work_dir /tmp/kd
"""

import argparse
import json
import shlex
import tempfile
import time
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
    parser.add_argument("--teacher_epochs", type=int, default=15)
    parser.add_argument("--student_epochs", type=int, default=15)
    parser.add_argument("--kd_weight", type=float, default=0.5)
    parser.add_argument("--kd_opts", default="", help="Extra --kd_conf options")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", type=Path,
                        default=ROOT / "conf" / "tuning" / "train_lp_tiny.yaml")
    return parser


def valid_cer(exp: Path):
    stats = torch.load(exp / "checkpoint.pth", weights_only=False)["reporter"]["stats"]
    return [round(float(stats[e]["valid"]["cer_ctc"]), 4) for e in sorted(stats)]


def epochs_to_reach(curve, target):
    return next((i + 1 for i, c in enumerate(curve) if c <= target), None)


def main() -> None:
    args = get_parser().parse_args()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="kd_speedup."))
    prepare_english(work, args.student_utts, args.eval_utts, args.seed,
                    ["train-clean-100", "train-clean-360", "dev-clean"],
                    extra_train_utts=args.teacher_utts)

    from espnet_lp.bin.asr_train import main as train_main

    seed = ["--seed", str(args.seed)]
    teacher = work / "exp" / "teacher"
    start = time.perf_counter()
    train_main(train_args(work, teacher, args.config, train="train_clean_360")
               + ["--max_epoch", str(args.teacher_epochs)] + seed)
    teacher_seconds = time.perf_counter() - start
    student = ["--max_epoch", str(args.student_epochs)] + seed
    times = {}
    for name, extra in [
        ("no_kd", []),
        ("kd", ["--kd", "ctc_kl", "--model_conf", f"kd_weight={args.kd_weight}",
                "--kd_conf", "teacher=" + json.dumps(
                    {"asr_train_config": str(teacher / "config.yaml"),
                     "asr_model_file": str(teacher / "valid.acc.best.pth")})]
         + shlex.split(args.kd_opts)),
    ]:
        start = time.perf_counter()
        train_main(train_args(work, work / "exp" / name, args.config) + student + extra)
        times[name] = round(time.perf_counter() - start, 1)

    no_kd, kd = valid_cer(work / "exp" / "no_kd"), valid_cer(work / "exp" / "kd")
    target = no_kd[-1]
    reached = epochs_to_reach(kd, target)
    ratio = None if reached is None else round(reached / len(no_kd), 3)
    result = {
        "epochs_ratio": ratio,
        "epochs_kd_to_reach_no_kd_final": reached,
        "no_kd_final_cer": target,
        "kd_final_cer": kd[-1],
        "teacher_final_cer": valid_cer(teacher)[-1],
        "cer_per_epoch": {"no_kd": no_kd, "kd": kd},
        "seconds": {"teacher": round(teacher_seconds, 1), **times},
        "student_utterances": args.student_utts,
        "teacher_utterances": args.teacher_utts,
        "kd_weight": args.kd_weight,
        "kd_opts": args.kd_opts,
        "goal": {"epochs_ratio": "<= 0.5"},
    }
    table = [[e + 1, no_kd[e], kd[e]] for e in range(len(no_kd))]
    table.append(["teacher final", result["teacher_final_cer"], ""])
    table.append(["epochs(KD)/epochs(no KD) to reach the no-KD final CER",
                  "goal <= 0.5", ratio if ratio is not None else "not reached"])
    write_results("kd_speedup", result, table, ["epoch", "valid CER (CTC greedy), no KD",
                                                "valid CER, KD"])


if __name__ == "__main__":
    main()

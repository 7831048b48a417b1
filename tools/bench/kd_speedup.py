#!/usr/bin/env python3
r"""Benchmark: does distillation speed up training of the tiny student?

A teacher (``conf/tuning/train_asr_teacher_cpu.yaml``: a stock ESPnet conformer larger than
the student) is trained on a larger labeled set with its own speakers (synthetic
``train-clean-360``). The student (tiny config) is trained on ``train-clean-100`` without KD,
with KD from the online teacher and with KD from the teacher's top-k cache
(``espnet_lp.bin.kd_cache``), for several seeds.

Two splits, so that the reported figures are not the ones the settings were picked on:

- tuning (``dev-clean``, seed 0): every candidate of ``--grid`` (weight, temperature, frames)
  against no KD; the candidate that reaches the no-KD final CER in the fewest epochs wins
  (ties: the lower mean CER over the epochs);
- report (``test-clean``, ``--seeds``): no KD, online KD and cached KD with the chosen
  settings. The students validate on ``test-clean``: the figure is its CER after each epoch
  (no model is selected on it).

Figures (means and sd over seeds): epochs(KD) / epochs(no KD) to reach the no-KD final CER
(goal <= 0.5); the time KD takes to reach it over the no-KD run's time (goal with the cache
<= 0.6; the teacher's training is not counted, the cache's build is reported apart), in CPU
seconds of one-thread trainings so that other work on the machine skews it less; the
cache's size on disk per hour of audio.
A rerun with the same ``--work_dir`` resumes: finished runs are reused.

Usage:
    python tools/bench/kd_speedup.py --work_dir /tmp/kd                # ~1 h on 2 CPU cores
    python tools/bench/kd_speedup.py --work_dir /tmp/kd --seeds 0 --grid "0.9,2,all" --tag quick
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from common import (ROOT, epoch_stats, finished, git_commit, prepare_english, train_args,
                    write_results)

TRAIN, TEACHER_TRAIN, TUNE, REPORT = "train_clean_100", "train_clean_360", "dev_clean", "test_clean"


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work_dir", type=Path, required=True,
                        help="Corpus, data and every run (reruns reuse finished runs)")
    parser.add_argument("--seeds", default="0 1 2", help="Training seeds of the report runs")
    parser.add_argument("--grid", default="0.5,1,all 0.9,1,all 0.5,2,teacher_nonblank "
                                          "0.9,2,teacher_nonblank",
                        help="Candidates 'kd_weight,temperature,frame_select', space separated")
    parser.add_argument("--student_utts", type=int, default=300)
    parser.add_argument("--teacher_utts", type=int, default=1200)
    parser.add_argument("--eval_utts", type=int, default=60)
    parser.add_argument("--teacher_epochs", type=int, default=20)
    parser.add_argument("--student_epochs", type=int, default=15)
    parser.add_argument("--topk", type=int, default=8, help="Posteriors kept per frame (cache)")
    parser.add_argument("--config", type=Path,
                        default=ROOT / "conf" / "tuning" / "train_lp_tiny.yaml",
                        help="Student config")
    parser.add_argument("--teacher_config", type=Path,
                        default=ROOT / "conf" / "tuning" / "train_asr_teacher_cpu.yaml")
    parser.add_argument("--tag", default="", help="Results go to kd_speedup[_TAG]")
    return parser


def parse_grid(text: str) -> list:
    out = []
    for item in text.split():
        weight, temperature, frames = item.split(",")
        out.append({"kd_weight": float(weight), "temperature": float(temperature),
                    "frame_select": frames})
    return out


def setting_name(s: dict) -> str:
    return f"w{s['kd_weight']:g}_T{s['temperature']:g}_{s['frame_select']}"


def valid_cer(stats: dict) -> list:
    return [round(float(stats[e]["valid"]["cer_ctc"]), 4) for e in sorted(stats)]


def epoch_seconds(stats: dict) -> list:
    """Train + validation wall seconds of each epoch (``time`` is a datetime.timedelta)."""
    return [sum(stats[e][phase]["time"].total_seconds() for phase in stats[e])
            for e in sorted(stats)]


def epochs_to_reach(curve, target):
    return next((i + 1 for i, c in enumerate(curve) if c <= target), None)


def child_cpu_seconds(cmd: list) -> float:
    """Run ``cmd`` with one torch thread; the CPU seconds (user + system) it used. CPU time
    depends much less than wall time on what else the machine runs (not at all on pauses)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, env=env, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def mean_sd(values: list) -> dict:
    """Mean, sd, and (for timings) median, min and max of the values that exist."""
    values = [v for v in values if v is not None]
    if not values:
        return {"mean": None, "sd": None, "n": 0, "median": None, "min": None, "max": None}
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": round(statistics.mean(values), 3), "sd": round(sd, 3), "n": len(values),
            "median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3)}


class Runs:
    """Trains (or reuses) the runs of one work dir."""

    def __init__(self, args):
        self.args, self.work = args, args.work_dir
        self.teacher = self.work / "exp" / f"teacher_{args.teacher_config.stem}"

    def train(self, name: str, config: Path, epochs: int, seed: int, valid: str,
              extra=(), train: str = TRAIN) -> dict:
        """Per-epoch statistics of a finished run (trained now unless done), with the CPU
        seconds it took (``cpu_seconds``; None for a run that was killed and resumed)."""
        exp = self.work / "exp" / name
        cost = exp / "bench_cpu.json"
        if not finished(exp, epochs):  # ESPnet resumes a killed run from its checkpoint
            resumed = (exp / "checkpoint.pth").is_file()
            cmd = [sys.executable, "-m", "espnet_lp.bin.asr_train",
                   *train_args(self.work, exp, config, valid=valid, train=train),
                   "--max_epoch", str(epochs), "--seed", str(seed), "--resume", "true", *extra]
            spent = child_cpu_seconds(cmd)
            # the killed part's CPU time is unknown: a resumed run has no time figure
            cost.write_text(json.dumps({"cpu_seconds": None if resumed else spent}))
        stats_cpu = json.loads(cost.read_text())["cpu_seconds"] if cost.is_file() else None
        return {"stats": epoch_stats(exp), "cpu_seconds": stats_cpu}

    def teacher_spec(self) -> dict:
        return {"asr_train_config": str(self.teacher / "config.yaml"),
                "asr_model_file": str(self.teacher / "valid.acc.best.pth")}

    def cache(self, temperature: float) -> dict:
        """The teacher's top-k cache over the training set and both eval sets; its cost."""
        from espnet_lp.bin.kd_cache import main as cache_main

        out = self.work / "exp" / f"cache_T{temperature:g}_k{self.args.topk}"
        record = out / "bench_cost.json"
        if not record.is_file():
            seconds = {}
            for dset in (TRAIN, TUNE, REPORT):
                torch.set_num_threads(1)  # one thread, like the trainings
                start = time.process_time()
                cache_main([*sum((["--" + k, v] for k, v in self.teacher_spec().items()), []),
                            "--data_path_and_name_and_type",
                            f"{self.work / 'data' / dset / 'wav.scp'},speech,sound",
                            "--output_dir", str(out), "--topk", str(self.args.topk),
                            "--temperature", str(temperature)])
                seconds[dset] = time.process_time() - start
            train_ids = [line.split(maxsplit=1)[0] for line in
                         (self.work / "data" / TRAIN / "wav.scp").read_text().splitlines()]
            size = sum((out / "data" / f"{u}.npz").stat().st_size for u in train_ids)
            hours = sum(float(line.split()[1]) for line in
                        (self.work / "data" / TRAIN / "utt2dur").read_text().splitlines()) / 3600
            record.write_text(json.dumps({"train_build_seconds": seconds[TRAIN],
                                          "train_bytes": size, "train_hours": hours}))
        cost = json.loads(record.read_text())
        return {"dir": str(out), **cost,
                "mb_per_hour": round(cost["train_bytes"] / 1e6 / cost["train_hours"], 2),
                "build_seconds_per_hour": round(cost["train_build_seconds"]
                                                / cost["train_hours"], 1)}


def kd_args(teacher: dict, setting: dict) -> list:
    from espnet_lp.asr.teacher import kd_train_args

    return kd_train_args(teacher, setting["kd_weight"],
                         {"temperature": setting["temperature"],
                          "frame_select": setting["frame_select"]})


def compare(no_kd: dict, kd: dict) -> dict:
    """Epochs and time KD needs to reach the no-KD run's final CER.

    ``cpu_ratio``: KD's CPU seconds up to that epoch over the no-KD run's total (every
    epoch does the same work, so a run's CPU seconds are split evenly over its epochs; the
    start-up, imports and model building, is a few seconds of each run); ``wall_ratio``: the
    same from ESPnet's per-epoch wall times, which hold only on an otherwise idle machine.
    """
    base, curve = valid_cer(no_kd["stats"]), valid_cer(kd["stats"])
    reached = epochs_to_reach(curve, base[-1])
    wall, base_wall = epoch_seconds(kd["stats"]), epoch_seconds(no_kd["stats"])
    out = {"epochs_to_reach": reached, "epochs_ratio": None, "cpu_ratio": None,
           "wall_ratio": None, "no_kd_final_cer": base[-1], "final_cer": curve[-1],
           "mean_cer": round(statistics.mean(curve), 4), "cer": curve,
           "cpu_seconds": kd["cpu_seconds"], "wall_seconds": round(sum(wall), 1)}
    if reached is not None:
        out["epochs_ratio"] = round(reached / len(base), 3)
        out["wall_ratio"] = round(sum(wall[:reached]) / sum(base_wall), 3)
        if kd["cpu_seconds"] and no_kd["cpu_seconds"]:
            out["cpu_ratio"] = round(reached / len(curve) * kd["cpu_seconds"]
                                     / no_kd["cpu_seconds"], 3)
    return out


def main(cmd=None) -> None:
    args = get_parser().parse_args(cmd)
    commit = git_commit()
    grid, seeds = parse_grid(args.grid), [int(s) for s in args.seeds.split()]
    prepare_english(args.work_dir, args.student_utts, args.eval_utts, 0,
                    ["train-clean-100", "train-clean-360", "dev-clean", "test-clean"],
                    extra_train_utts=args.teacher_utts)
    runs = Runs(args)
    teacher_stats = runs.train(runs.teacher.name, args.teacher_config, args.teacher_epochs, 0,
                               TUNE, train=TEACHER_TRAIN)["stats"]
    best_epoch = max(teacher_stats, key=lambda e: float(teacher_stats[e]["valid"]["acc"]))
    teacher = runs.teacher_spec()

    # Tuning split: choose the KD settings.
    epochs = args.student_epochs
    tune_base = runs.train("tune_no_kd_seed0", args.config, epochs, 0, TUNE)
    tuning = {}
    for setting in grid:
        run = runs.train(f"tune_kd_{setting_name(setting)}_seed0", args.config, epochs, 0,
                         TUNE, kd_args(teacher, setting))
        tuning[setting_name(setting)] = {**setting, **compare(tune_base, run)}
    chosen_name = min(tuning, key=lambda n: (tuning[n]["epochs_to_reach"] or epochs + 1,
                                             tuning[n]["mean_cer"]))
    chosen = {k: tuning[chosen_name][k] for k in ("kd_weight", "temperature", "frame_select")}

    # Report split: the chosen settings, online teacher and cache, over seeds.
    cache = runs.cache(chosen["temperature"])
    cached = {"cache_dir": cache["dir"], "topk": args.topk}
    per_seed = {"online": [], "cache": []}
    for seed in seeds:
        base = runs.train(f"report_no_kd_seed{seed}", args.config, epochs, seed, REPORT)
        for kind, spec in (("online", teacher), ("cache", cached)):
            run = runs.train(f"report_kd_{kind}_{chosen_name}_seed{seed}", args.config,
                             epochs, seed, REPORT, kd_args(spec, chosen))
            per_seed[kind].append({"seed": seed, **compare(base, run),
                                   "no_kd_cer": valid_cer(base["stats"]),
                                   "no_kd_cpu_seconds": base["cpu_seconds"]})

    summary = {kind: {key: mean_sd([r[key] for r in rows])
                      for key in ("epochs_ratio", "cpu_ratio", "wall_ratio", "epochs_to_reach",
                                  "final_cer", "no_kd_final_cer", "cpu_seconds",
                                  "no_kd_cpu_seconds")}
               for kind, rows in per_seed.items()}
    missed = {kind: sum(r["epochs_to_reach"] is None for r in rows)
              for kind, rows in per_seed.items()}
    result = {
        "epochs_ratio": {k: summary[k]["epochs_ratio"] for k in summary},
        "cpu_ratio": {k: summary[k]["cpu_ratio"] for k in summary},
        "wall_ratio": {k: summary[k]["wall_ratio"] for k in summary},
        "runs_not_reaching_no_kd_final": missed,
        "summary": summary, "per_seed": per_seed, "seeds": seeds,
        "chosen": chosen, "tuning": tuning, "tuning_split": TUNE, "report_split": REPORT,
        "cache": {k: cache[k] for k in ("mb_per_hour", "build_seconds_per_hour",
                                        "train_build_seconds", "train_hours")},
        "topk": args.topk,
        "teacher_cer_tuning_split": round(float(teacher_stats[best_epoch]["valid"]["cer_ctc"]), 4),
        "student_utterances": args.student_utts, "teacher_utterances": args.teacher_utts,
        "student_epochs": epochs,
        "goal": {"epochs_ratio": "<= 0.5", "cpu_ratio (cache)": "<= 0.6"},
    }

    def cell(s):
        return "n/a" if s["mean"] is None else f"{s['mean']} ± {s['sd']} (n={s['n']})"

    def timing(s):
        return "n/a" if s["mean"] is None else (f"median {s['median']} [{s['min']}, {s['max']}]"
                                                f"; {cell(s)}")

    table = [[name, row["epochs_to_reach"] or "not reached", row["final_cer"],
              row["no_kd_final_cer"], "chosen" if name == chosen_name else ""]
             for name, row in tuning.items()]
    table += [["", "", "", "", ""],
              ["**report** (test-clean, mean ± sd over seeds)", "epochs ratio (goal <= 0.5)",
               "time ratio (CPU s; cache goal <= 0.6)", "final CER (no KD)",
               "runs not reaching"]]
    for kind in ("online", "cache"):
        s = summary[kind]
        table.append([f"KD {kind} ({chosen_name})", cell(s["epochs_ratio"]),
                      timing(s["cpu_ratio"]),
                      f"{cell(s['final_cer'])} ({cell(s['no_kd_final_cer'])})", missed[kind]])
    notes = [
        f"Tuning: {TUNE}, seed 0, each candidate against no KD (columns: epochs to reach the "
        f"no-KD final CER of {valid_cer(tune_base['stats'])[-1]}, final CER); "
        f"report: {REPORT}, seeds {seeds}, {epochs} epochs, {args.student_utts} student "
        f"utterances, teacher on {args.teacher_utts} others (its {TUNE} CER "
        f"{result['teacher_cer_tuning_split']}).",
        "A ratio is computed per seed against the no-KD run of the same seed; a run that "
        "never reaches the no-KD final CER has no ratio and is counted apart.",
        f"Cache (top-{args.topk}): {cache['mb_per_hour']} MB per hour of audio; built in "
        f"{cache['build_seconds_per_hour']} CPU s per hour of audio (not in the time ratio: it "
        "is built once and reused by every round).",
        "Time: CPU seconds (one torch thread) of each training process, train + valid (valid "
        "includes the teacher's forward pass for online KD), split evenly over its epochs; on "
        "an idle one-core machine that is the wall time. It depends less than wall time on "
        "what else runs, but not nothing: shared caches and cores make the same work cost "
        f"more CPU seconds (the no-KD runs here: {cell(summary['online']['no_kd_cpu_seconds'])}"
        " s). ESPnet's own wall times give `wall_ratio` in the JSON (meaningless for a run "
        "that was paused). A run killed and resumed has no time figure.",
    ]
    write_results("kd_speedup" + (f"_{args.tag}" if args.tag else ""), result, table,
                  ["candidate (tuning, dev-clean)", "epochs to reach", "final CER",
                   "no-KD final CER", ""], commit=commit, notes=notes)


if __name__ == "__main__":
    main()

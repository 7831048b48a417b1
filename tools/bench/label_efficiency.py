#!/usr/bin/env python3
r"""Benchmark: labels each strategy saves against random selection, per language.

Runs a recipe end to end, as a user would (``egs/librispeech_100/al1`` for ``en``,
``egs/aishell/al1`` for ``zh``, copied into ``--work_dir``), on a benchmark-sized generated
corpus (the pool mixes the clean and the harder "other" condition) with
``conf/al/bench.yaml`` (``bench_zh.yaml`` for Mandarin): random, ctc_confidence,
least_confidence, estimated_loss, loss_prediction, lp_diverse and the simulation-only
ceiling true_loss, 5 rounds, several seeds (``--seeds``). Then it reports over every seed
(``al_report`` on the kept units below) and writes ``results/label_efficiency_<lang>.{json,md}``
(``hours_ratio``: labeled hours to reach random's final error rate over random's own;
``acquired_ratio``: the same over the hours labeled after the shared round 0; ``aulc``:
mean error over the labeled hours; the error rate per round; mean and sd over seeds), a
learning-curve PNG per reported set (``<name>.png`` for the headline set, ``<name>_<set>.png``
for the others) and the recipe's ``RESULTS.md``, as ESPnet recipes keep theirs.

A benchmark takes longer than a machine may live (Mandarin: about 4 CPU-hours per seed), so
it runs in units of one strategy of one seed (``run.sh --only_strategies``: round 0 stays
shared within the work dir) and keeps each finished unit's records (every round's
``metrics.json`` and ``selected``, round 0's pool scores, the initial lists) under
``tools/bench/runs/<name>/``, to be committed. A rerun, in this work dir or on a fresh machine
from a fresh clone, skips the units kept there and runs the others; the report is made from
those records alone (``--report_only`` remakes it without running anything). Each seed's
round-0 model is kept as well and restored in a fresh work dir (CPU training is not
bit-identical across machines, and a seed's units must start from one round 0); each unit
records whether its round 0 is the kept one. Invocations with other ``--seeds``
may share a work dir, started together: the recipe's data stages run once per work dir
(``bench_settings.json``), the others waiting on a lock for the first's.

Usage:
    python tools/bench/label_efficiency.py --lang en --work_dir /tmp/le_en   # hours on CPU
    python tools/bench/label_efficiency.py --lang zh --work_dir /tmp/le_zh --seeds 1 --nj 1 &
    python tools/bench/label_efficiency.py --lang zh --work_dir /tmp/le_zh --seeds 2 --nj 1
    python tools/bench/label_efficiency.py --lang zh --work_dir /tmp/le_zh --report_only
    python tools/bench/label_efficiency.py --lang en --work_dir /tmp/le_quick --seeds 0 \
        --strategies "random loss_prediction" --rounds 1 --tag quick
    python tools/bench/label_efficiency.py --lang en --work_dir /tmp/le_en_softrank \
        --al_config conf/al/bench_softrank.yaml --tag softrank
    python tools/bench/label_efficiency.py --lang en --work_dir /tmp/le_en_typical \
        --al_config conf/al/bench_typical.yaml --sets "dev_clean dev_other" --tag typical_dev
"""

import argparse
import csv
import fcntl
import json
import os
import shlex
import shutil
import statistics
import subprocess
from pathlib import Path
from typing import Optional

from common import ROOT, git_commit, write_results

from espnet_lp.al.report import StrategySummary, paired_diff
from espnet_lp.al.state import read_ids
from espnet_lp.utils.fileio import atomic_directory, atomic_write_text, file_sha1

# recipe, headline set, reported sets, the recipe's metric (rounds run with it: it is part of
# an AL run's settings), the benchmark's metric (stage 6). The tiny model's English WER stays
# above 100% over these rounds (CER 0.65 -> 0.5): WER curves would only show noise.
RECIPES = {"en": ("librispeech_100", "test_clean", ["test_clean", "test_other"], "wer", "cer"),
           "zh": ("aishell", "test", ["dev", "test"], "cer", "cer")}
# Per language: the AL settings and the asr_train options of every round. Mandarin (300
# characters, 12-20 per utterance) needs 400 utterances and 25 epochs before the tiny model
# leaves the all-blank plateau (1,100 utterances: CER 0.40 after 15 epochs, 1.0 until epoch 7).
SETTINGS = {"en": ("bench.yaml", "--batch_size 8"),
            "zh": ("bench_zh.yaml", "--batch_size 8 --max_epoch 25")}


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lang", choices=sorted(RECIPES), required=True)
    parser.add_argument("--work_dir", type=Path, required=True,
                        help="The recipe copy, its corpus and exp dir (reruns resume)")
    parser.add_argument("--seeds", default="0 1 2")
    parser.add_argument("--strategies", default="",
                        help="Default: conf/al/bench.yaml's (bench_zh.yaml's)")
    parser.add_argument("--al_config", type=Path, default=None,
                        help="AL settings (default: conf/al/bench.yaml, bench_zh.yaml for zh), "
                             "e.g. conf/al/bench_softrank.yaml with a --tag")
    parser.add_argument("--rounds", type=int, default=0,
                        help="0: conf/al/bench.yaml's (bench_zh.yaml's)")
    parser.add_argument("--pool_utts", type=int, default=0, help="0: 800 (en), 1200 (zh)")
    parser.add_argument("--eval_utts", type=int, default=100, help="Per dev/test subset")
    parser.add_argument("--metric", default="", help="wer or cer (default: cer)")
    parser.add_argument("--nj", type=int, default=2)
    parser.add_argument("--run_opts", default="", help="More run.sh options")
    parser.add_argument("--sets", default="",
                        help="Evaluation sets to report, the first one the headline (default: "
                             "the test sets; a tuning run reports the dev sets, e.g. "
                             "'dev_clean dev_other')")
    parser.add_argument("--tag", default="",
                        help="Results go to label_efficiency_<lang>[_TAG] (tagged runs leave "
                             "the recipe's RESULTS.md alone)")
    parser.add_argument("--report_only", action="store_true",
                        help="Only remake the report from the kept records of finished units")
    return parser


def al_config(args) -> dict:
    import yaml

    return yaml.safe_load(al_config_path(args).read_text())


def run_strategies(args) -> list:
    """The benchmark's strategies: ``--strategies`` or the AL config's."""
    return args.strategies.split() if args.strategies else list(al_config(args)["strategies"])


def run_rounds(args) -> int:
    return args.rounds or int(al_config(args)["rounds"])


def al_config_path(args) -> Path:
    path = (args.al_config or ROOT / "conf" / "al" / SETTINGS[args.lang][0]).resolve()
    if not path.is_file():
        raise SystemExit(f"--al_config {path}: not found")
    return path


def bench_settings(args) -> dict:
    """What makes units run in different sessions parts of one benchmark run: the corpus,
    the AL settings (by content, not path) and the training options; no paths, no seeds."""
    path = al_config_path(args)
    return {"lang": args.lang, "pool_utts": args.pool_utts, "eval_utts": args.eval_utts,
            "al_config": path.name, "al_config_sha1": file_sha1(path),
            "asr_opts": SETTINGS[args.lang][1],
            "rounds": run_rounds(args), "run_opts": args.run_opts}


def check_settings(runs: Path, settings: dict, record: bool) -> None:
    """The kept units were made with these settings (else a clear refusal), or none are kept
    (then the settings are recorded, when ``record``)."""
    path = runs / "settings.json"
    if path.is_file():
        kept = json.loads(path.read_text())
        if kept != settings:
            diff = "; ".join(f"{k}: {kept.get(k)!r} -> {v!r}" for k, v in settings.items()
                             if kept.get(k) != v)
            raise SystemExit(f"{runs}: its finished units were made with other settings "
                             f"({diff}); use another --tag, or remove it to start over")
        return
    if not record:
        raise SystemExit(f"{runs}: no kept units (run without --report_only first)")
    runs.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(settings, indent=1, sort_keys=True) + "\n")


def unit_done(runs: Path, seed: int, strategy: str) -> bool:
    return (runs / f"seed{seed}" / strategy / "unit.json").is_file()


def keep_unit(al_dir: Path, runs: Path, seed: int, strategy: str, rounds: int,
              commit: str) -> None:
    """Copy a finished unit's records from the recipe's exp dir into ``runs`` (its
    ``unit.json`` last: a unit without one is not kept), and the seed's round 0 (lists,
    figures, trained model) if it is not kept yet."""
    src, dst = al_dir / f"seed{seed}" / strategy, runs / f"seed{seed}" / strategy
    missing = [r for r in range(rounds + 1) if not (src / f"round{r}" / "metrics.json").is_file()]
    if missing:
        raise SystemExit(f"{src}: rounds {missing} did not finish; rerun to resume")
    shutil.rmtree(dst, ignore_errors=True)
    for r in range(rounds + 1):
        (dst / f"round{r}").mkdir(parents=True)
        names = ["metrics.json"] + (["selected"] if r < rounds else []) + \
            (["scores.tsv"] if r == 0 else [])
        for name in names:
            shutil.copyfile(src / f"round{r}" / name, dst / f"round{r}" / name)
    # round 0 is shared by the seed's units: restored from the kept model on another machine
    # (restore_round0_model), it is the same model; trained again, it is not
    initial_src, initial = al_dir / f"seed{seed}" / "initial" / "round0", \
        runs / f"seed{seed}" / "initial" / "round0"
    if initial.is_dir():
        same_lists = all(read_ids(initial / n) == read_ids(initial_src / n)
                         for n in ("labeled", "pool"))
        if (initial / "model").is_dir():
            same = same_lists and same_model_files(initial / "model", initial_src / "model")
        else:  # kept before models were: its figures are what there is to compare
            kept, shared = (json.loads((d / "shared_metrics.json").read_text())
                            for d in (initial, initial_src))
            same = same_lists and kept["decode"] == shared["decode"]
            if same:
                keep_round0_model(initial_src / "model", initial / "model")
    else:
        initial.mkdir(parents=True)
        for name in ("labeled", "pool", "shared_metrics.json"):
            shutil.copyfile(initial_src / name, initial / name)
        keep_round0_model(initial_src / "model", initial / "model")
        same = True
    if not same:
        print(f"WARNING: seed {seed}: round 0 differs from the kept one ({initial}); "
              f"{strategy} started from another round-0 model", flush=True)
    atomic_write_text(dst / "unit.json", json.dumps(
        {"commit": commit, "round0_same_as_kept": same}, indent=1) + "\n")


def _epoch_files(model_dir: Path) -> list:
    """The epoch checkpoints ESPnet's trainer kept (``<n>epoch.pth``, not the links)."""
    return sorted(p.name for p in model_dir.glob("*epoch.pth")
                  if p.is_file() and not p.is_symlink())


def keep_round0_model(model_dir: Path, kept: Path) -> None:
    """Keep round 0's trained model, so that a unit on another machine resumes it instead of
    training it again: CPU training is not bit-identical across machines (measured: the
    same seed's round 0 at 52.1 and 52.7 % dev CER on two machines), and a seed's units
    must start from one round 0 to be compared. Kept: the epoch checkpoints the trainer
    kept, and ``checkpoint.pth`` without the optimizer's moments (no epoch is left to train:
    ``asr_train --resume`` finds the last one done and only remakes the averaged model)."""
    import torch

    with atomic_directory(kept) as staged:  # whole or absent
        for name in _epoch_files(model_dir):
            shutil.copyfile(model_dir / name, staged / name)
        states = torch.load(model_dir / "checkpoint.pth", map_location="cpu",
                            weights_only=False)
        for optimizer in states["optimizers"]:
            optimizer["state"] = {}
        torch.save(states, staged / "checkpoint.pth")


def restore_round0_model(kept: Path, model_dir: Path) -> bool:
    """Put the kept round-0 model where the loop trains round 0 (``checkpoint.pth`` last:
    its presence is what makes ``asr_train --resume`` resume). Nothing is done when none is
    kept or round 0 was trained (or restored) here already. Returns whether it restored."""
    if not kept.is_dir() or (model_dir / "checkpoint.pth").exists():
        return False
    model_dir.mkdir(parents=True, exist_ok=True)
    for name in _epoch_files(kept):
        shutil.copyfile(kept / name, model_dir / name)
    shutil.copyfile(kept / "checkpoint.pth", model_dir / "checkpoint.pth")
    print(f"+ round 0 restored from {kept}", flush=True)
    return True


def same_model_files(kept: Path, model_dir: Path) -> bool:
    """Whether ``model_dir`` holds the kept model's epoch checkpoints, byte for byte."""
    names = _epoch_files(kept)
    return names == _epoch_files(model_dir) and all(
        file_sha1(kept / n) == file_sha1(model_dir / n) for n in names)


def run_recipe(args, recipe_dir: Path, run_metric: str, seed: Optional[int],
               strategy: Optional[str], stage: int) -> None:
    """Stage 5 of the recipe for one unit (``strategy``'s rounds of ``seed``), or, with
    ``stage`` 1 and no unit, the data stages 1-4 that every unit of the work dir shares."""
    if (stage == 5) != (strategy is not None) or stage not in (1, 5):
        raise ValueError(f"run_recipe: stage 1 without a unit or stage 5 with one, not stage "
                         f"{stage} with strategy {strategy!r}")
    pool = args.pool_utts or {"en": 800, "zh": 1200}[args.lang]
    synth = (f"--train_utts {pool} --dev_utts {args.eval_utts} "
             f"--test_utts {args.eval_utts} --other_fraction 0.5")
    cmd = ["./run.sh", "--local_data_opts", f"--synth_opts '{synth}'",
           "--al_config", str(al_config_path(args)), "--token_type", "char",
           "--asr_opts", SETTINGS[args.lang][1], "--metric", run_metric,
           "--nj", str(args.nj), "--stage", str(stage), "--stop_stage", "5" if strategy else "4"]
    if strategy is not None:
        cmd += ["--seeds", str(seed), "--only_strategies", strategy]
    if args.strategies:
        cmd += ["--strategies", args.strategies]
    if args.rounds:
        cmd += ["--rounds", str(args.rounds)]
    cmd += shlex.split(args.run_opts)
    print("+ " + shlex.join(cmd), flush=True)
    env = {**os.environ, "MAIN_ROOT": str(ROOT)}  # path.sh: this checkout's venv
    for name in ("LIBRISPEECH", "AISHELL"):  # the generated corpus, not a user's
        env.pop(name, None)
    subprocess.run(cmd, cwd=recipe_dir, env=env, check=True)


def make_report(runs: Path, out_dir: Path, sets, metric: str) -> dict:
    """al_report over the kept units (every seed and strategy): results.json, RESULTS.md."""
    import sys

    cmd = [sys.executable, "-m", "espnet_lp.bin.al_report", "--al_dir", str(runs),
           "--sets", *sets, "--metric", metric, "--output_dir", str(out_dir), "--plot", "false"]
    print("+ " + shlex.join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    return json.loads((out_dir / "results.json").read_text())


def plot_sets(al_dir: Path, sets, metric: str, name: str, headline: str) -> dict:
    """One learning-curve PNG per reported set: ``<name>.png`` for the headline set,
    ``<name>_<set>.png`` for the others. Returns {set: file name}.

    Drawn here rather than copied from the recipe, whose plot shows its first test set
    (dev_clean), which is not the headline set of an untagged run.
    """
    from espnet_lp.al.report import collect, plot_learning_curves

    records = collect(al_dir)
    out = {}
    for set_name in sets:
        out[set_name] = f"{name}.png" if set_name == headline else f"{name}_{set_name}.png"
        plot_learning_curves(records, set_name, metric,
                             ROOT / "tools" / "bench" / "results" / out[set_name])
    return out


def per_round(al_dir: Path, sets, metric: str) -> dict:
    """{set: {strategy: {round: {"hours", "mean", "sd"}}}} from the rounds' metrics."""
    from espnet_lp.al.report import collect, curves

    records = collect(al_dir)
    out = {}
    for name in sets:
        out[name] = {}
        for curve in curves(records, name, metric):
            rows = {}
            for i, r in enumerate(curve.rounds):
                values = [v[i] for v in curve.per_seed.values()]
                mean = sum(values) / len(values)
                sd = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5 \
                    if len(values) > 1 else None
                rows[r] = {"hours": curve.hours[i], "mean": mean, "sd": sd,
                           "per_seed": dict(zip(curve.per_seed, values))}
            out[name][curve.strategy] = rows
    return out


def keep_utterance_meta(recipe_dir: Path, corpus: str, runs: Path) -> None:
    """The generator's per-utterance record (condition, duration) beside the kept units."""
    meta_file = recipe_dir / "downloads" / "synth" / "synth_meta" / f"{corpus}_utterances.tsv"
    kept = runs / "utterances.tsv"
    if meta_file.is_file() and not kept.is_file():
        shutil.copyfile(meta_file, kept)


def utterance_meta(runs: Path) -> dict:
    """The kept per-utterance record (condition, duration); empty for a real corpus."""
    if not (runs / "utterances.tsv").is_file():
        return {}
    with open(runs / "utterances.tsv", encoding="utf-8") as f:
        return {r["utt_id"]: r for r in csv.DictReader(f, delimiter="\t")}


def selection_profile(runs: Path, meta: dict) -> dict:
    """Per strategy, what it sent for labeling over all rounds and seeds: the share of the
    harder "other" condition and the mean duration."""
    out = {}
    for selected in sorted(runs.glob("seed*/*/round*/selected")):
        ids = read_ids(selected)
        rows = out.setdefault(selected.parts[-3], [])
        rows += [meta[u] for u in ids if u in meta]
    return {strategy: {"utterances": len(rows),
                       "other_share": round(sum(r["condition"].startswith("other")
                                                for r in rows) / len(rows), 3),
                       "mean_seconds": round(sum(float(r["duration"]) for r in rows)
                                             / len(rows), 2)}
            for strategy, rows in out.items() if rows}


def pool_size(runs: Path, meta: dict) -> dict:
    """Utterances and hours of the training pool (labeled first + unlabeled, seed 0's)."""
    round0 = next(iter(sorted(runs.glob("seed*/initial/round0"))))
    ids = read_ids(round0 / "labeled") + read_ids(round0 / "pool")
    hours = (round(sum(float(meta[u]["duration"]) for u in ids) / 3600, 2)
             if ids and all(u in meta for u in ids) else None)
    return {"utterances": len(ids), "hours": hours}


def pool_ranking(runs: Path, meta: dict) -> dict:
    """How well each strategy's first selection scores rank the pool by its true loss.

    Round 0's scores of every strategy come from the same model (the shared initial round),
    and ``true_loss`` holds that model's true per-utterance losses: Spearman per strategy,
    overall and within each condition, mean and sd over seeds.
    """
    from scipy.stats import spearmanr

    from espnet_lp.al.score_files import read_score_file

    per = {}
    for seed_dir in sorted(runs.glob("seed*")):
        truth_file = seed_dir / "true_loss" / "round0" / "scores.tsv"
        if not truth_file.is_file():
            continue
        truth = read_score_file(truth_file)
        for scores_file in sorted(seed_dir.glob("*/round0/scores.tsv")):
            strategy = scores_file.parts[-3]
            if strategy in ("true_loss", "random"):
                continue
            scores = read_score_file(scores_file)
            for name in ("all", "clean", "other"):
                ids = [u for u in scores if u in truth and (name == "all" or (
                    u in meta and meta[u]["condition"].split()[0] == name))]
                if len(ids) < 3:  # a real corpus has no conditions
                    continue
                rho = spearmanr([scores[u] for u in ids], [truth[u] for u in ids])[0]
                per.setdefault(strategy, {}).setdefault(name, []).append(float(rho))
    return {k: {name: {"mean": round(statistics.mean(v), 3),
                       "sd": round(statistics.stdev(v), 3) if len(v) > 1 else None}
                for name, v in cond.items()} for k, cond in per.items()}


# The order units run in: the papers' comparison first, so a benchmark cut short by its
# machine has kept the units that matter most.
UNIT_ORDER = ("random", "loss_prediction", "least_confidence", "estimated_loss", "lp_diverse",
              "ctc_confidence", "true_loss")


def run_units(args, recipe: str, runs: Path, run_metric: str, commit: str) -> None:
    """Run this invocation's units (``--seeds`` x strategies) not kept yet, keeping each as
    it finishes, after the work dir's data stages (:func:`prepare_work_dir`)."""
    strategies, rounds = run_strategies(args), run_rounds(args)
    strategies.sort(key=lambda s: UNIT_ORDER.index(s) if s in UNIT_ORDER else len(UNIT_ORDER))
    todo = [(int(seed), s) for seed in args.seeds.split() for s in strategies
            if not unit_done(runs, int(seed), s)]
    if not todo:
        return
    recipe_dir = prepare_work_dir(args, recipe, run_metric)
    for seed, strategy in todo:
        restore_round0_model(runs / f"seed{seed}" / "initial" / "round0" / "model",
                             recipe_dir / "exp" / "al" / f"seed{seed}" / "initial" / "round0"
                             / "model")
        run_recipe(args, recipe_dir, run_metric, seed, strategy, stage=5)
        keep_unit(recipe_dir / "exp" / "al", runs, seed, strategy, rounds, commit)
        keep_utterance_meta(recipe_dir, {"en": "librispeech", "zh": "aishell"}[args.lang], runs)


def prepare_work_dir(args, recipe: str, run_metric: str) -> Path:
    """The recipe copied into the work dir and its data stages run, once per work dir
    (``bench_settings.json`` records for which settings); returns the recipe's copy.
    Invocations started together on one work dir (one per core, other seeds) wait on a lock
    for the first one's copy and data stages instead of writing the same files at once."""
    recipe_dir = args.work_dir / "egs" / recipe / "al1"
    stamp, settings = args.work_dir / "bench_settings.json", bench_settings(args)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    with open(args.work_dir / "bench_settings.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released on leaving the block, or by a crash
        if stamp.is_file():
            if json.loads(stamp.read_text()) != settings:
                raise SystemExit(f"{args.work_dir}: made with other settings "
                                 f"({stamp.read_text().strip()}); use another --work_dir")
            return recipe_dir
        if not recipe_dir.is_dir():  # the recipe's files; its links to TEMPLATE are relative
            shutil.copytree(ROOT / "egs" / recipe / "al1", recipe_dir, symlinks=True,
                            ignore=shutil.ignore_patterns("data", "exp", "downloads", "dump"))
            (args.work_dir / "egs" / "TEMPLATE").symlink_to(ROOT / "egs" / "TEMPLATE")
        run_recipe(args, recipe_dir, run_metric, None, None, stage=1)
        atomic_write_text(stamp, json.dumps(settings, sort_keys=True) + "\n")
    return recipe_dir


def units_left(args, runs: Path) -> list:
    """(seed, strategy) of the kept seeds and ``--seeds`` not kept yet."""
    seeds = {int(s) for s in args.seeds.split()} | {
        int(p.name[4:]) for p in runs.glob("seed*") if p.name[4:].isdigit()}
    return [(seed, s) for seed in sorted(seeds) for s in run_strategies(args)
            if not unit_done(runs, seed, s)]


def main(cmd=None) -> None:
    args = get_parser().parse_args(cmd)
    commit = git_commit()
    recipe, headline, sets, run_metric, metric = RECIPES[args.lang]
    metric = args.metric or metric
    if args.sets:
        sets = args.sets.split()
        headline = sets[0]
    name = f"label_efficiency_{args.lang}" + (f"_{args.tag}" if args.tag else "")
    runs = ROOT / "tools" / "bench" / "runs" / name
    check_settings(runs, bench_settings(args), record=not args.report_only)
    if not args.report_only:
        run_units(args, recipe, runs, run_metric, commit)
    left = units_left(args, runs)
    if left:  # another invocation (or session) runs them; the report covers every seed
        print(f"{runs}: {len(left)} units still to run ("
              + ", ".join(f"seed {seed} {s}" for seed, s in left)
              + "); the report waits for them", flush=True)
        return
    seeds = sorted(int(p.name[4:]) for p in runs.glob("seed*") if p.name[4:].isdigit())
    report = make_report(runs, args.work_dir / "report" / name, sets, metric)
    result = {"lang": args.lang, "recipe": recipe, "metric": metric, "headline_set": headline,
              "seeds": seeds, "sets": {}, "runs": str(runs.relative_to(ROOT)),
              "unit_commits": sorted({json.loads(p.read_text())["commit"]
                                      for p in runs.glob("seed*/*/unit.json")}),
              "round0_same_everywhere": all(json.loads(p.read_text())["round0_same_as_kept"]
                                            for p in runs.glob("seed*/*/unit.json"))}
    missing = [set_name for set_name in sets if set_name not in report["sets"]]
    if missing:
        raise SystemExit(f"--sets: {missing} not in the recipe's report (it has "
                         f"{sorted(report['sets'])})")
    table = []
    for set_name in sets:
        entry = report["sets"][set_name]
        per = {s["strategy"]: s for s in entry["strategies"]}
        result["sets"][set_name] = {
            "target": entry["target"], "baseline_hours": entry["baseline_hours"],
            "hours_ratio": {k: v["hours_ratio"] for k, v in per.items()},
            "acquired_ratio": {k: v["acquired_ratio"] for k, v in per.items()},
            "aulc": {k: {"mean": v["auc"], "sd": v["auc_std"]} for k, v in per.items()},
            "final": {k: {"mean": v["final"], "sd": v["final_std"]} for k, v in per.items()},
            "aulc_vs_random": {k: {"mean": v["auc_diff"], "sd": v["auc_diff_std"],
                                   "lower_in_seeds": v["auc_lower_seeds"],
                                   "seeds": v["auc_diff_seeds"]} for k, v in per.items()},
        }
        for k, v in per.items():
            sd = f" ± {100 * v['auc_std']:.2f}" if v["auc_std"] is not None else ""
            fsd = f" ± {100 * v['final_std']:.2f}" if v["final_std"] is not None else ""
            ratio, acquired = ("n/a" if v[key] is None else f"{v[key]:.2f}"
                               for key in ("hours_ratio", "acquired_ratio"))
            table.append([set_name, v["label"], f"{100 * v['auc']:.2f}{sd}",
                          paired_diff(StrategySummary(**v)), f"{100 * v['final']:.2f}{fsd}",
                          ratio, acquired])
    result["per_round"] = per_round(runs, sets, metric)
    meta = utterance_meta(runs)
    result["selected"] = selection_profile(runs, meta)
    result["pool"] = pool_size(runs, meta)
    result["round0_pool_spearman"] = pool_ranking(runs, meta)
    for key in ("hours_ratio", "acquired_ratio", "aulc", "aulc_vs_random"):
        result[key] = result["sets"][headline][key]
    if not args.tag:  # the recipe keeps the full run's results, as ESPnet recipes do
        # the committed file names the kept runs as the repository does, not this checkout
        report_md = (args.work_dir / "report" / name / "RESULTS.md").read_text().replace(
            f"`{runs}`", f"`{runs.relative_to(ROOT)}`", 1)
        (ROOT / "egs" / recipe / "al1" / "RESULTS.md").write_text(
            f"<!-- tools/bench/label_efficiency.py --lang {args.lang}, commit {commit} -->\n"
            + report_md)
    pngs = plot_sets(runs, sets, metric, name, headline)
    notes = [f"Pool: {result['pool']['utterances']} utterances ({result['pool']['hours']} h), "
             "half clean, half 'other'.",
             f"{metric.upper()} in %, mean ± sd over seeds {result['seeds']}; AULC: mean "
             "error over the labeled-hours range; hours ratio: labeled hours to reach "
             "random's final error (seed-mean curves) over random's own (< 1: fewer labels; "
             "n/a: never reached); acquired-hours ratio: the same counting only the hours "
             "labeled after round 0's shared initial set; AULC - random's: per seed (a "
             "seed's strategies share its round 0) the strategy's AULC less random's, mean ± "
             "sd over seeds, in points, and in how many seeds it was lower.",
             "Selected (all rounds and seeds; the pool is half 'other'): " + "; ".join(
                 f"{k} {100 * v['other_share']:.0f}% other, {v['mean_seconds']} s"
                 for k, v in result["selected"].items()),
             "Learning curves: " + ", ".join(f"`{p}` ({s})" for s, p in pngs.items()),
             f"Records of every round: `{result['runs']}` (units run at commits "
             f"{', '.join(result['unit_commits'])}; round 0 the same in every session: "
             f"{'yes' if result['round0_same_everywhere'] else 'NO'})."]
    # The oracle's notes only where its units ran: true_loss's round-0 losses are what the
    # strategies' first rankings are measured against (an empty line said nothing).
    if any(s["strategy"] == "true_loss" for e in report["sets"].values()
           for s in e["strategies"]):
        notes.insert(2, "true_loss reads the hidden transcripts: a ceiling, not a method.")
    if result["round0_pool_spearman"]:
        notes.insert(-2, "Round-0 scores vs the initial model's true loss on the pool "
                     "(Spearman, mean over seeds; all / clean / other): " + "; ".join(
                         f"{k} {v['all']['mean']} / {v['clean']['mean']} / "
                         f"{v['other']['mean']}"
                         for k, v in result["round0_pool_spearman"].items()))
    write_results(name, result, table, ["set", "strategy", f"AULC {metric} (%)",
                                        "AULC - random's, paired (lower in)",
                                        f"final {metric} (%)", "hours ratio",
                                        "acquired-hours ratio"],
                  commit=commit, notes=notes)


if __name__ == "__main__":
    main()

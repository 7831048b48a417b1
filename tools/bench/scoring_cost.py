#!/usr/bin/env python3
"""Benchmark: what scoring a pool costs, per strategy, against an encoder-only pass.

One trained LP model (``lp_quality``'s seed-0 model by default) scores the same pool with
every strategy as ``al_score`` computes them (``score_batch``; length-sorted batches of 16,
``al_score``'s default; ``least_confidence`` is ESPnet's joint beam search, one utterance at a
time, at beam 10), and with a bare encoder pass, interleaved per batch in alternating order
(as ``lp_quality`` times LP). CPU time of the model passes with one torch
thread (median of ``--repeats``), turned into seconds per hour of audio. ``least_confidence``
runs on the first ``--lc_utts`` utterances only (it is slow), scaled by audio duration.

Then each strategy runs once more as the real job, ``python -m espnet_lp.bin.al_score`` on
the pool (fresh interpreter, one thread): its wall time and peak resident memory
(``wait4``), start-up included.

Usage:
    python tools/bench/lp_quality.py --work_dir /tmp/lpq     # trains the model first (or
    #   add --seeds 0 --train_only to train only it)
    python tools/bench/scoring_cost.py --work_dir /tmp/lpq   # ~10 min on 2 CPU cores
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict

import numpy as np
import torch

from common import git_commit, interleaved_cpu_seconds, write_results
from lp_quality import batches, load_items, model_file

STRATEGIES = ["random", "ctc_confidence", "estimated_loss", "loss_prediction", "lp_diverse",
              "true_loss", "least_confidence"]


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work_dir", type=Path, required=True,
                        help="lp_quality's work dir (data, token list, exp/seed0)")
    parser.add_argument("--exp", default="exp/seed0", help="Model dir under --work_dir")
    parser.add_argument("--pool", default="data/train_clean_360", help="Pool under --work_dir")
    parser.add_argument("--utts", type=int, default=400, help="Pool utterances scored")
    parser.add_argument("--lc_utts", type=int, default=40,
                        help="Utterances least_confidence scores (scaled per hour)")
    parser.add_argument("--beam_size", type=int, default=10, help="least_confidence's beam")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tag", default="", help="Results go to scoring_cost[_TAG].{md,json}")
    return parser


def in_process(exp: Path, items, args) -> Dict[str, Dict]:
    """Median CPU seconds of each strategy's model passes over the pool (one thread)."""
    from espnet2.bin.asr_inference import Speech2Text

    from espnet_lp.al.scoring import PoolBatch, Scorer, get_strategy, score_batch

    torch.set_num_threads(1)
    s2t = Speech2Text(asr_train_config=exp / "config.yaml",
                      asr_model_file=model_file(exp), device="cpu",
                      beam_size=args.beam_size, ctc_weight=0.3, lm_weight=0.0, nbest=1)
    model = s2t.asr_model.eval()
    scorer = Scorer(model, beam_search=lambda: s2t)
    data = [PoolBatch(*b) for b in batches(items, args.batch_size)]
    lc_items = sorted(items[::max(1, len(items) // args.lc_utts)][:args.lc_utts],
                      key=lambda it: len(it[1]))
    lc_data = [PoolBatch(*b) for b in batches(lc_items, 1)]
    out = {}
    with torch.inference_mode():
        fns = {"encoder_only": lambda b: model.encode(b.speech, b.speech_lengths)}
        for name in STRATEGIES[:-1]:
            fns[name] = (lambda st: lambda b: score_batch(st, scorer, b))(get_strategy(name))
        for fn in fns.values():  # warm-up
            for b in data[:2]:
                fn(b)
        times = interleaved_cpu_seconds(fns, data, args.repeats)
        lc = get_strategy("least_confidence")
        score_batch(lc, scorer, lc_data[0])
        times["least_confidence"] = interleaved_cpu_seconds(
            {"lc": lambda b: score_batch(lc, scorer, b)}, lc_data, 1)["lc"]
        for name, t in times.items():
            run_items = lc_items if name == "least_confidence" else items
            out[name] = {"cpu_seconds": float(np.median(t)), "items": run_items, "all": t}
            print(f"  {name}: {np.median(t):.2f} s CPU for {len(run_items)} utterances",
                  flush=True)
    return out


def as_job(exp: Path, pool: Path, ids, strategy: str, work: Path) -> Dict[str, float]:
    """``al_score`` as a fresh process on the pool: wall seconds and peak RSS (MiB)."""
    key_file = work / "keys"
    order = [line.split(maxsplit=1)[0] for line in (pool / "wav.scp").read_text().splitlines()]
    wanted = set(ids)  # ESPnet's streaming reader wants the keys in wav.scp's order
    key_file.write_text("".join(f"{u}\n" for u in order if u in wanted))
    cmd = [sys.executable, "-m", "espnet_lp.bin.al_score", "--strategy", strategy,
           "--asr_train_config", str(exp / "config.yaml"),
           "--asr_model_file", str(model_file(exp)), "--data_dir", str(pool),
           "--key_file", str(key_file), "--output_dir", str(work / strategy)]
    if strategy == "true_loss":
        cmd += ["--use_transcripts", "true"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"al_score {strategy} failed: {proc.stderr.read()[-2000:]}")
    return {"wall_seconds": round(wall, 2), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1)}


def main(cmd=None) -> None:
    args = get_parser().parse_args(cmd)
    commit = git_commit()
    exp, pool = args.work_dir / args.exp, args.work_dir / args.pool
    items = load_items([pool], args.work_dir / "inputs" / "tokens.txt")[:args.utts]

    def audio_hours(its):
        return sum(len(it[1]) for it in its) / 16000 / 3600

    print(f"scoring {len(items)} utterances ({audio_hours(items) * 60:.1f} min of audio)",
          flush=True)
    timing = in_process(exp, items, args)
    per_hour = {name: t["cpu_seconds"] / audio_hours(t["items"]) for name, t in timing.items()}
    lp = timing["loss_prediction"]
    ratio_runs = lp["all"] / timing["encoder_only"]["all"]
    print("running each strategy as an al_score job", flush=True)
    jobs = {}
    with tempfile.TemporaryDirectory() as tmp:
        ids = [it[0] for it in items]
        for name in STRATEGIES:
            job_ids = [it[0] for it in timing[name]["items"]]
            jobs[name] = as_job(exp, pool, job_ids if name == "least_confidence" else ids,
                                name, Path(tmp))
    result = {
        "lp_over_encoder": {"median": round(float(np.median(ratio_runs)), 3),
                            "min": round(float(ratio_runs.min()), 3),
                            "max": round(float(ratio_runs.max()), 3)},
        "lc_beam10_over_lp": round(per_hour["least_confidence"] / per_hour["loss_prediction"],
                                   1),
        "cpu_seconds_per_audio_hour": {k: round(v, 1) for k, v in per_hour.items()},
        "job": jobs, "utterances": len(items), "lc_utterances": args.lc_utts,
        "audio_hours": round(audio_hours(items), 4), "beam_size": args.beam_size,
        "batch_size": args.batch_size, "repeats": args.repeats, "torch_threads": 1,
        "goals": {"lp_over_encoder": "<= 1.1", "lc_beam10_over_lp": ">= 20"},
    }
    table = [["encoder only", f"{per_hour['encoder_only']:.1f}", "1.00", "", ""]]
    for name in STRATEGIES:
        table.append([name, f"{per_hour[name]:.1f}",
                      f"{per_hour[name] / per_hour['encoder_only']:.2f}",
                      f"{jobs[name]['wall_seconds']:.1f}", f"{jobs[name]['peak_rss_mib']:.0f}"])
    r = result["lp_over_encoder"]
    verdict = ("met" if r["max"] <= 1.1 else
               "met by the median only" if r["median"] <= 1.1 else "missed")
    lc_verdict = "met" if result["lc_beam10_over_lp"] >= 20 else "missed"
    notes = [
        f"CPU seconds of model passes per hour of audio, one torch thread, median of "
        f"{args.repeats} runs over {len(items)} pool utterances "
        f"({audio_hours(items) * 60:.1f} min of audio) in length-sorted batches of "
        f"{args.batch_size}; least_confidence: beam {args.beam_size}, one run over "
        f"{len(timing['least_confidence']['items'])} of them, per hour of their audio.",
        f"Goal LP <= 1.1x an encoder-only pass: {r['median']:.2f} [{r['min']:.2f}, "
        f"{r['max']:.2f}] ({verdict}).",
        f"Goal least_confidence (beam {args.beam_size}) >= 20x LP: "
        f"{result['lc_beam10_over_lp']}x ({lc_verdict}).",
        "Job: `python -m espnet_lp.bin.al_score` as a fresh process (imports included), "
        "one thread; wall seconds and peak resident memory (wait4). least_confidence's job "
        "scores only its subset.",
    ]
    name = "scoring_cost" + (f"_{args.tag}" if args.tag else "")
    write_results(name, result, table, ["strategy", "CPU s per audio hour",
                                        "x encoder only", "job wall s", "job peak RSS MiB"],
                  commit=commit, notes=notes)


if __name__ == "__main__":
    main()

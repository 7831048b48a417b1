#!/usr/bin/env python3
r"""Cost of batch-invariant encoding (model_conf.mask_padding) and of LP scoring, batched.

Times, on one CPU thread, the encoder pass and ``score_pool`` over the first utterances of a
data dir in batches, with ``mask_padding`` off and on (medians of repeated runs with min/max,
after a warm-up), and checks how far batched LP scores are from standalone ones.

Usage:
    python tools/bench/padding_cost.py --exp_dir /tmp/al_smoke/al/initial/round0/model \
        --data_dir /tmp/al_smoke/data/dev_clean     # the model of tools/bench/al_smoke.sh
"""

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import soundfile
import torch

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).resolve().parent / "results"


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp_dir", type=Path, required=True)
    parser.add_argument("--checkpoint", default="valid.acc.best.pth")
    parser.add_argument("--data_dir", type=Path, required=True)
    parser.add_argument("--num_utts", type=int, default=24)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=15)
    return parser


def timed(fn, batches, repeats):
    ts = []
    for _ in range(repeats):
        start = time.perf_counter()
        with torch.no_grad():
            for speech, lens in batches:
                fn(speech, lens)
        ts.append(time.perf_counter() - start)
    return {"median_s": statistics.median(ts), "min_s": min(ts), "max_s": max(ts)}


def main(cmd=None) -> None:
    args = get_parser().parse_args(cmd)
    sys.path.insert(0, str(ROOT))
    from espnet2.tasks.asr import ASRTask

    from espnet_lp.data.datadir import DataDir

    torch.set_num_threads(1)
    model, _ = ASRTask.build_model_from_file(args.exp_dir / "config.yaml",
                                             args.exp_dir / args.checkpoint, "cpu")
    model.eval()
    data = DataDir.read(args.data_dir)
    wavs = [torch.tensor(soundfile.read(data.wav_scp[u], dtype="float32")[0])
            for u in data.utt_ids[: args.num_utts]]
    batches = [(torch.nn.utils.rnn.pad_sequence(wavs[i:i + args.batch_size], batch_first=True),
                torch.tensor([len(w) for w in wavs[i:i + args.batch_size]]))
               for i in range(0, len(wavs), args.batch_size)]
    figures = {}
    for mask in (False, True):
        model.mask_padding = mask
        timed(model.score_pool, batches, 2)  # warm-up
        figures[f"encode_mask_{mask}"] = timed(model.encode, batches, args.repeats)
        figures[f"score_pool_mask_{mask}"] = timed(model.score_pool, batches, args.repeats)
        with torch.no_grad():
            batched = torch.cat([model.score_pool(*b)["lp_score"] for b in batches])
            alone = torch.cat([model.score_pool(w[None], torch.tensor([len(w)]))["lp_score"]
                               for w in wavs])
        figures[f"max_abs_lp_diff_batched_vs_alone_mask_{mask}"] = float(
            (batched - alone).abs().max())
    med = {k: v["median_s"] for k, v in figures.items() if isinstance(v, dict)}
    figures["masking_cost_ratio_encode"] = med["encode_mask_True"] / med["encode_mask_False"]
    ratio = med["score_pool_mask_True"] / med["encode_mask_True"]
    figures["score_pool_over_encode_mask_True"] = ratio
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    command = "python tools/bench/padding_cost.py " + " ".join(
        shlex.quote(a) for a in (cmd if cmd is not None else sys.argv[1:]))
    out = {"command": command, "commit": commit, "threads": 1, "utterances": len(wavs),
           "batch_size": args.batch_size, "figures": figures}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "padding_cost.json").write_text(json.dumps(out, indent=1) + "\n")
    lines = ["# Batch-invariant encoding: cost and effect", "",
             f"Command: `{command}` at commit {commit}; 1 CPU thread, {len(wavs)} "
             f"utterances in batches of {args.batch_size}, {args.repeats} repeats.", "",
             "| measure | value |", "| --- | ---: |"]
    for key, value in figures.items():
        if isinstance(value, dict):
            value = (f"{value['median_s']:.3f} s (min {value['min_s']:.3f}, "
                     f"max {value['max_s']:.3f})")
        else:
            value = f"{value:.3g}"
        lines.append(f"| {key} | {value} |")
    (RESULTS / "padding_cost.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

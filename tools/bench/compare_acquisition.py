#!/usr/bin/env python3
r"""Benchmark decision: does an acquisition variant beat top-k, seed for seed, on the dev sets?

Reads two ``label_efficiency`` results made on the same tuning sets with the same seeds (the
same initial model per seed, so differences pair up): the base (top-k) and a variant (e.g.
``acquisition: typical``). Per strategy in both, per set: AULC under each, and the paired
difference per seed (variant - base; negative = the variant's curve is lower, better), mean
± sd over seeds. ``random`` draws the same selections under every acquisition, so its
difference must be 0: a check that the two results pair up. The decision rule is fixed here,
before the 3-seed runs are read (seed 0 of both had been seen): the variant
replaces top-k in the reported runs if, for ``--deciding_strategy`` (loss_prediction), its
paired AULC difference averaged over the sets and seeds is below 0. Only then are the test
sets of the chosen runs reported. Writes ``results/compare_acquisition_<lang>_<name>.{json,md}``.

Usage:
    python tools/bench/compare_acquisition.py \
        --base tools/bench/results/label_efficiency_en_dev.json \
        --variant tools/bench/results/label_efficiency_en_typical_dev.json --name typical
"""

import argparse
import json
import statistics
from pathlib import Path

from common import write_results


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, required=True, help="Top-k label_efficiency JSON")
    parser.add_argument("--variant", type=Path, required=True, help="The variant's JSON")
    parser.add_argument("--name", required=True, help="The variant's name (results file)")
    parser.add_argument("--deciding_strategy", default="loss_prediction")
    return parser


def per_seed_aulc(result: dict, set_name: str) -> dict:
    """{strategy: {seed: AULC}} from a label_efficiency result's per-round values, as the
    report computes it (trapezoid over the seed-mean labeled hours, divided by their range)."""
    from espnet_lp.al.report import area_under_curve

    out = {}
    for strategy, rounds in result["per_round"][set_name].items():
        ordered = [rounds[r] for r in sorted(rounds, key=int)]
        hours = [row["hours"] for row in ordered]
        seeds = ordered[0]["per_seed"].keys()
        out[strategy] = {s: area_under_curve(hours, [row["per_seed"][s] for row in ordered])
                         for s in seeds}
    return out


def load(path: Path) -> dict:
    if not path.is_file():
        raise SystemExit(f"{path}: not found (run tools/bench/label_efficiency.py first)")
    return json.loads(path.read_text())


def main(cmd=None) -> None:
    args = get_parser().parse_args(cmd)
    base, variant = load(args.base), load(args.variant)
    if base["lang"] != variant["lang"]:
        raise SystemExit(f"{args.base} is {base['lang']}, {args.variant} {variant['lang']}")
    sets = [s for s in base["per_round"] if s in variant["per_round"]]
    if not sets:
        raise SystemExit("the two results share no evaluation set")
    result = {"lang": base["lang"], "base": str(args.base), "variant": str(args.variant),
              "name": args.name, "sets": sets, "strategies": {}}
    table, deciding = [], []
    for set_name in sets:
        b, v = per_seed_aulc(base, set_name), per_seed_aulc(variant, set_name)
        for strategy in [s for s in b if s in v]:
            seeds = sorted(set(b[strategy]) & set(v[strategy]), key=int)
            if not seeds:
                continue
            diffs = [v[strategy][s] - b[strategy][s] for s in seeds]
            mean = statistics.mean(diffs)
            sd = statistics.stdev(diffs) if len(diffs) > 1 else None
            result["strategies"].setdefault(strategy, {})[set_name] = {
                "base": statistics.mean(b[strategy][s] for s in seeds),
                "variant": statistics.mean(v[strategy][s] for s in seeds),
                "paired_diff": {"mean": mean, "sd": sd, "per_seed": dict(zip(seeds, diffs))}}
            if strategy == args.deciding_strategy:
                deciding += diffs
            entry = result["strategies"][strategy][set_name]
            sd_text = "" if sd is None else f" ± {100 * sd:.2f}"
            table.append([set_name, strategy, f"{100 * entry['base']:.2f}",
                          f"{100 * entry['variant']:.2f}", f"{100 * mean:+.2f}{sd_text}",
                          len(seeds)])
    if not deciding:
        raise SystemExit(f"{args.deciding_strategy} is not in both results")
    verdict = statistics.mean(deciding)
    result["decision"] = {"strategy": args.deciding_strategy, "mean_paired_diff": verdict,
                          "adopt_variant": verdict < 0}
    notes = [f"AULC of the {base['metric'].upper()} (%) over the labeled hours; paired "
             "difference = variant - top-k per seed (negative: the variant is better), mean ± "
             "sd over seeds.",
             f"Decision (rule fixed before the 3-seed runs were read): "
             f"{args.deciding_strategy}'s "
             f"paired difference over {sets} and seeds is {100 * verdict:+.2f} points: "
             + (f"adopt {args.name}." if verdict < 0 else f"keep top-k, not {args.name}.")]
    unpaired = [set_name for set_name, e in result["strategies"].get("random", {}).items()
                if abs(e["paired_diff"]["mean"]) > 1e-9]
    if unpaired:  # random's selections, hence its models, should be the same in both
        notes.append(f"WARNING: random differs between the two results on {unpaired}: they "
                     "do not pair up (other seeds, pool or settings), so the differences are "
                     "not paired.")
    write_results(f"compare_acquisition_{base['lang']}_{args.name}", result, table,
                  ["set", "strategy", "AULC top-k", f"AULC {args.name}", "paired diff",
                   "seeds"], notes=notes)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
r"""Analysis: how tight the CTC alignment of every pool utterance is, and what each strategy sent.

CTC can align a transcript of ``L`` tokens, ``R`` of them repeating the token before, only
to at least ``L + R`` encoder frames (a blank between repeats); ESPnet's CTC loss has
``zero_infinity`` on, so an utterance with fewer frames trains nothing, silently. With char
tokens and 4x subsampling (40 ms per encoder frame, ~25 frames/s), fast speech comes close
to that limit. For each utterance of a kept ``label_efficiency`` run's pool this computes the
alignment margin ``frames / (L + R)`` exactly as the model sees it (the audio's samples, the
STFT frontend's ``1 + samples // hop_length``, the encoder's ``input_layer`` subsampling, the
recipe's tokenizer) and reports, per condition (speaking rate), the margin's spread and the
share of infeasible (< 1) and tight (< ``--tight``) utterances; per strategy and seed, the
share of its selections (every round) and of its round-0 top-``k`` that are tight; and the
mean round-0 true loss per margin bin. ``--nbpe N`` adds the margin under a BPE model of
``N`` pieces trained on the pool's text as the recipe does (``al.sh --token_type bpe``).
Writes ``results/ctc_feasibility_<tag>.{json,md}``.

Usage:
    python tools/bench/ctc_feasibility.py \
        --runs tools/bench/runs/label_efficiency_en_warm_dev \
        --data_dir /tmp/le_en_warm/egs/librispeech_100/al1/data/train_clean_100 \
        --asr_config conf/tuning/train_lp_tiny.yaml --nbpe 100 --tag en_warm_dev
"""

import argparse
import csv
import math
import statistics
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import soundfile
import yaml
from common import ROOT, write_results

from espnet_lp.asr.ctc_alignment import (ENCODERS_WITH_INPUT_LAYER, SUBSAMPLING_SLICES,
                                         EncoderGeometry, frames_needed, geometry_from_config)
from espnet_lp.data.asr_inputs import build_tokenizer, train_bpe_model
from espnet_lp.data.datadir import DataDir
from espnet_lp.errors import EspnetLPError

MARGIN_BINS = (0.0, 1.0, 1.1, 1.2, 1.4, 1.7, 2.2, math.inf)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, required=True,
                        help="A label_efficiency run's kept units (tools/bench/runs/<name>)")
    parser.add_argument("--data_dir", type=Path, required=True,
                        help="The pool's data dir (wav.scp and text) in the run's work dir")
    parser.add_argument("--asr_config", type=Path, required=True,
                        help="The training config the run used (frontend, input_layer)")
    parser.add_argument("--token_type", default="char", choices=("char", "bpe"))
    parser.add_argument("--bpemodel", type=Path, default=None, help="With --token_type bpe")
    parser.add_argument("--nbpe", type=int, default=0,
                        help="Also the margin under a BPE model of this size (0: no)")
    parser.add_argument("--tight", type=float, default=1.2,
                        help="Margin below which an alignment counts as tight")
    parser.add_argument("--tag", required=True, help="results/ctc_feasibility_<tag>")
    return parser


def read_scores(path: Path) -> Dict[str, float]:
    """``utt score`` lines (a kept round's ``scores.tsv`` or ``selected``)."""
    out = {}
    for line in path.read_text().splitlines():
        if line.strip():
            fields = line.split()
            out[fields[0]] = float(fields[1]) if len(fields) > 1 else math.nan
    return out


def audio_samples(wav: str, data_dir: Path) -> int:
    """Samples of a ``wav.scp`` entry (a path, absolute or relative to the recipe dir)."""
    for path in (Path(wav), data_dir.parent.parent / wav):
        if path.is_file():
            return soundfile.info(str(path)).frames
    raise SystemExit(f"{data_dir / 'wav.scp'}: audio {wav} not found (is this the run's work "
                     "dir?)")


def margins(data: DataDir, ids: List[str], tokenizer, geometry: EncoderGeometry,
            samples: Dict[str, int]) -> Dict[str, float]:
    """utt -> encoder frames / frames its CTC alignment needs."""
    out = {}
    for u in ids:
        need = frames_needed(tokenizer.text2tokens(data.text[u]))
        out[u] = geometry.frames(samples[u]) / max(need, 1)
    return out


def spread(values: List[float]) -> Dict[str, float]:
    v = sorted(values)
    return {"n": len(v), "median": round(statistics.median(v), 3),
            "p10": round(v[len(v) // 10], 3), "min": round(v[0], 3)}


def share(ids, pred) -> float:
    ids = list(ids)
    return round(sum(map(pred, ids)) / len(ids), 3) if ids else math.nan


def condition_of(meta: Dict[str, dict], u: str) -> str:
    """The speaking rate of the generator's condition (``rate=1.4``), or ``unknown``."""
    for part in meta.get(u, {}).get("condition", "").split():
        if part.startswith("rate="):
            return part
    return "unknown"


def main(cmd: Optional[Sequence[str]] = None) -> None:
    args = get_parser().parse_args(cmd)
    conf = yaml.safe_load(args.asr_config.read_text())
    geometry = geometry_from_config(conf)
    if geometry is None:
        raise SystemExit(f"{args.asr_config}: how many encoder frames this model makes is not "
                         "known here (it needs the default frontend, no pre-encoder, and a "
                         f"{'/'.join(ENCODERS_WITH_INPUT_LAYER)} encoder with an input_layer "
                         f"of {', '.join(SUBSAMPLING_SLICES)})")
    hop, layer = geometry.hop_length, geometry.input_layer
    try:
        data = DataDir.read(args.data_dir)
    except EspnetLPError as e:
        raise SystemExit(str(e)) from None
    if data.text is None:
        raise SystemExit(f"{args.data_dir}: no text (the pool's hidden transcripts are needed)")
    meta_path = args.runs / "utterances.tsv"
    meta = ({r["utt_id"]: r for r in csv.DictReader(open(meta_path), delimiter="\t")}
            if meta_path.is_file() else {})
    seeds = sorted(int(p.name[4:]) for p in args.runs.glob("seed*") if p.name[4:].isdigit())
    if not seeds:
        raise SystemExit(f"{args.runs}: no kept seeds")
    # the whole training set: each seed labels its own initial set and leaves the rest as pool
    pool = sorted({u for seed in seeds for name in ("labeled", "pool")
                   for u in (args.runs / f"seed{seed}" / "initial" / "round0" / name)
                   .read_text().split()})
    missing = [u for u in pool if u not in data.text]
    if missing:
        raise SystemExit(f"{args.data_dir}: {len(missing)} pool utterances have no text "
                         f"(first {missing[0]}): not this run's data dir")
    samples = {u: audio_samples(data.wav_scp[u], args.data_dir) for u in pool}
    tokenizers = {args.token_type: build_tokenizer(args.token_type, args.bpemodel)}
    if args.nbpe:
        with tempfile.TemporaryDirectory() as tmp:
            model = train_bpe_model([data.text[u] for u in pool], Path(tmp) / "bpe", args.nbpe)
            tokenizers[f"bpe{args.nbpe}"] = build_tokenizer("bpe", model)
            margin = {name: margins(data, pool, t, geometry, samples)
                      for name, t in tokenizers.items()}
    else:
        margin = {name: margins(data, pool, t, geometry, samples)
                  for name, t in tokenizers.items()}
    main_margin = margin[args.token_type]
    tight = lambda u: main_margin[u] < args.tight  # noqa: E731
    infeasible = lambda u: main_margin[u] < 1  # noqa: E731

    result: dict = {"runs": str(args.runs.resolve().relative_to(ROOT))
                    if args.runs.resolve().is_relative_to(ROOT) else str(args.runs),
                    "input_layer": layer, "hop_length": hop, "token_type": args.token_type,
                    "tight_below": args.tight, "seeds": seeds, "conditions": {},
                    "strategies": {}, "true_loss_by_margin": {}}
    table = []
    conditions = sorted({condition_of(meta, u) for u in pool})
    for c in conditions + ["all"]:
        ids = [u for u in pool if c == "all" or condition_of(meta, u) == c]
        entry = {name: {**spread([m[u] for u in ids]),
                        "infeasible": share(ids, lambda u, m=m: m[u] < 1),
                        "tight": share(ids, lambda u, m=m: m[u] < args.tight)}
                 for name, m in margin.items()}
        result["conditions"][c] = entry
        for name, e in entry.items():
            table.append([f"pool, {c}", name, e["n"], e["median"], e["p10"], e["min"],
                          f"{100 * e['infeasible']:.1f}", f"{100 * e['tight']:.1f}"])

    strategies = sorted({p.parent.name for p in args.runs.glob("seed*/*/unit.json")})
    notes = []
    for s in strategies:
        per_seed = []
        for seed in seeds:
            unit = args.runs / f"seed{seed}" / s
            if not (unit / "unit.json").is_file():
                continue
            selected = [u for p in sorted(unit.glob("round*/selected"))
                        for u in read_scores(p)]
            scores_path = unit / "round0" / "scores.tsv"
            k = len(read_scores(unit / "round0" / "selected"))
            top = []
            if scores_path.is_file():
                scores = read_scores(scores_path)
                top = sorted(scores, key=lambda u: -scores[u])[:k]
            per_seed.append({"seed": seed, "selected": len(selected),
                             "selected_tight": share(selected, tight),
                             "selected_infeasible": share(selected, infeasible),
                             "round0_top_tight": share(top, tight) if top else None})
        if not per_seed:
            continue
        mean = {key: round(statistics.mean(p[key] for p in per_seed), 3)
                for key in ("selected_tight", "selected_infeasible")}
        tops = [p["round0_top_tight"] for p in per_seed if p["round0_top_tight"] is not None]
        mean["round0_top_tight"] = round(statistics.mean(tops), 3) if tops else None
        result["strategies"][s] = {"per_seed": per_seed, "mean": mean}
        notes.append(f"{s}: {100 * mean['selected_tight']:.0f}% of its selections tight "
                     f"(margin < {args.tight:g}; the pool: "
                     f"{100 * result['conditions']['all'][args.token_type]['tight']:.0f}%), "
                     f"{100 * mean['selected_infeasible']:.1f}% infeasible"
                     + (f"; round-0 top-{k} by score: {100 * mean['round0_top_tight']:.0f}% "
                        "tight" if tops else ""))

    true_loss = [read_scores(args.runs / f"seed{seed}" / "true_loss" / "round0" / "scores.tsv")
                 for seed in seeds
                 if (args.runs / f"seed{seed}" / "true_loss" / "round0" / "scores.tsv").is_file()]
    for lo, hi in zip(MARGIN_BINS, MARGIN_BINS[1:]):
        ids = [u for u in pool if lo <= main_margin[u] < hi]
        losses = [s[u] for s in true_loss for u in ids if u in s]  # each seed's own pool
        if losses:
            result["true_loss_by_margin"][f"[{lo:g}, {hi:g})"] = {
                "n": len(ids), "mean_true_loss": round(statistics.mean(losses), 3)}
    if result["true_loss_by_margin"]:
        bins = "; ".join(f"{k} n={v['n']}: {v['mean_true_loss']:.2f}"
                         for k, v in result["true_loss_by_margin"].items())
        notes.append(f"Round-0 true loss (the oracle's score; mean over seeds) by margin: {bins}")
    notes.append(f"Margin = encoder frames / (tokens + repeats): 1 + samples // {hop} STFT "
                 f"frames, {layer} subsampling; below 1 CTC has no alignment and ESPnet's "
                 "zero_infinity makes the utterance's CTC loss 0.")
    write_results(f"ctc_feasibility_{args.tag}", result, table,
                  ["utterances", "tokens", "n", "margin median", "p10", "min",
                   "infeasible (%)", f"tight < {args.tight:g} (%)"], notes=notes)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Benchmark: how well loss prediction ranks unseen utterances, against confidence baselines.

Setup (generated English corpus, tiny LP config, one ASR per training seed):

- ``train``: the labeled set the ASR (and its jointly trained LP heads) learns from;
- ``dev``: dev-clean + dev-other, the validation set a recipe has: what the LP heads are
  refit on (``espnet_lp.asr.lp_refit``), never reported;
- ``pool``: held-out audio drawn like the active-learning pool (clean and other conditions
  mixed), split by utterance-id hash into a **tune** half (where variants are compared and
  the default is chosen) and a **report** half (the headline figures).

For every seed, every score is compared with the true per-utterance loss (the model's own
hybrid loss against the reference, per token: what the LP heads predict) by Spearman's rho,
over the whole split and within each condition. Baselines: ``ctc_confidence``,
``estimated_loss`` and ``least_confidence`` (ESPnet beam search) as ``al_score`` computes
them. LP variants: the jointly trained heads (the paper) and heads refit on ``dev`` with
other features / losses / fit data (the ablation). Figures are means over seeds with the
standard deviation and a 95% bootstrap CI (utterances resampled, seeds averaged).

Usage:
    python tools/bench/lp_quality.py --work_dir /tmp/lpq      # ~35 min on 2 CPU cores
    python tools/bench/lp_quality.py --work_dir /tmp/lpq --seeds 0 --tag quick
    python tools/bench/lp_quality.py --work_dir /tmp/lpq --seeds 0 --train_only  # for
        # scoring_cost.py: the corpus and the seed-0 model only (~20 min on one core)
"""

import argparse
import copy
import hashlib
import shlex
import time
from pathlib import Path
from typing import Dict, List

import numpy as np
import torch
from scipy.stats import rankdata

from common import (ROOT, finished, git_commit, interleaved_cpu_seconds, prepare_english,
                    train_args, write_results)

SUBSETS = ["train-clean-100", "dev-clean", "dev-other", "train-clean-360"]
BASELINES = ["ctc_confidence", "estimated_loss", "least_confidence"]

#: LP variants: name -> how the heads are refit with the ASR frozen (``espnet_lp.asr.lp_refit``
#: options, features and fit set). ``joint`` (not listed) is the model's heads as trained
#: with the ASR (Luo et al.); ``refit_dev_ranking_from_joint`` is what ``lp_refit`` does by
#: default (best on the tune half; ``refit_dev``, mse_log from fresh heads, was until
#: commit 89ecb6f). Options a variant does not name are mse_log from fresh heads.
VARIANTS = {
    "refit_dev": dict(features=["posteriors"], fit="dev"),
    "refit_dev_ranking_from_joint": dict(features=["posteriors"], fit="dev",
                                         loss="margin_ranking", reinit=False),
    "refit_dev_hidden": dict(features=["hidden"], fit="dev"),
    "refit_dev_hidden_posteriors": dict(features=["hidden", "posteriors"], fit="dev"),
    "refit_dev_no_combined_term": dict(features=["posteriors"], fit="dev",
                                       combined_weight=0.0),
    "refit_train": dict(features=["posteriors"], fit="train"),
    "refit_train_dev": dict(features=["posteriors"], fit="train+dev"),
}
DEFAULT = "refit_dev_ranking_from_joint"


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work_dir", type=Path, required=True,
                        help="Corpus, models and cached scores (reruns reuse them)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="Training seeds (one ASR each)")
    parser.add_argument("--corpus_seed", type=int, default=0)
    parser.add_argument("--train_utts", type=int, default=1200)
    parser.add_argument("--dev_utts", type=int, default=100, help="Per dev subset")
    parser.add_argument("--pool_utts", type=int, default=400, help="Held-out pool (mixed)")
    parser.add_argument("--max_epoch", type=int, default=15)
    parser.add_argument("--beam_size", type=int, default=4, help="least_confidence's beam")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=7, help="Timing repetitions")
    parser.add_argument("--config", type=Path,
                        default=ROOT / "conf" / "tuning" / "train_lp_tiny.yaml")
    parser.add_argument("--train_opts", default="", help="Extra asr_train options")
    parser.add_argument("--tag", default="", help="Results go to lp_quality[_TAG].{md,json}")
    parser.add_argument("--train_only", action="store_true",
                        help="Only make the corpus and train the --seeds models (what "
                             "scoring_cost.py reads); no scores, no results written")
    return parser


# ---- data ---------------------------------------------------------------------------------
def load_items(data_dirs: List[Path], token_list: Path):
    """(utt id, waveform, token ids) of the data dirs, sorted by duration."""
    import soundfile

    from espnet_lp.data.datadir import DataDir

    tokens = {t: i for i, t in enumerate(token_list.read_text().split("\n"))}
    items = []
    for d in data_dirs:
        data = DataDir.read(d)
        for u in data.utt_ids:
            x = torch.tensor(soundfile.read(data.wav_scp[u], dtype="float32")[0])
            y = torch.tensor([tokens.get("<space>" if c == " " else c, tokens["<unk>"])
                              for c in data.text[u]])
            items.append((u, x, y))
    return sorted(items, key=lambda it: len(it[1]))


def batches(items, size: int = 8):
    pad = torch.nn.utils.rnn.pad_sequence
    for i in range(0, len(items), size):
        chunk = items[i:i + size]
        yield ([c[0] for c in chunk], pad([c[1] for c in chunk], batch_first=True),
               torch.tensor([len(c[1]) for c in chunk]),
               pad([c[2] for c in chunk], batch_first=True, padding_value=-1),
               torch.tensor([len(c[2]) for c in chunk]))


def conditions(work: Path) -> Dict[str, str]:
    """Utterance id (as the data dirs spell it) -> ``clean`` / ``other``."""
    cond = {}
    for tsv in (work / "corpus" / "synth_meta").glob("*_utterances.tsv"):
        for line in tsv.read_text().splitlines()[1:]:
            f = line.split("\t")
            cond[f[0]] = f[7].split()[0]
    return cond


def in_tune_half(utt_id: str) -> bool:
    return hashlib.sha256(utt_id.encode()).digest()[0] < 128


# ---- per seed: train, then everything the variants need (cached) --------------------------
def train(work: Path, seed: int, args) -> Path:
    exp = work / "exp" / f"seed{seed}"
    if finished(exp, args.max_epoch):
        return exp
    from espnet_lp.bin.asr_train import main as train_main

    resumed = (exp / "checkpoint.pth").exists()
    start = time.perf_counter()
    train_main(train_args(work, exp, args.config) + [
        "--max_epoch", str(args.max_epoch), "--seed", str(seed), "--resume", "true"]
        + shlex.split(args.train_opts))  # a killed run goes on from its last epoch
    seconds = exp / "bench_train_seconds"
    if resumed:  # the killed part's time is unknown: no figure
        seconds.unlink(missing_ok=True)
    else:
        seconds.write_text(f"{time.perf_counter() - start:.1f}\n")
    return exp


def model_file(exp: Path) -> Path:
    """The checkpoint the AL loop scores with (the config's first ``best_model_criterion``:
    ``valid.cer_ctc.best.pth`` for the tiny config), not ESPnet's ``valid.acc.best.pth``."""
    from espnet_lp.asr.export import find_checkpoint

    return find_checkpoint(exp)


def all_features_model(model):
    """A copy of ``model`` whose LP decoder pools every feature (hidden and posteriors)."""
    from espnet_lp.asr.loss_predictor import LPMLPDecoder

    lp = model.lp_decoder
    copy_ = copy.deepcopy(model)
    copy_.set_lp_decoder(LPMLPDecoder(
        model.encoder.output_size(), model._decoder_size(),
        encoder_layers=lp._encoder_layers, hidden=64, targets=lp.targets,
        features=["hidden", "posteriors"]))
    return copy_.eval()


def extract(work: Path, exp: Path, args, split_items: Dict[str, list]) -> Dict[str, Dict]:
    """Per split: ids, every head input, true losses, the joint LP score and baselines.

    Cached in the exp dir (``bench_features.pt``), keyed by the model's checkpoint time.
    """
    ckpt = model_file(exp)
    cache = exp / "bench_features.pt"
    if cache.exists():
        cached = torch.load(cache)
        if cached.get("ckpt_mtime") == ckpt.stat().st_mtime:
            return cached
    from espnet2.bin.asr_inference import Speech2Text

    from espnet_lp.al.scoring import PoolBatch, Scorer, get_strategy, score_batch
    from espnet_lp.asr.lp_refit import collect_held_out

    s2t = Speech2Text(asr_train_config=exp / "config.yaml", asr_model_file=ckpt, device="cpu",
                      beam_size=args.beam_size, ctc_weight=0.3, lm_weight=0.0, nbest=1)
    model = s2t.asr_model.eval()
    full = all_features_model(model)
    scorer = Scorer(model, beam_search=lambda: s2t)
    out = {"ckpt_mtime": ckpt.stat().st_mtime}
    for split, items in split_items.items():
        start = time.perf_counter()
        held = collect_held_out(full, batches(items))
        rec = {"ids": held.utt_ids, "pooled": held.pooled, "targets": held.targets,
               "scores": {}}
        names = ["loss_prediction", "ctc_confidence", "estimated_loss"]
        if split == "pool":
            names.append("least_confidence")
        for name in names:
            vals = []
            for b in batches(items):
                vals.append(score_batch(get_strategy(name), scorer, PoolBatch(*b[:3])).scores)
            rec["scores"]["joint" if name == "loss_prediction" else name] = \
                torch.cat(vals).float()
        out[split] = rec
        print(f"  {exp.name} {split}: {len(items)} utterances in "
              f"{time.perf_counter() - start:.0f} s", flush=True)
    out["ctc_weight"] = float(model.ctc_weight)
    out["joint_state"] = {k: v.clone() for k, v in model.lp_decoder.state_dict().items()}
    torch.save(out, cache)
    return out


def fit_variant(name: str, feats: Dict, seed: int) -> torch.Tensor:
    """Refit heads as ``VARIANTS[name]`` says; their combined scores on the pool."""
    from espnet_lp.asr.loss_predictor import LPMLPDecoder
    from espnet_lp.asr.lp_refit import HeldOutSet, combined, refit_heads

    spec = VARIANTS[name]
    pool = feats["pool"]
    torch.manual_seed(seed)
    lp = LPMLPDecoder(pool["pooled"]["ctc_layer1"].size(1), pool["pooled"]["att_hidden"].size(1),
                      encoder_layers=[int(k[9:]) for k in pool["pooled"]
                                      if k.startswith("ctc_layer")],
                      hidden=64, features=spec["features"], loss="margin_ranking")
    if spec["features"] == ["posteriors"]:  # as lp_refit: from the jointly trained heads
        lp.load_state_dict(feats["joint_state"])
    parts = [feats[name] for name in spec["fit"].split("+")]
    fit = HeldOutSet(sum((p["ids"] for p in parts), []),
                     {k: torch.cat([p["pooled"][k] for p in parts]) for k in parts[0]["pooled"]},
                     {k: torch.cat([p["targets"][k] for p in parts]) for k in parts[0]["targets"]})
    refit_heads(lp, fit, feats["ctc_weight"], loss=spec.get("loss", "mse_log"),
                reinit=spec.get("reinit", True),
                combined_weight=spec.get("combined_weight", 1.0), seed=seed)
    lp.eval()
    with torch.no_grad():
        return combined(lp.predict_pooled(pool["pooled"]), feats["ctc_weight"])


def time_scoring(exp: Path, items, repeats: int, batch_sizes=(8, 16, 32),
                 default_batch: int = 16) -> Dict:
    """CPU time of LP pool scoring vs an encoder-only pass, and vs ``ctc_confidence``.

    Each pass runs as ``al_score`` runs it (``score_batch`` on length-sorted batches; the
    encoder-only pass is ``model.encode``), at each of ``batch_sizes``; the headline figures
    are at ``al_score``'s default (16). Per batch, the passes run back to back in alternating
    order, so that a load drift hits all of them; one torch thread and process CPU time, so
    that other work on the machine counts little. Median and range over the repeats of the
    per-repeat ratio.
    """
    from espnet2.tasks.asr import ASRTask

    from espnet_lp.al.scoring import PoolBatch, Scorer, get_strategy, score_batch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model, _ = ASRTask.build_model_from_file(exp / "config.yaml", model_file(exp), "cpu")
    model.eval()
    scorer = Scorer(model)
    fns = {"lp": lambda b: score_batch(get_strategy("loss_prediction"), scorer, b),
           "encoder": lambda b: model.encode(b.speech, b.speech_lengths),
           "ctc_confidence": lambda b: score_batch(get_strategy("ctc_confidence"), scorer, b)}
    by_size = {}
    try:
        with torch.inference_mode():  # as score_batch runs every strategy
            for size in batch_sizes:
                data = [PoolBatch(*b[:3]) for b in batches(items, size)]
                for fn in fns.values():
                    for b in data[:2]:
                        fn(b)
                by_size[size] = interleaved_cpu_seconds(fns, data, repeats)
    finally:
        torch.set_num_threads(threads)

    def ratio(times, a, b):
        r = times[a] / times[b]
        return {"median": round(float(np.median(r)), 3), "min": round(float(r.min()), 3),
                "max": round(float(r.max()), 3)}

    def summary(times):
        return {"lp_over_encoder": ratio(times, "lp", "encoder"),
                "lp_over_ctc_confidence": ratio(times, "lp", "ctc_confidence"),
                "cpu_seconds_median": {k: round(float(np.median(v)), 3)
                                       for k, v in times.items()}}

    return {**summary(by_size[default_batch]), "batch_size": default_batch,
            "by_batch_size": {str(k): summary(v) for k, v in by_size.items()},
            "utterances": len(items), "repeats": repeats, "torch_threads": 1,
            "clock": "process CPU time", "batches": "sorted by length"}


# ---- statistics ---------------------------------------------------------------------------
def spearman_np(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = rankdata(a), rankdata(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / np.sqrt((ra ** 2).sum() * (rb ** 2).sum()))


def summarize(per_seed: List[Dict[str, np.ndarray]], truth: List[np.ndarray],
              groups: Dict[str, np.ndarray], n_boot: int, rng: np.random.Generator) -> Dict:
    """name -> group -> {mean, sd, ci95, per_seed} (Spearman with the true loss)."""
    out = {}
    boot_index = {g: [rng.choice(np.flatnonzero(m), size=int(m.sum())) for _ in range(n_boot)]
                  for g, m in groups.items()}
    for name in per_seed[0]:
        out[name] = {}
        for g, m in groups.items():
            rhos = [spearman_np(s[name][m], t[m]) for s, t in zip(per_seed, truth)]
            boot = [np.mean([spearman_np(s[name][ix], t[ix]) for s, t in zip(per_seed, truth)])
                    for ix in boot_index[g]]
            out[name][g] = {"mean": round(float(np.mean(rhos)), 4),
                            "sd": round(float(np.std(rhos, ddof=1)) if len(rhos) > 1 else 0.0,
                                        4),
                            "ci95": [round(float(np.percentile(boot, 2.5)), 4),
                                     round(float(np.percentile(boot, 97.5)), 4)],
                            "per_seed": [round(r, 4) for r in rhos]}
    return out


def train_logged(work: Path, seed: int, args: argparse.Namespace) -> Path:
    """Trains (or reuses) one seed's model, saying so first: training takes minutes."""
    print(f"seed {seed}: training", flush=True)
    return train(work, seed, args)


def main(cmd=None) -> None:
    args = get_parser().parse_args(cmd)
    work = args.work_dir
    commit = git_commit()
    prepare_english(work, args.train_utts, args.dev_utts, args.corpus_seed, SUBSETS,
                    extra_train_utts=args.pool_utts)
    if args.train_only:
        for seed in args.seeds:
            print(f"seed {seed}: {train_logged(work, seed, args)}", flush=True)
        return
    token_list = work / "inputs" / "tokens.txt"
    data = work / "data"
    split_items = {"train": load_items([data / "train_clean_100"], token_list),
                   "dev": load_items([data / "dev_clean", data / "dev_other"], token_list),
                   "pool": load_items([data / "train_clean_360"], token_list)}
    cond = conditions(work)
    per_seed_scores: Dict[str, List[Dict[str, np.ndarray]]] = {"tune": [], "report": []}
    per_seed_truth: Dict[str, List[np.ndarray]] = {"tune": [], "report": []}
    masks = {}
    train_seconds, checkpoints = [], []
    for seed in args.seeds:
        exp = train_logged(work, seed, args)
        checkpoints.append(model_file(exp).name)
        train_seconds.append(float((exp / "bench_train_seconds").read_text())
                             if (exp / "bench_train_seconds").exists() else float("nan"))
        feats = extract(work, exp, args, split_items)
        pool = feats["pool"]
        scores = {k: v.numpy() for k, v in pool["scores"].items()}
        for name in VARIANTS:
            scores[name] = fit_variant(name, feats, seed).numpy()
        from espnet_lp.asr.lp_refit import combined
        truth = combined(pool["targets"], feats["ctc_weight"]).numpy()
        tune = np.array([in_tune_half(u) for u in pool["ids"]])
        pool_cond = np.array([cond[u] for u in pool["ids"]])
        for half, m in (("tune", tune), ("report", ~tune)):
            per_seed_scores[half].append({k: v[m] for k, v in scores.items()})
            per_seed_truth[half].append(truth[m])
            masks[half] = {"all": np.ones(int(m.sum()), dtype=bool),
                           "clean": pool_cond[m] == "clean", "other": pool_cond[m] == "other"}
    print("timing LP scoring against an encoder-only pass", flush=True)
    timing = time_scoring(work / "exp" / f"seed{args.seeds[0]}", split_items["pool"],
                          args.repeats)
    rng = np.random.default_rng(0)
    stats = {half: summarize(per_seed_scores[half], per_seed_truth[half], masks[half],
                             args.bootstrap, rng) for half in ("tune", "report")}
    lp_names = ["joint"] + list(VARIANTS)
    best_on_tune = max(lp_names, key=lambda n: stats["tune"][n]["all"]["mean"])
    rep = stats["report"]
    result = {  # the headline is what lp_refit does by default (refit_dev)
        "spearman": {k: rep[DEFAULT]["all"][k] for k in ("mean", "sd", "ci95")},
        "within_condition": {c: {k: rep[DEFAULT][c][k] for k in ("mean", "sd", "ci95")}
                             for c in ("clean", "other")},
        "lp_variant": DEFAULT, "best_variant_on_tune": best_on_tune,
        "baselines": {b: {"spearman": rep[b]["all"],
                          "within_condition": {c: rep[b][c] for c in ("clean", "other")}}
                      for b in BASELINES},
        "variants": {n: {"report": rep[n], "tune": stats["tune"][n]} for n in lp_names},
        "seeds": args.seeds,
        "utterances": {"train": len(split_items["train"]), "dev": len(split_items["dev"]),
                       "pool_tune": int(masks["tune"]["all"].size),
                       "pool_report": int(masks["report"]["all"].size),
                       "report_clean": int(masks["report"]["clean"].sum()),
                       "report_other": int(masks["report"]["other"].sum())},
        "max_epoch": args.max_epoch, "train_opts": args.train_opts,
        "train_seconds": train_seconds, "checkpoints": checkpoints, "commit": commit,
        "timing": timing,
        "goals": {"spearman": ">= 0.85", "within_condition": "above every baseline"},
    }

    def cell(s):
        return f"{s['mean']:.3f} ± {s['sd']:.3f} [{s['ci95'][0]:.2f}, {s['ci95'][1]:.2f}]"

    table = []
    for n in BASELINES + lp_names:
        label = n + (" (default)" if n == DEFAULT else "") + \
            (" (best on tune)" if n == best_on_tune else "")
        table.append([label, cell(rep[n]["all"]), cell(rep[n]["clean"]), cell(rep[n]["other"]),
                      f"{stats['tune'][n]['all']['mean']:.3f}"])
    t = timing["lp_over_encoder"]
    table.append(["LP scoring time / encoder-only pass (median [min, max])",
                  f"{t['median']:.2f} [{t['min']:.2f}, {t['max']:.2f}]", "", "", ""])
    c = timing["lp_over_ctc_confidence"]
    table.append(["LP scoring time / ctc_confidence scoring (median [min, max])",
                  f"{c['median']:.2f} [{c['min']:.2f}, {c['max']:.2f}]", "", "", ""])
    for size, summ in timing["by_batch_size"].items():
        b = summ["lp_over_encoder"]
        table.append([f"LP / encoder-only at batch {size}",
                      f"{b['median']:.2f} [{b['min']:.2f}, {b['max']:.2f}]", "", "", ""])
    notes = ["Cells: Spearman with the true per-utterance loss, mean ± sd over the seeds "
             f"{args.seeds} [95% bootstrap CI]; the report half of the held-out pool "
             "(the tune half chose the variants; dev fitted the refit heads).",
             f"Models: each seed's {', '.join(sorted(set(checkpoints)))} (what the AL loop "
             "scores with: its config's first best_model_criterion)."]
    for group in ("all", "clean", "other"):
        best_base = max(BASELINES, key=lambda b: rep[b][group]["mean"])
        lp, base = rep[DEFAULT][group], rep[best_base][group]
        above = "above" if lp["mean"] > base["mean"] else "NOT above"
        overlap = "overlap" if lp["ci95"][0] <= base["ci95"][1] else "do not overlap"
        notes.append(f"{DEFAULT} vs the best baseline ({best_base}), {group}: "
                     f"{lp['mean']:.3f} vs {base['mean']:.3f} ({above}; CIs {overlap})")
    met = result["spearman"]["mean"] >= 0.85
    notes.append(f"Goal Spearman >= 0.85 overall: {'met' if met else 'missed'} "
                 f"({result['spearman']['mean']:.3f}).")
    verdict = ("met" if t["max"] <= 1.1 else
               "met by the median only" if t["median"] <= 1.1 else "missed")
    c = timing["lp_over_ctc_confidence"]
    notes.append(f"Goal LP scoring <= 1.1x an encoder-only pass: median {t['median']:.2f} "
                 f"over {args.repeats} interleaved repeats (batches of "
                 f"{timing['batch_size']} as al_score runs them, one thread, CPU time), range "
                 f"{t['min']:.2f}-{t['max']:.2f} ({verdict}); against a ctc_confidence "
                 f"scoring pass: {c['median']:.2f} [{c['min']:.2f}, {c['max']:.2f}].")
    name = "lp_quality" + (f"_{args.tag}" if args.tag else "")
    write_results(name, result, table, [
        "score", "report: all", "report: within clean", "report: within other",
        "tune: all"], commit=commit, notes=notes)


if __name__ == "__main__":
    main()

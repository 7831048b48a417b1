#!/usr/bin/env python3
"""Benchmark: how well loss prediction ranks held-out utterances, and what scoring costs.

Trains the tiny LP config on the generated English corpus, then on held-out utterances
(test-clean + test-other) compares the predicted loss with the true per-utterance loss
(Spearman; goal >= 0.8), and times LP pool scoring against an encoder-only forward over the
same pool (goal <= 1.2).

Usage:
    python tools/bench/lp_quality.py                       # ~7 min on 2 CPU cores
    python tools/bench/lp_quality.py --train_utts 600 --work_dir /tmp/lpq \
        --train_opts "--model_conf lp_decoder_conf.features=[hidden,posteriors]" --tag hidden
"""

import argparse
import shlex
import tempfile
import time
from pathlib import Path

import torch
from scipy.stats import spearmanr

from common import ROOT, prepare_english, train_args, write_results


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work_dir", type=Path, default=None,
                        help="Keep corpus and model here (default: a temporary directory)")
    parser.add_argument("--train_utts", type=int, default=1200)
    parser.add_argument("--eval_utts", type=int, default=60, help="Per dev/test subset")
    parser.add_argument("--max_epoch", type=int, default=15)
    parser.add_argument("--batch_size", type=int, default=8, help="Scoring batch size")
    parser.add_argument("--repeats", type=int, default=9, help="Timing repetitions")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", type=Path,
                        default=ROOT / "conf" / "tuning" / "train_lp_tiny.yaml")
    parser.add_argument("--train_opts", default="",
                        help="Extra asr_train options, e.g. "
                             "\"--model_conf lp_decoder_conf.dropout=0.2\"")
    parser.add_argument("--tag", default="tiny", help="Experiment directory name")
    return parser


def load_batches(data_dirs, token_list, batch_size):
    """(utt ids, speech, lengths, text ids, text lengths) batches sorted by duration."""
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
    items.sort(key=lambda it: len(it[1]))
    pad = torch.nn.utils.rnn.pad_sequence
    for i in range(0, len(items), batch_size):
        chunk = items[i:i + batch_size]
        yield ([c[0] for c in chunk], pad([c[1] for c in chunk], batch_first=True),
               torch.tensor([len(c[1]) for c in chunk]),
               pad([c[2] for c in chunk], batch_first=True, padding_value=-1),
               torch.tensor([len(c[2]) for c in chunk]))


def timed_pair(fn_a, fn_b, batches, repeats):
    """Best-of-``repeats`` wall time of ``fn_a`` and ``fn_b`` over all batches, after a
    warm-up pass, alternating the two so that load drifts affect both alike. The minimum is
    the least noisy estimate of the cost of deterministic work (what ``timeit`` reports)."""
    times_a, times_b = [], []
    for fn in (fn_a, fn_b):
        for b in batches[:2]:
            fn(b)
    for _ in range(repeats):
        for fn, times in ((fn_a, times_a), (fn_b, times_b)):
            start = time.perf_counter()
            for b in batches:
                fn(b)
            times.append(time.perf_counter() - start)
    return min(times_a), min(times_b)


def main() -> None:
    args = get_parser().parse_args()
    torch.manual_seed(args.seed)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="lp_quality."))
    subsets = ["train-clean-100", "dev-clean", "test-clean", "test-other"]
    prepare_english(work, args.train_utts, args.eval_utts, args.seed, subsets)

    from espnet_lp.bin.asr_train import main as train_main
    from espnet2.tasks.asr import ASRTask

    exp = work / "exp" / args.tag
    start = time.perf_counter()
    train_main(train_args(work, exp, args.config) + ["--max_epoch", str(args.max_epoch)]
               + shlex.split(args.train_opts))
    train_seconds = time.perf_counter() - start
    model, _ = ASRTask.build_model_from_file(exp / "config.yaml", exp / "valid.acc.best.pth",
                                             "cpu")
    model.eval()
    batches = list(load_batches([work / "data" / "test_clean", work / "data" / "test_other"],
                                work / "inputs" / "token_list", args.batch_size))
    true, pred, pred_ctc, pred_att, true_ctc, true_att = [], [], [], [], [], []
    w = model.ctc_weight
    for _, x, xl, y, yl in batches:
        t = model.utterance_losses(x, xl, y, yl)
        p = model.score_pool(x, xl)
        true += (w * t["ctc"] + (1 - w) * t["att"]).tolist()
        true_ctc += t["ctc"].tolist()
        true_att += t["att"].tolist()
        pred += p["lp_score"].tolist()
        pred_ctc += p["lp_ctc"].tolist()
        pred_att += p["lp_att"].tolist()

    with torch.no_grad():
        t_lp, t_enc = timed_pair(lambda b: model.score_pool(b[1], b[2]),
                                 lambda b: model.encode(b[1], b[2]), batches, args.repeats)
    rho = spearmanr(pred, true).statistic
    result = {
        "spearman": round(float(rho), 4),
        "spearman_ctc_head": round(float(spearmanr(pred_ctc, true_ctc).statistic), 4),
        "spearman_att_head": round(float(spearmanr(pred_att, true_att).statistic), 4),
        "lp_over_encoder_time": round(t_lp / t_enc, 3),
        "lp_scoring_seconds": round(t_lp, 3),
        "encoder_forward_seconds": round(t_enc, 3),
        "heldout_utterances": len(true),
        "train_utterances": args.train_utts,
        "train_opts": args.train_opts,
        "max_epoch": args.max_epoch,
        "train_seconds": round(train_seconds, 1),
        "goals": {"spearman": ">= 0.8", "lp_over_encoder_time": "<= 1.2"},
    }
    table = [
        ["Spearman(predicted, true loss), combined", result["spearman"], ">= 0.8"],
        ["Spearman, CTC head vs CTC loss", result["spearman_ctc_head"], ""],
        ["Spearman, attention head vs attention loss", result["spearman_att_head"], ""],
        ["LP pool scoring / encoder-only forward (time)", result["lp_over_encoder_time"],
         "<= 1.2"],
        ["held-out utterances (test-clean + test-other)", result["heldout_utterances"], ""],
        ["training: utterances / epochs / seconds",
         f"{args.train_utts} / {args.max_epoch} / {result['train_seconds']}", ""],
    ]
    write_results("lp_quality", result, table, ["measure", "value", "goal"])


if __name__ == "__main__":
    main()

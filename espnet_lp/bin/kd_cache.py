#!/usr/bin/env python3
"""Cache a teacher's top-k CTC posteriors per utterance, for ``kd_conf.teacher.cache_dir``.

Sharded like pool scoring: run one job per ``--key_file`` (e.g. ``split_scps``-style key
lists) with the same ``--output_dir``; every job writes ``<output_dir>/data/<utt>.npz`` and
the same ``meta.json``. A finished utterance is skipped when the job is rerun.

Usage:
    python -m espnet_lp.bin.kd_cache --asr_train_config exp/teacher/config.yaml \
        --asr_model_file exp/teacher/valid.acc.best.pth \
        --data_path_and_name_and_type data/train/wav.scp,speech,sound \
        --output_dir exp/teacher_cache --topk 8 --temperature 1.0
    # teacher at twice the student's frame rate (subsampling 2 vs 4):
    python -m espnet_lp.bin.kd_cache ... --pool 2
"""

import argparse
import json
import logging
from pathlib import Path
from typing import Optional, Sequence

import torch

from espnet_lp.asr.kd import pool_posteriors
from espnet_lp.asr.teacher import CACHE_FORMAT, OnlineTeacher, save_cache_entry
from espnet_lp.utils.cli import parse, run_cli, str_or_none
from espnet_lp.utils.fileio import atomic_write_text

logger = logging.getLogger(__name__)


def get_parser() -> argparse.ArgumentParser:
    """Build the argument parser."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log_level", default="INFO",
                        choices=("ERROR", "WARNING", "INFO", "DEBUG"))
    g = parser.add_argument_group("teacher")
    g.add_argument("--asr_train_config", type=str_or_none, default=None)
    g.add_argument("--asr_model_file", type=str_or_none, default=None)
    g.add_argument("--zoo_zip", type=str_or_none, default=None,
                   help="espnet_model_zoo zip (or tag) instead of config + model file")
    g = parser.add_argument_group("data")
    g.add_argument("--data_path_and_name_and_type", type=str, action="append", required=True,
                   help="As for ESPnet's asr_inference, e.g. data/train/wav.scp,speech,sound")
    g.add_argument("--key_file", type=str_or_none, default=None, help="Shard: ids to do")
    g.add_argument("--batch_size", type=int, default=4)
    g.add_argument("--ngpu", type=int, default=0)
    g = parser.add_argument_group("cache")
    g.add_argument("--output_dir", type=Path, required=True)
    g.add_argument("--topk", type=int, default=8)
    g.add_argument("--temperature", type=float, default=1.0)
    g.add_argument("--pool", type=int, default=1,
                   help="Average this many teacher frames per stored frame (student frame "
                        "rate / teacher frame rate)")
    return parser


def build_cache(args) -> None:
    """Run the teacher over the data and store top-k log-posteriors per utterance."""
    from espnet2.tasks.asr import ASRTask

    teacher = OnlineTeacher(args.asr_train_config, args.asr_model_file, args.zoo_zip)
    device = "cuda" if args.ngpu > 0 else "cpu"
    (args.output_dir / "data").mkdir(parents=True, exist_ok=True)
    triples = [tuple(x.split(",")) for x in args.data_path_and_name_and_type]
    loader = ASRTask.build_streaming_iterator(
        triples, preprocess_fn=None, collate_fn=ASRTask.build_collate_fn(args, False),
        key_file=args.key_file, batch_size=args.batch_size, dtype="float32", num_workers=0,
        inference=True)
    done = 0
    for keys, batch in loader:
        if all((args.output_dir / "data" / f"{k}.npz").is_file() for k in keys):
            continue
        speech = batch["speech"].to(device)
        lens = batch["speech_lengths"].to(device)
        with torch.no_grad():
            post = teacher.posteriors(speech, lens, keys, args.temperature)
            if args.pool > 1:
                post = pool_posteriors(post, args.pool)
        for b, key in enumerate(keys):
            save_cache_entry(args.output_dir, key, post.logp[b, : post.lens[b]], args.topk,
                             speech[b, : lens[b]])
            done += 1
    meta = {"format": CACHE_FORMAT, "token_list": teacher.token_list, "topk": args.topk,
            "temperature": args.temperature, "subsampling": teacher.subsampling * args.pool,
            "teacher_fingerprint": teacher.fingerprint}
    atomic_write_text(args.output_dir / "meta.json", json.dumps(meta, indent=1) + "\n")
    logger.info("%s: cached %d utterances (top-%d)", args.output_dir, done, args.topk)


def main(cmd: Optional[Sequence[str]] = None) -> None:
    """Build (or complete) the cache."""
    args = parse(get_parser(), cmd)
    run_cli(lambda: build_cache(args))


if __name__ == "__main__":
    main()

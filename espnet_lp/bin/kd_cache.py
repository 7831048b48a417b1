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
    # the teacher named by a teacher spec (the recipes' exp/kd/teacher_model.yaml):
    python -m espnet_lp.bin.kd_cache --teacher_spec exp/kd/teacher_model.yaml ...
    # teacher at twice the student's frame rate (subsampling 2 vs 4):
    python -m espnet_lp.bin.kd_cache ... --pool 2

The cache's ``meta.json`` (teacher fingerprint, token list, k, temperature, frame rate) is
written before the first entry; adding to a cache made by another teacher or with other
settings is refused, so a cache never mixes two teachers.
"""

import argparse
import json
import logging
from pathlib import Path
from typing import Optional, Sequence

import torch

from espnet_lp.asr.kd import pool_posteriors
from espnet_lp.asr.teacher import (
    CACHE_FORMAT,
    OnlineTeacher,
    TeacherError,
    read_teacher_spec,
    save_cache_entry,
)
from espnet_lp.utils.cli import new_parser, parse, run_cli, str_or_none
from espnet_lp.utils.fileio import atomic_write_text

logger = logging.getLogger(__name__)


def get_parser() -> argparse.ArgumentParser:
    """Build the argument parser."""
    parser = new_parser(__doc__)
    g = parser.add_argument_group("teacher")
    g.add_argument("--asr_train_config", type=str_or_none, default=None)
    g.add_argument("--asr_model_file", type=str_or_none, default=None)
    g.add_argument("--zoo_zip", type=str_or_none, default=None,
                   help="espnet_model_zoo zip (or tag) instead of config + model file")
    g.add_argument("--teacher_spec", type=str_or_none, default=None,
                   help="Teacher spec yaml ({asr_train_config, asr_model_file} or {zoo_zip}) "
                        "instead of the options above")
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

    source = dict(asr_train_config=args.asr_train_config, asr_model_file=args.asr_model_file,
                  zoo_zip=args.zoo_zip)
    if args.teacher_spec is not None:
        if any(v is not None for v in source.values()):
            raise TeacherError("give --teacher_spec or the teacher's files, not both")
        spec = read_teacher_spec(args.teacher_spec)
        if "cache_dir" in spec:
            raise TeacherError(f"{args.teacher_spec}: names a cache; kd_cache needs a model")
        source = {k: spec.get(k) for k in source}
    teacher = OnlineTeacher(**source)
    device = "cuda" if args.ngpu > 0 else "cpu"
    meta = {"format": CACHE_FORMAT, "token_list": teacher.token_list, "topk": args.topk,
            "temperature": args.temperature, "subsampling": teacher.subsampling * args.pool,
            "teacher_fingerprint": teacher.fingerprint}
    _claim_cache(args.output_dir, meta)
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
    logger.info("%s: cached %d utterances (top-%d)", args.output_dir, done, args.topk)


def _claim_cache(cache_dir: Path, meta: dict) -> None:
    """Write ``meta.json`` of a new cache; check that an existing one describes the same."""
    path = cache_dir / "meta.json"
    if path.is_file():
        old = json.loads(path.read_text())
        differ = sorted(k for k in meta if old.get(k) != meta[k])
        if differ:
            raise TeacherError(f"{path}: the cache was built with other {', '.join(differ)}; "
                               "remove it or choose another --output_dir")
    else:
        if (cache_dir / "data").is_dir() and any((cache_dir / "data").iterdir()):
            raise TeacherError(f"{cache_dir}: entries without meta.json (not a kd_cache "
                               "output?); remove it or choose another --output_dir")
        cache_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(meta, indent=1) + "\n")
    (cache_dir / "data").mkdir(exist_ok=True)


def main(cmd: Optional[Sequence[str]] = None) -> None:
    """Build (or complete) the cache."""
    args = parse(get_parser(), cmd)
    run_cli(lambda: build_cache(args))


if __name__ == "__main__":
    main()

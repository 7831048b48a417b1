#!/usr/bin/env python3
r"""Cache a teacher's top-k CTC posteriors per utterance, for ``kd_conf.teacher.cache_dir``.

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
written before the first entry, once every input has been checked; adding to a cache made by
another teacher or with other settings is refused, so a cache never mixes two teachers. A
rerun computes again the entries whose audio changed since they were cached.
"""

import argparse
import json
import logging
import zipfile
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from espnet_lp.asr.kd import pool_posteriors
from espnet_lp.asr.teacher import (
    CACHE_FORMAT,
    OnlineTeacher,
    TeacherError,
    audio_fingerprint,
    read_teacher_spec,
    save_cache_entry,
)
from espnet_lp.utils.cli import (
    check_data_args,
    check_model_files,
    new_parser,
    parse,
    run_cli,
    str_or_none,
)
from espnet_lp.utils.fileio import atomic_write_text, path_problem, remove_stale_in
from espnet_lp.utils.outputs import output_lock

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


def _check_args(args) -> None:
    for name, low in (("topk", 1), ("batch_size", 1), ("pool", 1), ("ngpu", 0)):
        if getattr(args, name) < low:
            raise TeacherError(f"--{name} must be >= {low}, got {getattr(args, name)}")
    if not args.temperature > 0 or args.temperature == float("inf"):
        raise TeacherError(f"--temperature must be a positive number, got {args.temperature}")
    if args.ngpu > 0 and not torch.cuda.is_available():
        raise TeacherError(f"--ngpu {args.ngpu}: no CUDA device here (use --ngpu 0)")
    problem = path_problem(args.output_dir, "dir")
    if problem not in (None, "not found"):
        raise TeacherError(f"{args.output_dir}: output directory {problem}")


def _teacher_source(args) -> dict:
    source = dict(asr_train_config=args.asr_train_config, asr_model_file=args.asr_model_file,
                  zoo_zip=args.zoo_zip)
    if args.teacher_spec is not None:
        if any(v is not None for v in source.values()):
            raise TeacherError("give --teacher_spec or the teacher's files, not both")
        spec = read_teacher_spec(args.teacher_spec)
        if "cache_dir" in spec:
            raise TeacherError(f"{args.teacher_spec}: names a cache; kd_cache needs a model")
        source = {k: spec.get(k) for k in source}
    if source["zoo_zip"] is None:
        check_model_files(source["asr_train_config"], source["asr_model_file"])
    return source


def build_cache(args) -> None:
    """Run the teacher over the data and store top-k log-posteriors per utterance.

    Everything is checked before the cache is claimed (``meta.json``), so a failed run leaves
    nothing that would refuse the corrected rerun. An entry whose audio changed since it was
    cached is computed again.
    """
    from espnet2.tasks.asr import ASRTask

    _check_args(args)
    source = _teacher_source(args)
    check_data_args(args.data_path_and_name_and_type, args.key_file)
    teacher = OnlineTeacher(**source)
    if args.topk > len(teacher.token_list):
        raise TeacherError(f"--topk {args.topk} exceeds the teacher's vocabulary "
                           f"({len(teacher.token_list)} tokens)")
    device = "cuda" if args.ngpu > 0 else "cpu"
    meta = {"format": CACHE_FORMAT, "token_list": teacher.token_list, "topk": args.topk,
            "temperature": args.temperature, "subsampling": teacher.subsampling * args.pool,
            "teacher_fingerprint": teacher.fingerprint}
    _claim_cache(args.output_dir, meta)
    remove_stale_in(args.output_dir / "data")
    triples = [tuple(x.split(",")) for x in args.data_path_and_name_and_type]
    loader = ASRTask.build_streaming_iterator(
        triples, preprocess_fn=None, collate_fn=ASRTask.build_collate_fn(args, False),
        key_file=args.key_file, batch_size=args.batch_size, dtype="float32", num_workers=0,
        inference=True)
    done = 0
    for keys, batch in _batches(loader, triples[0][0]):
        speech = batch["speech"].to(device)
        lens = batch["speech_lengths"].to(device)
        todo = [b for b, k in enumerate(keys)
                if not _is_cached(args.output_dir, k, speech[b, : lens[b]])]
        if not todo:
            continue
        with torch.no_grad():
            post = teacher.posteriors(speech, lens, keys, args.temperature)
            if args.pool > 1:
                post = pool_posteriors(post, args.pool)
        for b in todo:
            save_cache_entry(args.output_dir, keys[b], post.logp[b, : post.lens[b]], args.topk,
                             speech[b, : lens[b]])
            done += 1
    logger.info("%s: cached %d utterances (top-%d)", args.output_dir, done, args.topk)


def _batches(loader, data_file: str):
    """The loader's batches; an audio file that fails to load is named (its utterance is
    the one after the last batch that loaded)."""
    import soundfile

    last = None
    iterator = iter(loader)
    while True:
        try:
            keys, batch = next(iterator)
        except StopIteration:
            return
        except (soundfile.LibsndfileError, RuntimeError, OSError, ValueError) as e:
            after = f"after utterance {last}" if last else "at its first utterance"
            raise TeacherError(f"{data_file}: cannot read audio {after}: "
                               f"{' '.join(str(e).split())}") from None
        last = keys[-1]
        yield keys, batch


def _is_cached(cache_dir: Path, utt_id: str, speech: torch.Tensor) -> bool:
    """Whether a valid entry of this very audio exists (a changed or unreadable one is not)."""
    path = cache_dir / "data" / f"{utt_id}.npz"
    if not path.is_file():
        return False
    try:
        with np.load(path) as z:
            stored = str(z["audio"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        logger.warning("%s: unreadable entry, computed again", path)
        return False
    if stored != audio_fingerprint(speech):
        logger.warning("%s: the audio of %s changed since it was cached; computed again",
                       path, utt_id)
        return False
    return True


def _claim_cache(cache_dir: Path, meta: dict) -> None:
    """Write ``meta.json`` of a new cache; check that an existing one describes the same.

    A cache without entries (e.g. claimed by a run that failed early) is claimed anew.
    Parallel jobs claim one after the other (a short lock).
    """
    path = cache_dir / "meta.json"
    data = cache_dir / "data"
    with output_lock(path, wait=60.0):
        has_entries = data.is_dir() and any(p.suffix == ".npz" for p in data.iterdir())
        if path.is_file() and has_entries:
            try:
                old = json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                raise TeacherError(f"{path}: not valid JSON; remove the cache or choose another "
                                   "--output_dir") from None
            differ = sorted(k for k in meta if old.get(k) != meta[k])
            if differ:
                raise TeacherError(f"{path}: the cache was built with other "
                                   f"{', '.join(differ)}; remove it or choose another "
                                   "--output_dir")
        elif has_entries:
            raise TeacherError(f"{cache_dir}: entries without meta.json (not a kd_cache "
                               "output?); remove it or choose another --output_dir")
        else:
            atomic_write_text(path, json.dumps(meta, indent=1) + "\n")
        data.mkdir(exist_ok=True)


def main(cmd: Optional[Sequence[str]] = None) -> None:
    """Build (or complete) the cache."""
    args = parse(get_parser(), cmd)
    run_cli(lambda: build_cache(args))


if __name__ == "__main__":
    main()

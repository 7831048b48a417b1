"""Generate the synthetic corpora: plan, render audio in parallel, write layout and metadata.

Each corpus is built in a temporary directory and moved into place when complete, with a
record of its config (and of its files' count and size) in ``<out>/synth_meta/``; asking
again for the same corpus is a no-op, unless it changed since.
"""

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import soundfile

from espnet_lp.data.errors import DataPrepError
from espnet_lp.synth import layouts
from espnet_lp.synth.conditions import apply_condition, to_int16
from espnet_lp.synth.config import SynthConfig
from espnet_lp.synth.plan import LANG_CODE, PlannedUtt, plan_language
from espnet_lp.synth.text import english_sentences, mandarin_sentences
from espnet_lp.synth.voice import synthesize
from espnet_lp.utils.fileio import (
    Pathlike,
    atomic_write_text,
    path_problem,
    remove_stale,
    temp_sibling,
)
from espnet_lp.utils.outputs import commit, output_lock
from espnet_lp.utils.workers import parallel_map

logger = logging.getLogger(__name__)

TOP_DIRS = {"en": ("LibriSpeech",), "zh": ("data_aishell", "resource_aishell")}
CORPUS_NAME = {"en": "librispeech", "zh": "aishell"}


def render(item: PlannedUtt, path: str, seed: int, sample_rate: int) -> int:
    """Synthesize, degrade and write one utterance; returns its number of samples."""
    language = item.speaker.language
    # A generator per utterance (not per worker): output is independent of num_jobs.
    rng = np.random.default_rng([seed, LANG_CODE[language], 7, item.index])
    text = " ".join(item.words) if language == "en" else "".join(item.words)
    pcm = to_int16(apply_condition(
        synthesize(text, item.speaker, item.condition.rate_factor, sample_rate),
        item.condition, rng, sample_rate))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fmt = "FLAC" if path.endswith(".flac") else "WAV"
    soundfile.write(path, pcm, sample_rate, format=fmt, subtype="PCM_16")
    return len(pcm)


def _sentences(cfg: SynthConfig, language: str) -> List[Tuple[str, ...]]:
    if language == "en":
        return [tuple(s.split()) for s in english_sentences(max_vocab=cfg.en_vocab)]
    return mandarin_sentences(
        num_chars=cfg.zh_chars, min_chars=cfg.zh_min_chars, max_chars=cfg.zh_max_chars,
        homophone_free=cfg.zh_homophone_free, pack_clauses=cfg.zh_pack_clauses)


def _render_all(plan: List[PlannedUtt], root: Path, cfg: SynthConfig, language: str,
                num_jobs: int) -> Dict[str, int]:
    paths = [str(layouts.audio_path(root, item, language)) for item in plan]
    frames = parallel_map(render, plan, paths, [cfg.seed] * len(plan),
                          [cfg.sample_rate] * len(plan), num_jobs=num_jobs, chunksize=8)
    return {item.utt_id: n for item, n in zip(plan, frames)}


def contents(targets: List[Path]) -> Dict[str, List[int]]:
    """Number of files and bytes under each top directory: the record a rerun compares with,
    to notice a corpus changed (files removed, truncated, added) since it was generated."""
    out = {}
    for target in targets:
        sizes = [p.stat().st_size for p in target.rglob("*") if p.is_file()]
        out[target.name] = [len(sizes), sum(sizes)]
    return out


#: Settings added later, with the value that gives what was generated before they existed.
_ADDED_SETTINGS = {"zh_homophone_free": False, "zh_pack_clauses": False, "zh_min_chars": 4,
                   "zh_max_chars": 16}


def _shaping(config, name: str):
    """The settings that shape corpus ``name``: the other language's text options do not (an
    English corpus stays valid when a Mandarin option is added or changed); a record written
    before a setting existed holds the value that reproduces it."""
    if not isinstance(config, dict):
        return config
    other = "zh_" if name == CORPUS_NAME["en"] else "en_"
    return {k: v for k, v in {**_ADDED_SETTINGS, **config}.items() if not k.startswith(other)}


def _already_made(record: Path, targets: List[Path], wanted: Dict, overwrite: bool) -> bool:
    """Whether the corpus exists as asked; raises if something else is in the way."""
    out_dir, name = record.parent.parent, wanted["corpus"]
    if record.is_file() and all(t.is_dir() for t in targets):
        try:
            old = json.loads(record.read_text(encoding="utf-8"))
        except ValueError:
            old = {}
        if old.get("corpus") == name and (_shaping(old.get("config"), name)
                                          == _shaping(wanted["config"], name)):
            found = contents(targets)
            if "contents" not in old:  # recorded by an earlier version: record them now
                atomic_write_text(record, json.dumps({**old, "contents": found}, indent=2,
                                                     sort_keys=True) + "\n")
                old["contents"] = found
            if found == old.get("contents"):
                logger.info("%s: already generated with this config", name)
                return True
            if not overwrite:
                raise DataPrepError(f"{out_dir}: the {name} corpus changed since it was "
                                    f"generated (files, bytes: {found}, {record} says "
                                    f"{old.get('contents')}); use --overwrite to regenerate it")
        elif not overwrite:
            raise DataPrepError(f"{out_dir}: a {name} corpus with another config exists "
                                f"(see {record}); use --overwrite or another --out")
    elif any(os.path.lexists(t) for t in targets) and not overwrite:
        raise DataPrepError(f"{out_dir}: {[str(t) for t in targets]} exist but were not made "
                            "by this generator; refusing to replace them (use --overwrite)")
    return False


def make_language(cfg: SynthConfig, language: str, out_dir: Path, num_jobs: int = 1,
                  overwrite: bool = False) -> None:
    """Build one corpus under ``out_dir`` (skipped when already built with the same config).

    The corpus trees and their ``synth_meta`` files are built in a staging directory and moved
    into place together (:func:`espnet_lp.utils.fileio.commit`): a killed run leaves the
    previous corpus, or the new one once the next run has finished the move; a second run on
    the same ``out_dir`` at the same time is refused.
    """
    name = CORPUS_NAME[language]
    meta_dir = out_dir / "synth_meta"
    record = meta_dir / f"{name}.json"
    meta_files = [record, meta_dir / f"{name}_utterances.tsv",
                  meta_dir / f"{name}_extra_speakers.txt"]
    targets = [out_dir / d for d in TOP_DIRS[language]]
    wanted = {"corpus": name, "config": cfg.to_dict()}
    with output_lock(targets + meta_files):
        stage_name = out_dir / f"synth_{name}"
        remove_stale(stage_name, locked=True)  # we hold every lock a stage belongs to
        shutil.rmtree(out_dir / f".synth_{name}.tmp", ignore_errors=True)  # older versions
        if _already_made(record, targets, wanted, overwrite):
            return
        plan = plan_language(cfg, language, _sentences(cfg, language))
        stage = temp_sibling(stage_name)
        stage.mkdir()
        try:
            logger.info("%s: rendering %d utterances with %d job(s)", name, len(plan), num_jobs)
            frames = _render_all(plan, stage, cfg, language, num_jobs)
            if language == "en":
                layouts.write_librispeech_metadata(stage, plan, frames, cfg.sample_rate)
            else:
                layouts.write_aishell_metadata(stage, plan)
            staged_meta = stage / "synth_meta"
            _write_meta(staged_meta, name, plan, frames, cfg.sample_rate)
            record_text = json.dumps({**wanted, "contents": contents(
                [stage / t.name for t in targets])}, indent=2, sort_keys=True) + "\n"
            (staged_meta / record.name).write_text(record_text, encoding="utf-8")
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        new_meta = [f for f in meta_files if (staged_meta / f.name).exists()]
        moves = [(stage / t.name, t) for t in targets] + [(staged_meta / f.name, f)
                                                          for f in new_meta]
        dropped = [f for f in meta_files if f not in new_meta and os.path.lexists(f)]
        meta_dir.mkdir(exist_ok=True)
        commit(moves, cleanup=[stage] + dropped)
    hours = sum(frames.values()) / cfg.sample_rate / 3600
    logger.info("%s: %d utterances, %.2f hours in %s", name, len(plan), hours, out_dir)


def _write_meta(meta_dir: Path, name: str, plan: List[PlannedUtt], frames: Dict[str, int],
                sample_rate: int) -> None:
    """Per-utterance conditions (for analysing what a strategy selects); not part of the
    corpus layouts, which stay exactly like the real ones."""
    lines = ["utt_id\tsubset\tspeaker\tvoice\tpitch\trate\tduration\tcondition\textra\n"]
    for item in sorted(plan, key=lambda i: i.utt_id):
        sp = item.speaker
        lines.append(f"{item.utt_id}\t{item.subset}\t{item.speaker_id}\t{sp.voice}\t{sp.pitch}\t"
                     f"{sp.rate}\t{frames[item.utt_id] / sample_rate:.3f}\t"
                     f"{item.condition.describe()}\t{int(item.extra)}\n")
    atomic_write_text(meta_dir / f"{name}_utterances.tsv", "".join(lines))
    extra = sorted({item.speaker_id for item in plan if item.extra})
    if extra:  # speakers of the separate labeled set (e.g. for a KD teacher)
        atomic_write_text(meta_dir / f"{name}_extra_speakers.txt", "".join(f"{s}\n" for s in extra))


def make_corpus(cfg: SynthConfig, out_dir: Pathlike, num_jobs: int = 1,
                overwrite: bool = False) -> None:
    """Build every requested corpus under ``out_dir``.

    Args:
        cfg: What to generate.
        out_dir: Receives ``LibriSpeech/``, ``data_aishell/``, ``resource_aishell/`` and
            ``synth_meta/``.
        num_jobs: Worker processes for synthesis (output does not depend on it).
        overwrite: Replace corpora generated earlier with another config.
    """
    out_dir = Path(out_dir)
    problem = path_problem(out_dir, "dir")
    if problem not in (None, "not found"):
        raise DataPrepError(f"{out_dir}: output directory {problem}")
    if num_jobs < 1:
        raise DataPrepError(f"num_jobs must be >= 1, got {num_jobs}")
    out_dir.mkdir(parents=True, exist_ok=True)
    for language in cfg.languages:
        make_language(cfg, language, out_dir, num_jobs, overwrite)

"""Generate the synthetic corpora: plan, render audio in parallel, write layout and metadata.

Each corpus is built in a temporary directory and moved into place when complete, with a
record of its config in ``<out>/synth_meta/``; asking again for the same corpus is a no-op.
"""

import json
import logging
import shutil
from concurrent.futures import ProcessPoolExecutor
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
from espnet_lp.utils.fileio import Pathlike, atomic_write_text

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
    return mandarin_sentences(num_chars=cfg.zh_chars)


def _render_all(plan: List[PlannedUtt], tmp: Path, cfg: SynthConfig, language: str,
                num_jobs: int) -> Dict[str, int]:
    paths = [str(layouts.audio_path(tmp, item, language)) for item in plan]
    args = (plan, paths, [cfg.seed] * len(plan), [cfg.sample_rate] * len(plan))
    if num_jobs > 1:
        with ProcessPoolExecutor(num_jobs) as ex:
            frames = list(ex.map(render, *args, chunksize=8))
    else:
        frames = list(map(render, *args))
    return {item.utt_id: n for item, n in zip(plan, frames)}


def make_language(cfg: SynthConfig, language: str, out_dir: Path, num_jobs: int = 1,
                  overwrite: bool = False) -> None:
    """Build one corpus under ``out_dir`` (skipped when already built with the same config)."""
    name = CORPUS_NAME[language]
    record = out_dir / "synth_meta" / f"{name}.json"
    wanted = {"corpus": name, "config": cfg.to_dict()}
    targets = [out_dir / d for d in TOP_DIRS[language]]
    if record.is_file() and all(t.is_dir() for t in targets):
        if json.loads(record.read_text()) == wanted:
            logger.info("%s: already generated with this config", name)
            return
        if not overwrite:
            raise DataPrepError(f"{out_dir}: a {name} corpus with another config exists "
                                f"(see {record}); use --overwrite or another --out")
    elif any(t.exists() for t in targets) and not overwrite:
        raise DataPrepError(f"{out_dir}: {[str(t) for t in targets]} exist but were not made "
                            "by this generator; refusing to replace them (use --overwrite)")
    plan = plan_language(cfg, language, _sentences(cfg, language))
    tmp = out_dir / f".synth_{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    logger.info("%s: rendering %d utterances with %d job(s)", name, len(plan), num_jobs)
    frames = _render_all(plan, tmp, cfg, language, num_jobs)
    if language == "en":
        layouts.write_librispeech_metadata(tmp, plan, frames, cfg.sample_rate)
    else:
        layouts.write_aishell_metadata(tmp, plan)
    record.unlink(missing_ok=True)  # a half-replaced corpus must never look finished
    for target in targets:
        shutil.rmtree(target, ignore_errors=True)
        (tmp / target.name).replace(target)
    shutil.rmtree(tmp)
    _write_meta(out_dir / "synth_meta", name, plan, frames, cfg.sample_rate)
    atomic_write_text(record, json.dumps(wanted, indent=2, sort_keys=True) + "\n")
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
    out_dir.mkdir(parents=True, exist_ok=True)
    for language in cfg.languages:
        make_language(cfg, language, out_dir, num_jobs, overwrite)

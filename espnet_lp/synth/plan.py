"""Decide, before any audio is made, every utterance: subset, speaker, id, text, condition."""

import logging
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np

from espnet_lp.data.errors import DataPrepError
from espnet_lp.synth.conditions import Condition, draw_condition
from espnet_lp.synth.config import SynthConfig
from espnet_lp.synth.voice import Speaker, draw_speakers

logger = logging.getLogger(__name__)

LANG_CODE = {"en": 1, "zh": 2}


@dataclass(frozen=True)
class SubsetSpec:
    """One subset to generate: its name, size, share of "other" speech and text pool."""

    name: str
    num_utts: int
    other_fraction: float
    text_pool: str  # "train", "dev" or "test": sentences never cross pools
    extra: bool = False


@dataclass(frozen=True)
class PlannedUtt:
    """Everything needed to render and file one utterance."""

    index: int
    subset: str
    speaker_id: str  # LibriSpeech reader id or AISHELL "S0002"
    chapter_id: str  # LibriSpeech chapter id ("" for AISHELL)
    utt_id: str
    words: Tuple[str, ...]
    speaker: Speaker
    condition: Condition
    extra: bool = False


def subset_specs(cfg: SynthConfig, language: str) -> List[SubsetSpec]:
    """The subsets of one language, in generation order."""
    f = cfg.other_fraction
    if language == "en":
        specs = [
            SubsetSpec("train-clean-100", cfg.train_utts, f, "train"),
            SubsetSpec("dev-clean", cfg.dev_utts, 0.0, "dev"),
            SubsetSpec("dev-other", cfg.dev_utts, 1.0, "dev"),
            SubsetSpec("test-clean", cfg.test_utts, 0.0, "test"),
            SubsetSpec("test-other", cfg.test_utts, 1.0, "test"),
        ]
        if cfg.extra_train_utts:
            specs.append(SubsetSpec("train-clean-360", cfg.extra_train_utts, f, "train", True))
        return specs
    specs = [
        SubsetSpec("train", cfg.train_utts, f, "train"),
        SubsetSpec("dev", cfg.dev_utts, f, "dev"),
        SubsetSpec("test", cfg.test_utts, f, "test"),
    ]
    if cfg.extra_train_utts:
        specs.append(SubsetSpec("train", cfg.extra_train_utts, f, "train", True))
    return specs


def split_sentences(
    sentences: Sequence[Tuple[str, ...]], specs: List[SubsetSpec], rng: np.random.Generator
) -> Dict[str, List[Tuple[str, ...]]]:
    """Disjoint sentence pools for test, dev and train (train reuses sentences if it must)."""
    need = {pool: sum(s.num_utts for s in specs if s.text_pool == pool)
            for pool in ("test", "dev", "train")}
    order = [sentences[i] for i in rng.permutation(len(sentences))]
    if need["test"] + need["dev"] + 1 > len(order):
        raise DataPrepError(
            f"only {len(order)} distinct sentences: too few for {need['test']} test and "
            f"{need['dev']} dev utterances plus a training pool")
    pools = {"test": order[: need["test"]],
             "dev": order[need["test"]: need["test"] + need["dev"]],
             "train": order[need["test"] + need["dev"]:]}
    if need["train"] > len(pools["train"]):
        logger.warning("%d training utterances but %d distinct training sentences: "
                       "some sentences are read by several speakers",
                       need["train"], len(pools["train"]))
    return pools


def _speaker_ids(language: str, n: int, rng: np.random.Generator) -> List[str]:
    if language == "en":  # LibriVox-style reader ids, unique across subsets
        return [str(x) for x in rng.choice(np.arange(10, 10000), size=n, replace=False)]
    return [f"S{x:04d}" for x in range(2, 2 + n)]  # AISHELL numbers speakers from S0002


def plan_language(
    cfg: SynthConfig, language: str, sentences: Sequence[Tuple[str, ...]]
) -> List[PlannedUtt]:
    """Plan all utterances of one language."""
    rng = np.random.default_rng([cfg.seed, LANG_CODE[language]])
    specs = subset_specs(cfg, language)
    pools = split_sentences(sentences, specs, rng)
    cursor = {pool: 0 for pool in pools}
    per_subset = [-(-s.num_utts // cfg.utts_per_speaker) for s in specs]
    spk_ids = iter(_speaker_ids(language, sum(per_subset), rng))
    chapters = iter(rng.choice(np.arange(1000, 300000), size=2 * sum(per_subset), replace=False))
    plan: List[PlannedUtt] = []
    for spec, n_spk in zip(specs, per_subset):
        speakers = draw_speakers(rng, language, n_spk)
        other = np.zeros(spec.num_utts, dtype=bool)
        other[rng.permutation(spec.num_utts)[: int(round(spec.other_fraction * spec.num_utts))]] = 1
        for k in range(spec.num_utts):
            s = k // cfg.utts_per_speaker
            if k % cfg.utts_per_speaker == 0:
                spk_id = next(spk_ids)
                chapter_ids = [str(next(chapters)), str(next(chapters))]
            j = k % cfg.utts_per_speaker
            # Two chapters per LibriSpeech reader (real readers have several), each numbered
            # from 0000.
            half = max(1, cfg.utts_per_speaker // 2)
            chapter, num = (chapter_ids[0], j) if j < half else (chapter_ids[1], j - half)
            pool = pools[spec.text_pool]
            words = pool[cursor[spec.text_pool] % len(pool)]
            cursor[spec.text_pool] += 1
            cond = draw_condition(rng, bool(other[k]), cfg.snrs, cfg.rate_factors, cfg.reverb_prob)
            if language == "en":
                utt_id = f"{spk_id}-{chapter}-{num:04d}"
            else:
                utt_id = f"BAC009{spk_id}W{121 + j:04d}"
            plan.append(PlannedUtt(len(plan), spec.name, spk_id, chapter if language == "en"
                                   else "", utt_id, tuple(words), speakers[s], cond, spec.extra))
    return plan

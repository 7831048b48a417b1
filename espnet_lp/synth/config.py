"""Settings of the synthetic corpus generator (all of them shape the output bytes)."""

import math
from dataclasses import asdict, dataclass
from typing import Dict, Tuple

from espnet_lp.data.errors import DataPrepError


class SynthConfigError(DataPrepError, ValueError):
    """A generator setting out of range."""


@dataclass(frozen=True)
class SynthConfig:
    """What to generate.

    Args:
        seed: Seed of every random choice; same config, same bytes.
        languages: ``en`` (LibriSpeech layout) and/or ``zh`` (AISHELL-1 layout).
        train_utts: Utterances of the training pool (``train-clean-100`` / AISHELL ``train``).
        dev_utts: Utterances per dev subset (``dev-clean`` and ``dev-other``; AISHELL ``dev``).
        test_utts: Utterances per test subset.
        extra_train_utts: A further labeled set with its own speakers, e.g. to train a KD
            teacher: LibriSpeech ``train-clean-360``; for AISHELL, extra ``train`` speakers
            (listed in ``synth_meta/<corpus>_extra_speakers.txt``).
        other_fraction: Share of the training pool (and of AISHELL dev/test) in the "other"
            condition; LibriSpeech ``*-other`` subsets are all "other", ``*-clean`` all clean.
        utts_per_speaker: Utterances per synthetic speaker (sets the number of speakers).
        snrs: SNRs in dB of the additive noise of "other" speech.
        rate_factors: Tempo factors of "other" speech (slower and faster than the speaker).
        reverb_prob: Probability that an "other" utterance is also reverberated.
        en_vocab: English sentences use only the most frequent this-many words.
        zh_chars: Mandarin clauses use only the most frequent this-many characters.
        zh_homophone_free: Of the characters espeak-ng reads alike (syllable and tone, each
            read alone), keep only the most frequent, so the audio all but determines the
            transcript (polyphones and tone sandhi in a sentence aside): a small model cannot
            learn to tell homophones apart from a few hours of speech.
        zh_pack_clauses: Join short clauses into sentences of ``zh_min_chars`` to
            ``zh_max_chars`` characters (each clause used once), for more examples of each
            character per utterance; otherwise every sentence is one clause of that length.
        zh_min_chars: Shortest Mandarin sentence, in characters.
        zh_max_chars: Longest Mandarin sentence, in characters.
        sample_rate: Output sampling rate (both real corpora use 16 kHz).
    """

    seed: int = 0
    languages: Tuple[str, ...] = ("en", "zh")
    train_utts: int = 240
    dev_utts: int = 30
    test_utts: int = 30
    extra_train_utts: int = 0
    other_fraction: float = 0.3
    utts_per_speaker: int = 20
    snrs: Tuple[float, ...] = (0.0, 5.0, 10.0, 15.0)
    rate_factors: Tuple[float, ...] = (0.7, 1.4)
    reverb_prob: float = 0.5
    en_vocab: int = 3000
    zh_chars: int = 300
    zh_homophone_free: bool = True
    zh_pack_clauses: bool = True
    zh_min_chars: int = 12
    zh_max_chars: int = 20
    sample_rate: int = 16000

    def __post_init__(self) -> None:
        bad = [lang for lang in self.languages if lang not in ("en", "zh")]
        if bad or not self.languages:
            raise SynthConfigError(f"languages must be a subset of ('en', 'zh'), got "
                                   f"{self.languages}")
        if len(set(self.languages)) != len(self.languages):
            raise SynthConfigError(f"languages: one given twice in {self.languages}")
        if not 0 <= self.seed < 2 ** 32:
            raise SynthConfigError(f"seed must be in [0, 2**32), got {self.seed}")
        for name in ("other_fraction", "reverb_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:  # also NaN
                raise SynthConfigError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        for name in ("train_utts", "dev_utts", "test_utts", "utts_per_speaker", "en_vocab",
                     "zh_chars", "zh_min_chars", "sample_rate"):
            if getattr(self, name) < 1:
                raise SynthConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.zh_max_chars < self.zh_min_chars:
            raise SynthConfigError(f"zh_max_chars ({self.zh_max_chars}) must be >= "
                                   f"zh_min_chars ({self.zh_min_chars})")
        if self.extra_train_utts < 0:
            raise SynthConfigError(f"extra_train_utts must be >= 0, got {self.extra_train_utts}")
        if not self.snrs or not all(math.isfinite(x) for x in self.snrs):
            raise SynthConfigError(f"snrs must be finite numbers (dB), got {list(self.snrs)}")
        if not self.rate_factors or not all(0.1 <= x <= 10.0 for x in self.rate_factors):
            raise SynthConfigError(f"rate_factors must be tempo factors in [0.1, 10], got "
                                   f"{list(self.rate_factors)}")

    def to_dict(self) -> Dict:
        """JSON-ready form (written next to the corpus to detect a changed config)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

"""Oracles: who transcribes the utterances a round selects.

:class:`AbsOracle` is the interface the loop uses; :class:`SimulatedOracle` reveals the
transcripts held back in the training pool (the usual simulation on a fully transcribed
corpus). Human annotation (an annotation tool, or a TSV) plugs in as another oracle.
"""

from abc import ABC, abstractmethod
from typing import Dict, Iterable

from espnet_lp.data.datadir import DataDir
from espnet_lp.errors import EspnetLPError


class OracleError(EspnetLPError):
    """Transcripts that cannot be had for the selected utterances."""


class AbsOracle(ABC):
    """Gives the transcripts of selected utterances."""

    @abstractmethod
    def transcribe(self, utt_ids: Iterable[str]) -> Dict[str, str]:
        """Transcripts of ``utt_ids`` (all of them, non-empty), or raise OracleError."""


class SimulatedOracle(AbsOracle):
    """Reveals the held-back transcripts of a fully transcribed pool.

    Args:
        pool: The training pool with its transcripts (``text``).
        where: What to name in errors (the pool's data dir).
    """

    def __init__(self, pool: DataDir, where: str):
        if pool.text is None:
            raise OracleError(f"{where}: no text; the simulated oracle needs the held-back "
                              "transcripts (use a human oracle for untranscribed audio)")
        self._text = pool.text
        self._where = where

    def transcribe(self, utt_ids):
        out = {}
        for utt in utt_ids:
            value = self._text.get(utt)
            if not value:
                raise OracleError(f"{self._where}: utterance {utt} has no transcript to reveal")
            out[utt] = value
        return out

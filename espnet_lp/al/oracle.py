"""Oracles: who transcribes the utterances a round selects.

:class:`AbsOracle` is the interface the loop uses: :meth:`AbsOracle.transcribe` gets a
:class:`Selection` (the ids, their scores, the round and its model) and returns a transcript
per id, or raises.

- :class:`SimulatedOracle` reveals the transcripts held back in the training pool (the usual
  simulation on a fully transcribed corpus).
- :class:`HumanOracle` asks people (``al_run --oracle human``). The first time a selection
  is asked for, it decodes the selected utterances with the round's model and exports them
  for annotators into ``<round dir>/annotation/`` (Label Studio tasks with the hypothesis as
  pre-annotation, its labeling config, a TSV, browser-playable audio, a README: see
  :mod:`espnet_lp.al.annotation.export`), then raises :class:`AnnotationPending`: the loop
  stops there for that strategy and says what to do. ``al_annotate import`` checks the
  annotators' file and applies it (:mod:`espnet_lp.al.annotation.importer`); a rerun of the
  loop goes on from the next stage. If the loop gets there first, it reads the imported
  ``annotation/text`` itself.
"""

import logging
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

from espnet_lp.al.annotation.export import ExportOptions, audio_name, write_export
from espnet_lp.al.annotation.importer import token_chars
from espnet_lp.al.annotation.layout import INITIAL, AnnotationDir, ExportRequest, Utterance
from espnet_lp.al.annotation.layout import make_export_id
from espnet_lp.data.datadir import DataDir
from espnet_lp.errors import EspnetLPError

logger = logging.getLogger(__name__)
ORACLES = ("simulated", "human")


class OracleError(EspnetLPError):
    """Transcripts that cannot be had for the selected utterances."""


@dataclass
class Selection:
    """What one round selected, for the oracle.

    Args:
        strategy: The strategy (``initial`` for the seeded initial set; its state file is
            ``<strategy>/state.json``).
        round: The round that selected.
        round_dir: Its directory (annotation files go to ``round_dir/annotation``).
        utt_ids: The selected ids, in selection order.
        output_dir: The round dir whose labeled set the transcripts complete.
        scores: Acquisition scores (empty for the initial set).
        model_dir: The round's model (``None`` for the initial set).
        labeled_before: Data dir of what was labeled before (``None``: nothing).
    """

    strategy: str
    round: int
    round_dir: Path
    utt_ids: List[str]
    output_dir: Path
    scores: Dict[str, float] = field(default_factory=dict)
    model_dir: Optional[Path] = None
    labeled_before: Optional[Path] = None


class AnnotationPending(OracleError):
    """Selections that wait for people's transcripts (the loop stops there and says what
    to do next).

    Args:
        pending: ``(selection, annotation dir)`` of each waiting selection.
        al_dir: The AL dir as the user gave it (for the commands shown).
    """

    def __init__(self, pending: List, al_dir: Path):
        self.pending = pending
        self.al_dir = al_dir
        super().__init__(self.instructions())

    def instructions(self) -> str:
        lines = []
        for sel, adir in self.pending:
            cmd = (f"python -m espnet_lp.bin.al_annotate import --al_dir {self.al_dir} "
                   f"--strategy {sel.strategy} --round {sel.round}")
            what = ("the initial set" if sel.strategy == INITIAL
                    else f"{sel.strategy} round {sel.round}")
            lines += [f"{len(sel.utt_ids)} utterances of {what} wait for transcripts "
                      f"(how-to: {adir.readme}):",
                      f"  Label Studio: labeling config {adir.label_config}, tasks "
                      f"{adir.tasks_json}; export the annotations as JSON, then",
                      f"    {cmd} --input EXPORT.json",
                      f"  or fill the transcript column of {adir.tsv}, then",
                      f"    {cmd} --input {adir.tsv}"]
        return "\n".join(lines)


class AbsOracle(ABC):
    """Gives the transcripts of selected utterances."""

    @abstractmethod
    def transcribe(self, selection: Selection) -> Dict[str, str]:
        """Transcripts of ``selection.utt_ids`` (all of them, non-empty), or raise
        :class:`OracleError` (:class:`AnnotationPending` when people are at it)."""


class SimulatedOracle(AbsOracle):
    """Reveals the held-back transcripts of a fully transcribed pool.

    Args:
        pool: The training pool with its transcripts (``text``).
        where: What to name in errors (the pool's data dir).
    """

    def __init__(self, pool: DataDir, where: str):
        if pool.text is None:
            raise OracleError(f"{where}: no text; the simulated oracle needs the held-back "
                              "transcripts (--oracle human for untranscribed audio)")
        self._text = pool.text
        self._where = where

    def transcribe(self, selection):
        out = {}
        for utt in selection.utt_ids:
            value = self._text.get(utt)
            if not value:
                raise OracleError(f"{self._where}: utterance {utt} has no transcript to reveal")
            out[utt] = value
        return out


#: Decodes ``wavs`` (id -> wav.scp entry) with the model in a dir, working in another dir.
Decoder = Callable[[Path, Dict[str, str], Path], Dict[str, str]]


class HumanOracle(AbsOracle):
    """People transcribe: export the selection, wait for ``al_annotate import``.

    Args:
        al_dir: The AL dir as the user gave it.
        pool: The training pool (``text``, if any, is never used).
        pool_dir: Its data dir.
        token_list: The run's token list.
        config_digest, seed: The run's (stored in the export; the import checks the state).
        decode: Decodes the selected utterances with a round's model (pre-annotation).
    """

    def __init__(self, al_dir: Path, pool: DataDir, pool_dir: str, token_list: str,
                 config_digest: str, seed: int, decode: Optional[Decoder] = None):
        self.al_dir = Path(al_dir)
        self.pool = pool
        self.pool_dir = os.path.abspath(pool_dir)
        self.token_list = os.path.abspath(token_list)
        self.digest = config_digest
        self.seed = seed
        self.decode = decode

    def transcribe(self, selection):
        adir = AnnotationDir(selection.round_dir)
        if adir.text.is_file():
            text = adir.read_text()
            if sorted(text) != sorted(selection.utt_ids):
                raise OracleError(f"{adir.text}: transcripts of other utterances than the "
                                  f"selection ({len(text)} vs {len(selection.utt_ids)})")
            return text
        if not adir.request.is_file():
            self.export(selection, adir)
        raise AnnotationPending([(selection, adir)], self.al_dir)

    def export(self, selection: Selection, adir: AnnotationDir) -> ExportRequest:
        """Decode the selection with the round's model and write the export."""
        hyps: Dict[str, str] = {}
        wavs = {u: self.pool.wav_scp[u] for u in selection.utt_ids}
        if selection.model_dir is not None and self.decode is not None:
            logger.info("decoding the %d selected utterances for pre-annotation", len(wavs))
            hyps = self.decode(selection.model_dir, wavs, adir.hyp_dir)
        rel = lambda p: None if p is None else os.path.relpath(p, self.al_dir)  # noqa: E731
        strategy = selection.strategy
        request = ExportRequest(
            export_id=make_export_id(self.digest, strategy, selection.round,
                                     selection.utt_ids),
            strategy=strategy, round=selection.round, config_digest=self.digest,
            seed=self.seed, pool_dir=self.pool_dir, token_list=self.token_list,
            labeled_before=rel(selection.labeled_before),
            output_round=rel(selection.output_dir),
            state=os.path.join(strategy, "state.json"),
            stage=f"round{selection.round}/annotate", model=rel(selection.model_dir),
            utterances=[Utterance(id=u, wav=wavs[u], duration=self.pool.utt2dur[u],
                                  score=selection.scores.get(u), hypothesis=hyps.get(u),
                                  audio=f"audio/{audio_name(u, wavs[u])}")
                        for u in selection.utt_ids])
        chars = "".join(sorted(token_chars(self.token_list)))
        write_export(self.al_dir, adir, request, ExportOptions(), chars)
        request.write(adir.request)  # last: the export is complete
        logger.info("exported %d utterances for annotation: %s", len(wavs), adir.dir)
        return request

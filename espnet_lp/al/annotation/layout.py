"""Where a selection's annotation files are, and the export manifest (``export.json``)."""

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from espnet_lp.errors import EspnetLPError
from espnet_lp.utils.fileio import Pathlike, atomic_write_text

#: The pseudo-strategy of the seeded initial set (shared by every strategy).
INITIAL = "initial"


class AnnotationError(EspnetLPError):
    """Annotations or an export that cannot be used as asked (nothing was written)."""


@dataclass
class Utterance:
    """One selected utterance as exported.

    Args:
        id: Utterance id.
        wav: Its ``wav.scp`` entry (path or pipe).
        duration: Seconds.
        score: Acquisition score (``None`` for the seeded initial set).
        hypothesis: The round model's transcript (``None`` without a model).
        audio: File under ``audio/`` that browsers play (relative to the annotation dir).
    """

    id: str
    wav: str
    duration: float
    score: Optional[float] = None
    hypothesis: Optional[str] = None
    audio: str = ""


@dataclass
class ExportRequest:
    """What a selection asks annotators for, and where their transcripts go.

    Paths are relative to the AL dir, except ``pool_dir`` and ``token_list`` (absolute).

    Args:
        export_id: Identifies this selection (and every file exported for it).
        strategy: Strategy that selected (``initial`` for the seeded initial set).
        round: Round that selected.
        config_digest, seed: Of the run (the state file checks them).
        pool_dir: The training pool's data dir (ids that exist at all).
        token_list: Token list (characters annotators may use).
        labeled_before: Data dir of what was labeled before (``None``: nothing).
        output_round: Round dir whose labeled set the transcripts complete.
        state: The strategy's state file; ``stage``: the stage the import completes.
        model: The round's model dir (``None`` for the initial set).
        utterances: The selection, in selection order.
    """

    export_id: str
    strategy: str
    round: int
    config_digest: str
    seed: int
    pool_dir: str
    token_list: str
    labeled_before: Optional[str]
    output_round: str
    state: str
    stage: str
    model: Optional[str] = None
    utterances: List[Utterance] = field(default_factory=list)

    @property
    def ids(self) -> List[str]:
        return [u.id for u in self.utterances]

    def describe(self) -> str:
        """``random round 2`` or ``the initial set``."""
        if self.strategy == INITIAL:
            return "the initial set"
        return f"{self.strategy} round {self.round}"

    def write(self, path: Pathlike) -> None:
        atomic_write_text(path, json.dumps(asdict(self), indent=1, ensure_ascii=False) + "\n")

    @classmethod
    def read(cls, path: Pathlike) -> "ExportRequest":
        """Read ``export.json``.

        Raises:
            AnnotationError: Missing or unreadable file.
        """
        path = Path(path)
        if not path.is_file():
            raise AnnotationError(f"{path}: no export for this round (al_run --oracle human "
                                  "writes it when the round's selection waits for annotation)")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            data["utterances"] = [Utterance(**u) for u in data["utterances"]]
            return cls(**data)
        except (ValueError, KeyError, TypeError) as e:
            raise AnnotationError(f"{path}: unreadable export manifest ({e})") from None


def make_export_id(config_digest: str, strategy: str, r: int, ids: List[str]) -> str:
    """Stable id of a selection: the same run, round and utterances give the same id."""
    key = json.dumps([config_digest, strategy, r, sorted(ids)])
    return hashlib.sha1(key.encode()).hexdigest()[:12]


def selection_round_dir(al_dir: Pathlike, strategy: str, r: int) -> Path:
    """The round dir that made a selection (``initial/round0`` for the initial set)."""
    if strategy == INITIAL and r != 0:
        raise AnnotationError(f"the initial set is round 0, not round {r}")
    return Path(al_dir) / strategy / f"round{r}"


class AnnotationDir:
    """The files of one selection's annotation (``<round dir>/annotation``)."""

    def __init__(self, round_dir: Pathlike):
        self.dir = Path(round_dir) / "annotation"
        self.request = self.dir / "export.json"
        self.hyp_dir = self.dir / "hyp"
        self.tasks_json = self.dir / "tasks.json"
        self.label_config = self.dir / "label_config.xml"
        self.tsv = self.dir / "tasks.tsv"
        self.audio = self.dir / "audio"
        self.readme = self.dir / "README.txt"
        self.text = self.dir / "text"
        self.imported = self.dir / "import.json"

    def read_text(self) -> Dict[str, str]:
        """The imported transcripts (``text``, written only after validation)."""
        from espnet_lp.data.kaldi_io import read_kaldi_map

        return read_kaldi_map(self.text)

"""Errors of the data path."""

from dataclasses import dataclass
from typing import List, Optional

from espnet_lp.errors import EspnetLPError


class DataPrepError(EspnetLPError):
    """Raised when input data cannot be turned into a valid data directory."""


@dataclass(frozen=True)
class Problem:
    """One problem found in a corpus or data directory.

    Args:
        kind: Category, e.g. ``bad_audio``, ``empty_text``, ``transcript_without_audio``.
        where: File (and line, as ``file:line``) the problem is in.
        message: Human readable description.
        utt_id: Utterance id concerned, when known.
    """

    kind: str
    where: str
    message: str
    utt_id: Optional[str] = None

    def __str__(self) -> str:
        utt = f" [{self.utt_id}]" if self.utt_id else ""
        return f"{self.where}{utt}: {self.message}"


def format_problems(problems: List[Problem], limit: int = 10) -> str:
    """Summarise problems: counts per kind, then the first ``limit`` in full.

    Args:
        problems: Problems to describe.
        limit: How many to list one by one.

    Returns:
        Multi-line text.
    """
    counts = {}
    for p in problems:
        counts[p.kind] = counts.get(p.kind, 0) + 1
    lines = [", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))]
    lines += [f"  {p}" for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"  ... and {len(problems) - limit} more")
    return "\n".join(lines)

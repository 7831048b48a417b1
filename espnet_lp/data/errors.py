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
    """Summarise problems: counts per kind and the first problem on the first line (which
    is thus complete on its own), then the next ones up to ``limit``, one per line.

    Args:
        problems: Problems to describe.
        limit: How many to list one by one.

    Returns:
        Text; its first line names the first offending file/line/utterance.
    """
    counts = {}
    for p in problems:
        counts[p.kind] = counts.get(p.kind, 0) + 1
    lines = [", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
             + (f": {problems[0]}" if problems else "")]
    lines += [f"  {p}" for p in problems[1:limit]]
    if len(problems) > limit:
        lines.append(f"  ... and {len(problems) - limit} more")
    return "\n".join(lines)

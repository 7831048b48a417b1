"""Error rates of hypotheses against references (jiwer), and Kaldi-style ``text`` files."""

from pathlib import Path
from typing import Dict, List, Mapping

from espnet_lp.errors import EspnetLPError
from espnet_lp.utils.fileio import Pathlike


class ReportError(EspnetLPError, ValueError):
    """Raised for unreadable results, mismatched transcripts or an impossible report."""


def _few(ids) -> str:
    ids = sorted(ids)
    return ", ".join(ids[:5]) + (f" ... ({len(ids)} in all)" if len(ids) > 5 else "")


def _rate(score, refs: List[str], hyps: List[str], ref_len) -> float:
    """Corpus error rate; empty hypotheses count as deletions of the whole reference."""
    pairs = [(r, h) for r, h in zip(refs, hyps) if h]
    total = sum(ref_len(r) for r in refs)
    deleted = sum(ref_len(r) for r, h in zip(refs, hyps) if not h)
    errors = 0.0
    if pairs:
        sub_refs, sub_hyps = map(list, zip(*pairs))
        errors = score(sub_refs, sub_hyps) * sum(ref_len(r) for r in sub_refs)
    return (errors + deleted) / total


def error_rates(refs: Mapping[str, str], hyps: Mapping[str, str],
                remove_spaces: bool = False) -> Dict[str, float]:
    """Corpus-level WER and CER (jiwer) of hypotheses against references.

    Args:
        refs: Utterance id -> reference transcript.
        hyps: Utterance id -> hypothesis (may be empty: all deletions). Same ids as ``refs``.
        remove_spaces: Compute CER on characters with all spaces removed (Mandarin).

    Returns:
        ``{"wer": ..., "cer": ..., "utterances": n}``, rates as fractions.

    Raises:
        ReportError: Ids differ, no utterances, or an empty reference.
    """
    import jiwer

    missing, extra = set(refs) - set(hyps), set(hyps) - set(refs)
    if missing or extra:
        raise ReportError(f"hypothesis ids differ from reference ids: missing {len(missing)} "
                          f"({_few(missing)}), extra {len(extra)} ({_few(extra)})")
    if not refs:
        raise ReportError("no utterances to score")
    ids = sorted(refs)
    empty = [i for i in ids if not refs[i].split()]
    if empty:
        raise ReportError(f"empty reference transcript for {_few(empty)}")
    join = "" if remove_spaces else " "
    words = [[" ".join(t[i].split()) for i in ids] for t in (refs, hyps)]
    chars = [[join.join(t[i].split()) for i in ids] for t in (refs, hyps)]
    return {"wer": _rate(jiwer.wer, *words, lambda r: len(r.split())),
            "cer": _rate(jiwer.cer, *chars, len),
            "utterances": len(ids)}


def read_text_file(path: Pathlike) -> Dict[str, str]:
    """Read a Kaldi-style ``text`` file: ``<utt_id> <transcript>`` per line (may be empty).

    Raises:
        ReportError: Missing file, blank line or duplicate id, naming file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise ReportError(f"{path}: transcript file not found")
    texts: Dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.strip().split(None, 1)
            if not parts:
                raise ReportError(f"{path}:{lineno}: empty line")
            if parts[0] in texts:
                raise ReportError(f"{path}:{lineno}: duplicate utterance id {parts[0]}")
            texts[parts[0]] = parts[1].strip() if len(parts) > 1 else ""
    return texts

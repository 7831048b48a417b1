"""Turn a corpus listing into a checked data directory (shared by all corpus readers).

Corpus readers (:mod:`espnet_lp.data.librispeech`, :mod:`espnet_lp.data.aishell`) only list
what is on disk; this module decides what to do about problems and writes the result.
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

from espnet_lp.data.audio import inspect_audio
from espnet_lp.data.datadir import DataDir
from espnet_lp.data.errors import DataPrepError, Problem, format_problems
from espnet_lp.utils.workers import parallel_map

logger = logging.getLogger(__name__)

ON_ERROR_CHOICES = ("fail", "skip")

# Problems of one utterance that the user may choose to skip. Anything else (duplicate ids,
# unreadable transcript files) is fatal because the corpus is ambiguous.
BAD_KINDS = ("bad_audio", "bad_text")
UNMATCHED_KINDS = ("transcript_without_audio", "audio_without_transcript")


@dataclass(frozen=True)
class Utterance:
    """One utterance found on disk."""

    utt_id: str
    speaker: str
    audio: Path
    text: str


@dataclass
class CorpusListing:
    """What a corpus reader found: usable-looking utterances and per-utterance problems."""

    utterances: List[Utterance] = field(default_factory=list)
    problems: List[Problem] = field(default_factory=list)


def read_transcripts(
    path: Path, listing: CorpusListing, normalize: Callable[[str], str]
) -> Dict[str, Tuple[str, str]]:
    """Read a ``<utt-id> <transcript>`` file; bad lines become problems of ``listing``.

    Args:
        path: Transcript file (LibriSpeech ``*.trans.txt``, AISHELL's transcript file).
        listing: Receives problems: non-UTF-8 or empty lines, empty transcripts, duplicates.
        normalize: Maps the raw transcript to the data-dir text.

    Returns:
        utt -> (normalised text, ``file:line``).
    """
    out: Dict[str, Tuple[str, str]] = {}
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            where = f"{path}:{lineno}"
            try:
                # utf-8-sig on line 1: a byte-order mark (a transcript saved by a Windows
                # editor) is not part of the first utterance id, which would match no audio
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8").strip()
            except UnicodeDecodeError:
                listing.problems.append(Problem("bad_text", where, "not valid UTF-8"))
                continue
            if not line:
                listing.problems.append(Problem("bad_text", where, "empty line"))
                continue
            utt, _, words = line.partition(" ")
            text = normalize(words)
            if utt in out:
                listing.problems.append(Problem(
                    "duplicate_id", where, f"duplicate utterance id (first: {out[utt][1]})",
                    utt_id=utt))
            elif not text:
                listing.problems.append(Problem("bad_text", where, "empty transcript",
                                                utt_id=utt))
            else:
                out[utt] = (text, where)
    return out


def _check_policy(name: str, value: str) -> None:
    if value not in ON_ERROR_CHOICES:
        raise DataPrepError(f"{name} must be one of {ON_ERROR_CHOICES}, got {value!r}")


def build_data_dir(
    listing: CorpusListing,
    sample_rate: int = 16000,
    on_bad: str = "fail",
    on_unmatched: str = "fail",
    full_decode: bool = True,
    num_jobs: int = 1,
    name: str = "corpus",
) -> DataDir:
    """Check every utterance's audio and build the data directory in memory.

    Args:
        listing: Output of a corpus reader.
        sample_rate: Required sampling rate.
        on_bad: ``fail`` or ``skip`` utterances with bad audio or bad transcripts.
        on_unmatched: ``fail`` or ``skip`` transcripts without audio and audio without
            transcripts (counts are always reported).
        full_decode: Decode each file completely (see :func:`inspect_audio`).
        num_jobs: Worker processes for the audio checks.
        name: Used in messages.

    Returns:
        The data directory (nothing is written).

    Raises:
        DataPrepError: Fatal problems, or skippable ones under the ``fail`` policy. The message
            gives counts per kind and the first offending files/lines/utterance ids.
    """
    _check_policy("on_bad", on_bad)
    _check_policy("on_unmatched", on_unmatched)
    problems = list(listing.problems)
    utts, first = [], {}
    for u in listing.utterances:
        if u.utt_id in first:
            problems.append(Problem("duplicate_id", str(u.audio),
                                    f"utterance id also used by {first[u.utt_id]}", u.utt_id))
        else:
            first[u.utt_id] = u.audio
            utts.append(u)
    paths = [str(u.audio) for u in utts]
    results = parallel_map(inspect_audio, paths, [sample_rate] * len(paths),
                           [full_decode] * len(paths), num_jobs=min(num_jobs, len(paths)),
                           chunksize=max(1, len(paths) // (max(num_jobs, 1) * 8)))

    kept: List[Utterance] = []
    durations: Dict[str, float] = {}
    for utt, (info, reason) in zip(utts, results):
        if reason is not None:
            problems.append(Problem("bad_audio", str(utt.audio), reason, utt_id=utt.utt_id))
            continue
        kept.append(utt)
        durations[utt.utt_id] = info.duration

    _raise_or_log(problems, on_bad, on_unmatched, name)
    if not kept:
        raise DataPrepError(f"{name}: no usable utterances")
    return DataDir(
        wav_scp={u.utt_id: str(u.audio.resolve()) for u in kept},
        utt2spk={u.utt_id: u.speaker for u in kept},
        text={u.utt_id: u.text for u in kept},
        utt2dur=durations,
    )


def _raise_or_log(problems: Sequence[Problem], on_bad: str, on_unmatched: str, name: str) -> None:
    fatal = [
        p for p in problems
        if (p.kind in BAD_KINDS and on_bad == "fail")
        or (p.kind in UNMATCHED_KINDS and on_unmatched == "fail")
        or p.kind not in BAD_KINDS + UNMATCHED_KINDS
    ]
    if fatal:
        hint = ""
        if any(p.kind in BAD_KINDS + UNMATCHED_KINDS for p in fatal):
            hint = "\n(use --on_bad skip / --on_unmatched skip to leave such utterances out)"
        raise DataPrepError(f"{name}: {format_problems(list(fatal))}{hint}")
    if problems:
        logger.warning("%s: skipped %s", name, format_problems(list(problems)))

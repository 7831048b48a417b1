"""File layouts and metadata files of the real LibriSpeech and AISHELL-1 releases."""

from collections import defaultdict
from pathlib import Path
from typing import Dict, List

from espnet_lp.synth.plan import PlannedUtt

_SPEAKERS_HEADER = """\
; Readers of the synthetic LibriSpeech-layout corpus made by espnet-lp (espeak-ng voices).
; Fields, separated by '|': reader id, sex (F/M), subset, minutes of speech, name.
;ID  |SEX| SUBSET           |MINUTES| NAME
"""
_CHAPTERS_HEADER = """\
; Chapters of the synthetic LibriSpeech-layout corpus made by espnet-lp.
; Fields, separated by '|': chapter id, reader id, minutes, subset, project id, book id,
; chapter title, project title.
;ID    |READER|MINUTES| SUBSET           | PROJ.|BOOK ID| CH. TITLE          | PROJECT TITLE
"""


def audio_path(root: Path, item: PlannedUtt, language: str) -> Path:
    """Where the real corpus keeps this utterance's audio."""
    if language == "en":
        return (root / "LibriSpeech" / item.subset / item.speaker_id / item.chapter_id
                / f"{item.utt_id}.flac")
    return root / "data_aishell" / "wav" / item.subset / item.speaker_id / f"{item.utt_id}.wav"


def transcript(item: PlannedUtt) -> str:
    """Transcript as the real corpus writes it (AISHELL: words separated by spaces)."""
    return " ".join(item.words)


def write_librispeech_metadata(root: Path, plan: List[PlannedUtt], frames: Dict[str, int],
                               sample_rate: int) -> None:
    """``<spk>-<chapter>.trans.txt`` per chapter, ``SPEAKERS.TXT`` and ``CHAPTERS.TXT``."""
    by_chapter: Dict[tuple, List[PlannedUtt]] = defaultdict(list)
    for item in plan:
        by_chapter[(item.subset, item.speaker_id, item.chapter_id)].append(item)
    speakers: Dict[str, list] = {}
    chapter_lines = []
    for (subset, spk, chapter), items in sorted(by_chapter.items()):
        trans = root / "LibriSpeech" / subset / spk / chapter / f"{spk}-{chapter}.trans.txt"
        with open(trans, "w", encoding="utf-8", newline="\n") as f:
            for item in sorted(items, key=lambda i: i.utt_id):
                f.write(f"{item.utt_id} {transcript(item)}\n")
        minutes = sum(frames[i.utt_id] for i in items) / sample_rate / 60.0
        entry = speakers.setdefault(spk, [items[0].speaker, subset, 0.0])
        entry[2] += minutes
        chapter_lines.append(
            f"{chapter:<6}| {spk:<5}| {minutes:<6.2f}| {subset:<17}| {chapter:<5}| {chapter:<6}| "
            f"Synthetic chapter {chapter} | espnet-lp synthetic readings\n")
    with open(root / "LibriSpeech" / "CHAPTERS.TXT", "w", encoding="utf-8") as f:
        f.write(_CHAPTERS_HEADER + "".join(chapter_lines))
    with open(root / "LibriSpeech" / "SPEAKERS.TXT", "w", encoding="utf-8") as f:
        f.write(_SPEAKERS_HEADER)
        for spk, (speaker, subset, minutes) in sorted(speakers.items(), key=lambda kv: int(kv[0])):
            f.write(f"{spk:<5}| {speaker.gender} | {subset:<17}| {minutes:<6.2f}| "
                    f"espeak-ng {speaker.variant} p{speaker.pitch} s{speaker.rate}\n")


def write_aishell_metadata(root: Path, plan: List[PlannedUtt]) -> None:
    """``aishell_transcript_v0.8.txt`` (all splits, sorted) and ``speaker.info``."""
    tdir = root / "data_aishell" / "transcript"
    tdir.mkdir(parents=True, exist_ok=True)
    with open(tdir / "aishell_transcript_v0.8.txt", "w", encoding="utf-8", newline="\n") as f:
        for item in sorted(plan, key=lambda i: i.utt_id):
            f.write(f"{item.utt_id} {transcript(item)}\n")
    rdir = root / "resource_aishell"
    rdir.mkdir(parents=True, exist_ok=True)
    genders = {item.speaker_id: item.speaker.gender for item in plan}
    with open(rdir / "speaker.info", "w", encoding="utf-8", newline="\n") as f:
        for spk, gender in sorted(genders.items()):
            f.write(f"{spk[1:]} {gender}\n")  # the real file writes "0002 F", without the "S"

"""AISHELL-1: download, list and prepare data directories with character-ready text.

Layout read (after the official archives and their per-speaker tarballs are unpacked)::

    data_aishell/wav/{train,dev,test}/S0002/BAC009S0002W0122.wav
    data_aishell/transcript/aishell_transcript_v0.8.txt   # "<utt> <space separated words>"
    resource_aishell/speaker.info

The transcript file is shared by all splits, so "transcript without audio" means an id found
in no split. The official release has audio without transcripts; recipes therefore pass
``on_unmatched="skip"`` (the skipped counts are still reported).
"""

import logging
import re
import unicodedata
from pathlib import Path
from typing import Dict, Iterable, List

from espnet_lp.data.download import download_file, extract_tar
from espnet_lp.data.errors import DataPrepError, Problem
from espnet_lp.data.prepare import CorpusListing, Utterance, read_transcripts
from espnet_lp.utils.fileio import Pathlike

logger = logging.getLogger(__name__)

URL_BASE = "https://www.openslr.org/resources/33"
ARCHIVE_SIZES = {"data_aishell": 15582913665, "resource_aishell": 1246920}
SPLITS = ("train", "dev", "test")
TRANSCRIPT = Path("data_aishell/transcript/aishell_transcript_v0.8.txt")
UTT_ID = re.compile(r"^BAC009(S\d{4})W\d{4}$")


def download_aishell(target_dir: Pathlike, url_base: str = URL_BASE) -> Path:
    """Download and unpack AISHELL-1 into ``target_dir`` (skips finished parts)."""
    target_dir = Path(target_dir)
    for part, size in ARCHIVE_SIZES.items():
        done = target_dir / part / ".complete"
        if done.is_file():
            continue
        archive = download_file(f"{url_base}/{part}.tgz", target_dir / f"{part}.tgz", size)
        extract_tar(archive, target_dir)
        if part == "data_aishell":
            for inner in sorted((target_dir / part / "wav").glob("*.tar.gz")):
                extract_tar(inner, inner.parent)
                inner.unlink()
        done.touch()
    return target_dir


def normalize_text(words: str) -> str:
    """Character-token text: NFKC (full-width -> ASCII), Latin upper-cased, no spaces."""
    text = unicodedata.normalize("NFKC", words).upper()
    return "".join(text.split())


def _list_audio(wav_root: Path, split: str, listing: CorpusListing) -> Dict[str, Path]:
    audio: Dict[str, Path] = {}
    for path in sorted((wav_root / split).glob("*/*.wav")):
        utt = path.stem
        m = UTT_ID.match(utt)
        if not m or m.group(1) != path.parent.name:
            listing.problems.append(Problem(
                "bad_id", str(path), f"expected BAC009{path.parent.name}W<4 digits>.wav",
                utt_id=utt))
        elif utt in audio:
            listing.problems.append(Problem("duplicate_id", str(path),
                                            f"duplicate of {audio[utt]}", utt_id=utt))
        else:
            audio[utt] = path
    return audio


def list_aishell(corpus_dir: Pathlike, splits: Iterable[str] = SPLITS) -> Dict[str, CorpusListing]:
    """List the utterances of each split.

    Args:
        corpus_dir: Directory holding ``data_aishell/`` (and ``resource_aishell/``).
        splits: Which of ``train``, ``dev``, ``test`` to list.

    Returns:
        split -> listing. Transcript problems and "transcript without audio" are reported in
        the listing of the first split.
    """
    corpus_dir = Path(corpus_dir)
    splits = list(splits)
    bad = [s for s in splits if s not in SPLITS]
    if bad:
        raise DataPrepError(f"unknown AISHELL split(s) {bad}; valid: {SPLITS}")
    transcript = corpus_dir / TRANSCRIPT
    if not transcript.is_file():
        raise DataPrepError(f"{transcript}: AISHELL transcript file not found")
    head = CorpusListing()
    texts = read_transcripts(transcript, head, normalize_text)
    wav_root = corpus_dir / "data_aishell" / "wav"
    listings: Dict[str, CorpusListing] = {}
    seen_audio: Dict[str, Path] = {}
    for split in SPLITS:  # all splits, so that ids of unrequested splits count as matched
        listing = head if split == splits[0] else CorpusListing()
        if not (wav_root / split).is_dir():
            if split in splits:
                raise DataPrepError(f"{wav_root / split}: AISHELL split directory not found")
            continue
        audio = _list_audio(wav_root, split, listing)
        for utt, path in audio.items():
            if utt in seen_audio:
                listing.problems.append(Problem("duplicate_id", str(path),
                                                f"also in {seen_audio[utt]}", utt_id=utt))
                continue
            seen_audio[utt] = path
            if utt in texts:
                listing.utterances.append(Utterance(utt, path.parent.name, path, texts[utt][0]))
            else:
                listing.problems.append(Problem("audio_without_transcript", str(path),
                                                f"no line in {transcript.name}", utt_id=utt))
        if split in splits:
            listings[split] = listing
    orphans: List[Problem] = [
        Problem("transcript_without_audio", where, "no .wav for this transcript", utt_id=utt)
        for utt, (_, where) in texts.items() if utt not in seen_audio
    ]
    listings[splits[0]].problems.extend(orphans)
    return listings

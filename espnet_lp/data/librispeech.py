"""LibriSpeech: download, list and prepare data directories.

Layout read: ``LibriSpeech/<subset>/<spk>/<chapter>/<spk>-<chapter>-<utt>.flac`` with one
``<spk>-<chapter>.trans.txt`` per chapter (``<utt-id> <UPPERCASE WORDS>`` per line).
Speakers in the data directory are ``<spk>-<chapter>`` as in Kaldi's and ESPnet's recipes.
"""

import logging
import re
from pathlib import Path
from typing import Dict, Iterable

from espnet_lp.data.download import download_file, extract_tar
from espnet_lp.data.errors import DataPrepError, Problem
from espnet_lp.data.prepare import CorpusListing, Utterance, read_transcripts
from espnet_lp.utils.fileio import Pathlike

logger = logging.getLogger(__name__)

URL_BASE = "https://www.openslr.org/resources/12"
# Archive sizes in bytes of the final release (the check Kaldi's download_and_untar.sh does).
ARCHIVE_SIZES: Dict[str, int] = {
    "dev-clean": 337926286,
    "dev-other": 314305928,
    "test-clean": 346663984,
    "test-other": 328757843,
    "train-clean-100": 6387309499,
    "train-clean-360": 23049477885,
    "train-other-500": 30593501606,
}
SUBSETS = tuple(ARCHIVE_SIZES)
UTT_ID = re.compile(r"^(\d+)-(\d+)-(\d+)$")


def corpus_root(corpus_dir: Pathlike) -> Path:
    """Accept either the ``LibriSpeech`` directory itself or its parent."""
    corpus_dir = Path(corpus_dir)
    return corpus_dir / "LibriSpeech" if (corpus_dir / "LibriSpeech").is_dir() else corpus_dir


def download_librispeech(
    target_dir: Pathlike, subsets: Iterable[str], url_base: str = URL_BASE
) -> Path:
    """Download and unpack subsets into ``target_dir/LibriSpeech`` (skips finished ones).

    A ``.complete`` marker is written in each subset directory after extraction.
    """
    target_dir = Path(target_dir)
    for subset in subsets:
        if subset not in ARCHIVE_SIZES:
            raise DataPrepError(f"unknown LibriSpeech subset {subset!r}; valid: {SUBSETS}")
        done = target_dir / "LibriSpeech" / subset / ".complete"
        if done.is_file():
            continue
        archive = download_file(f"{url_base}/{subset}.tar.gz",
                                target_dir / f"{subset}.tar.gz", ARCHIVE_SIZES[subset])
        extract_tar(archive, target_dir)
        done.touch()
    return target_dir / "LibriSpeech"


def _squeeze(words: str) -> str:
    return " ".join(words.split())


def list_librispeech(corpus_dir: Pathlike, subset: str) -> CorpusListing:
    """Find the utterances of one subset and everything that does not fit the layout."""
    root = corpus_root(corpus_dir) / subset
    if not root.is_dir():
        raise DataPrepError(f"{root}: LibriSpeech subset directory not found")
    listing = CorpusListing()
    for chapter_dir in sorted(p for p in root.glob("*/*") if p.is_dir()):
        spk, chapter = chapter_dir.parent.name, chapter_dir.name
        trans = chapter_dir / f"{spk}-{chapter}.trans.txt"
        texts = read_transcripts(trans, listing, _squeeze) if trans.is_file() else {}
        audio = {p.stem: p for p in sorted(chapter_dir.glob("*.flac"))}
        for utt in sorted(set(texts) | set(audio)):
            m = UTT_ID.match(utt)
            where = texts[utt][1] if utt in texts else str(audio[utt])
            if not m or m.group(1) != spk or m.group(2) != chapter:
                listing.problems.append(Problem(
                    "bad_id", where, f"id does not match <spk>-<chapter>-<utt> = {spk}-{chapter}-*",
                    utt_id=utt))
            elif utt not in audio:
                listing.problems.append(Problem("transcript_without_audio", where,
                                                "no .flac for this transcript", utt_id=utt))
            elif utt not in texts:
                listing.problems.append(Problem("audio_without_transcript", where,
                                                f"no line in {trans.name}", utt_id=utt))
            else:
                listing.utterances.append(
                    Utterance(utt, f"{spk}-{chapter}", audio[utt], texts[utt][0]))
    if not listing.utterances and not listing.problems:
        raise DataPrepError(f"{root}: no utterances found")
    return listing


def data_dir_name(subset: str) -> str:
    """ESPnet's data directory name for a subset: ``train-clean-100`` -> ``train_clean_100``."""
    return subset.replace("-", "_")

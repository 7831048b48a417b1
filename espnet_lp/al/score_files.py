"""Per-shard score files of ``al_score`` and their merge.

A shard writes ``score.<JOB>`` (``<utt_id> <score>`` per line, full float precision) and,
for strategies with embeddings, ``embedding.<JOB>.npz`` (``ids``, ``embedding``), together
and atomically, so a shard's files exist only once it has finished.
"""

import os
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np

from espnet_lp.errors import EspnetLPError
from espnet_lp.utils.fileio import Pathlike
from espnet_lp.utils.outputs import atomic_outputs


class ScoreFileError(EspnetLPError, ValueError):
    """Score shards that do not cover the pool exactly once, or are malformed."""


def write_shard(output_dir: Pathlike, job: int, ids: List[str], scores: List[float],
                embeddings: Optional[np.ndarray] = None) -> None:
    """Write one shard's scores (and embeddings) as one commit: a killed run leaves the
    earlier files of the shard, never a mix; an embedding file of an earlier run is removed
    when this one has none. A second writer of the shard is refused."""
    out = Path(output_dir)
    score, embedding = out / f"score.{job}", out / f"embedding.{job}.npz"
    files = [score] + ([embedding] if embeddings is not None else [])
    stale = [embedding] if embeddings is None and os.path.lexists(embedding) else []
    with atomic_outputs(files=files, remove=stale) as staged:
        if embeddings is not None:
            with open(staged[embedding], "wb") as f:
                np.savez(f, ids=np.array(ids), embedding=embeddings)
        staged[score].write_text("".join(f"{u} {s!r}\n" for u, s in zip(ids, scores)),
                                 encoding="utf-8")


def read_score_file(path: Pathlike) -> Dict[str, float]:
    """``<utt_id> <score>`` lines; errors name the file and line."""
    scores: Dict[str, float] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            try:
                utt, value = parts
                score = float(value)
            except ValueError:
                raise ScoreFileError(f"{path}:{lineno}: expected '<utt_id> <score>'") from None
            if utt in scores:
                raise ScoreFileError(f"{path}:{lineno}: utterance {utt} scored twice")
            scores[utt] = score
    return scores


def merge_shards(output_dir: Pathlike, expected: Iterable[str], num_jobs: int
                 ) -> Tuple[Dict[str, float], Optional[Dict[str, np.ndarray]]]:
    """Merge ``score.1..N`` (and embeddings); every expected id exactly once, no other.

    Returns:
        Scores by id, and embeddings by id (None when the shards wrote none).
    """
    out, expected = Path(output_dir), set(expected)
    scores: Dict[str, float] = {}
    embeddings: Optional[Dict[str, np.ndarray]] = {}
    for job in range(1, num_jobs + 1):
        path = out / f"score.{job}"
        if not path.is_file():
            raise ScoreFileError(f"{path}: missing (scoring job {job} did not finish)")
        shard = read_score_file(path)
        twice = sorted(set(shard) & set(scores))
        if twice:
            raise ScoreFileError(f"{path}: utterance {twice[0]} is in two shards")
        scores.update(shard)
        emb_path = out / f"embedding.{job}.npz"
        if not shard:
            continue  # an empty shard (more jobs than utterances) has no embeddings to give
        if embeddings is not None and emb_path.is_file():
            with np.load(emb_path) as z:
                embeddings.update(zip(z["ids"].tolist(), z["embedding"]))
        else:
            embeddings = None
    missing, extra = sorted(expected - set(scores)), sorted(set(scores) - expected)
    if missing or extra:
        raise ScoreFileError(f"{out}: scores do not match the pool: {len(missing)} missing "
                             f"(e.g. {missing[:3]}), {len(extra)} not in it (e.g. {extra[:3]})")
    return scores, embeddings

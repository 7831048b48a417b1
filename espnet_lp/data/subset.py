"""Seeded subset selection of a data directory by speakers, utterances or hours."""

from typing import List, Optional

import numpy as np

from espnet_lp.data.datadir import DataDir
from espnet_lp.data.errors import DataPrepError


def select_subset(
    data: DataDir,
    utterances: Optional[int] = None,
    hours: Optional[float] = None,
    speakers: Optional[int] = None,
    seed: int = 0,
) -> List[str]:
    """Choose utterance ids reproducibly.

    ``speakers`` first restricts to that many randomly chosen speakers (all their utterances);
    then ``utterances`` draws that many utterances at random, or ``hours`` takes utterances in
    a random order while the total stays within the budget. At most one of ``utterances`` and
    ``hours`` may be given.

    Args:
        data: Source data directory (``utt2dur`` is needed for ``hours``).
        utterances: Number of utterances.
        hours: Audio budget in hours.
        speakers: Number of speakers.
        seed: Seed of the random generator; same data and seed, same subset.

    Returns:
        Sorted utterance ids.

    Raises:
        DataPrepError: Impossible requests (more than available, both counts given, ...).
    """
    if utterances is not None and hours is not None:
        raise DataPrepError("give either utterances or hours, not both")
    for name, value in (("utterances", utterances), ("speakers", speakers), ("hours", hours)):
        if value is not None and not value > 0:  # also NaN
            raise DataPrepError(f"{name} must be positive, got {value}")
    if hours is not None and hours == float("inf"):
        raise DataPrepError("hours must be finite, got inf")
    rng = np.random.default_rng(seed)
    ids = data.utt_ids
    if speakers is not None:
        spk2utt = data.spk2utt()
        if speakers > len(spk2utt):
            raise DataPrepError(f"speakers={speakers}: data has only {len(spk2utt)} speakers")
        chosen = rng.choice(sorted(spk2utt), size=speakers, replace=False)
        ids = sorted(u for s in chosen for u in spk2utt[s])
    if utterances is not None:
        if utterances > len(ids):
            raise DataPrepError(f"utterances={utterances}: only {len(ids)} available")
        ids = sorted(rng.choice(ids, size=utterances, replace=False).tolist())
    elif hours is not None:
        if data.utt2dur is None:
            raise DataPrepError("selection by hours needs utt2dur")
        budget, total, picked = hours * 3600.0, 0.0, []
        for utt in rng.permutation(ids).tolist():
            if total + data.utt2dur[utt] <= budget:
                picked.append(utt)
                total += data.utt2dur[utt]
        if not picked:
            raise DataPrepError(f"hours={hours}: no utterance is that short")
        ids = sorted(picked)
    return ids

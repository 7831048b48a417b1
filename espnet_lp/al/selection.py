"""Which utterances to label in one active-learning round, under an utterance or hours budget.

Higher acquisition score = more useful; the top of the ranking is taken. Ties go by a hash of
``(seed, utt_id)``: never by dict order, process or platform. Numpy only (no torch, no ESPnet).
"""

import hashlib
import logging
import math
import numbers
from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Optional, Sequence

import numpy as np

from espnet_lp.al.clustering import ClusteringError, kmeans, typical_order
from espnet_lp.errors import EspnetLPError

logger = logging.getLogger(__name__)

COSTS = ("duration", "none")
#: How a round turns scores into a selection: the best-ranked (``topk``), a sample that
#: favours them (``softrank``, stochastic batch acquisition), or the best-ranked among each
#: cluster's typical utterances (``typical``, :func:`espnet_lp.al.clustering.typical_order`).
ACQUISITIONS = ("topk", "softrank", "typical")
_EPS_S = 1e-6  # slack in seconds when an utterance exactly fills the rest of an hours budget


class SelectionError(EspnetLPError, ValueError):
    """Bad input to a selection: a budget, a score, a duration or an embedding."""


@dataclass(frozen=True)
class Budget:
    """How much to label in one round: a number of utterances or hours of audio (exactly one).

    Args:
        utterances: Number of utterances (>= 0).
        hours: Hours of audio (finite, >= 0).
    """

    utterances: Optional[int] = None
    hours: Optional[float] = None

    def __post_init__(self) -> None:
        if (self.utterances is None) == (self.hours is None):
            raise SelectionError(f"a budget needs exactly one of utterances or hours, got {self}")
        if self.utterances is not None:
            u = self.utterances
            if isinstance(u, bool) or not isinstance(u, numbers.Integral) or u < 0:
                raise SelectionError(f"budget utterances must be an integer >= 0, got {u!r}")
            object.__setattr__(self, "utterances", int(u))
        else:
            h = self.hours
            if isinstance(h, bool) or not isinstance(h, numbers.Real) or not 0 <= h < math.inf:
                raise SelectionError(f"budget hours must be a finite number >= 0, got {h!r}")
            object.__setattr__(self, "hours", float(h))

    @classmethod
    def from_config(cls, conf, where: str) -> "Budget":
        """Build a budget from yaml: ``{"utterances": N}`` or ``{"hours": H}``.

        Args:
            conf: The parsed yaml value.
            where: Where it came from (file and key), for error messages.

        Returns:
            The budget.

        Raises:
            SelectionError: ``conf`` is not one of the two forms or its value is invalid.
        """
        if not isinstance(conf, Mapping) or len(conf) != 1 or set(conf) - {"utterances", "hours"}:
            raise SelectionError(
                f"{where}: a budget is {{utterances: N}} or {{hours: H}} (exactly one key), "
                f"got {conf!r}")
        try:
            return cls(**conf)
        except SelectionError as e:
            raise SelectionError(f"{where}: {e}") from None

    def describe(self) -> str:
        """A short text such as ``"50 utterances"`` or ``"1.5 h"``."""
        if self.utterances is not None:
            return f"{self.utterances} utterance{'' if self.utterances == 1 else 's'}"
        return f"{self.hours:g} h"


def tie_breaker(seed: int, utt_id: str) -> float:
    """A deterministic uniform number in [0, 1) from ``(seed, utt_id)``.

    Uses SHA-256, not ``hash()``, so it is the same in every process and on every platform.

    Args:
        seed: Round or experiment seed.
        utt_id: Utterance id.

    Returns:
        A float in [0, 1) with 53 random bits.
    """
    digest = hashlib.sha256(f"{int(seed)}\0{utt_id}".encode("utf-8")).digest()
    return (int.from_bytes(digest[:8], "big") >> 11) / float(1 << 53)


def total_hours(ids: Iterable[str], durations: Mapping[str, float]) -> float:
    """Hours of audio in ``ids``.

    Args:
        ids: Utterance ids.
        durations: utt_id -> duration in seconds.

    Returns:
        The total duration in hours.

    Raises:
        SelectionError: An id has no duration.
    """
    ids = list(ids)
    _check_durations(ids, durations)
    return sum(durations[u] for u in ids) / 3600.0


def initial_set(durations: Mapping[str, float], budget: Budget, seed: int) -> List[str]:
    """The seeded random initial labeled set, the same whatever strategy follows.

    Utterances are ordered by ``tie_breaker(seed, id)`` and taken greedily until the budget is
    full (hours: an utterance that does not fit is skipped and the walk goes on).

    Args:
        durations: The pool: utt_id -> duration in seconds.
        budget: How much to take.
        seed: Seed of the random order.

    Returns:
        The selected ids, in that random order.

    Raises:
        SelectionError: A duration is not finite and positive.
    """
    _check_durations(durations, durations)
    order = sorted(durations, key=lambda u: (tie_breaker(seed, u), u))
    return _fill(order, durations, budget, _capacity(budget), set())


def select(scores: Mapping[str, float], durations: Mapping[str, float], budget: Budget, *,
           cost: str = "duration", seed: int = 0,
           embeddings: Optional[Mapping[str, Sequence[float]]] = None,
           num_clusters: int = 0, acquisition: str = "topk", beta: float = 1.0,
           round_index: int = 0, typicality_knn: int = 20,
           typicality_gate: float = 0.5) -> List[str]:
    """Select the most useful scored utterances within ``budget``.

    Hours budget with ``cost="duration"``: rank by the score's percentile in the pool per
    second of audio (:func:`_per_second`); else by
    score; ties by ``tie_breaker``. Hours: what does not fit is skipped and the walk goes on.
    Diversity (``embeddings`` and ``num_clusters > 1``): k-means on L2-normalised embeddings,
    each cluster fills a share of the budget proportional to its size by the ranking, then the
    global ranking fills what is left. ``acquisition="softrank"`` replaces the ranking by a
    sample from it (:func:`softrank_order`); ``acquisition="typical"`` by the best-ranked
    typical utterance of each of as many k-means clusters as the budget holds utterances
    (:func:`espnet_lp.al.clustering.typical_order`; needs ``embeddings``, replaces the
    diversity quotas).

    Args:
        scores: utt_id -> acquisition score (higher = more useful).
        durations: utt_id -> duration in seconds; must cover every scored id.
        budget: How much to select.
        cost: ``"duration"`` or ``"none"``.
        seed: Seed of tie-breaking and k-means.
        embeddings: utt_id -> embedding (same length for all), for diversity.
        num_clusters: Number of k-means clusters; diversity is used only when > 1.
        acquisition: ``"topk"``, ``"softrank"`` or ``"typical"``.
        beta: Softrank's sharpness (large: top-k; 0: uniform).
        round_index: The round (softrank draws anew in every round).
        typicality_knn: Neighbours of the typicality estimate (``typical``).
        typicality_gate: Fraction of each cluster counted as typical (``typical``).

    Returns:
        Selected ids in selection order (cluster fills first, then leftovers).

    Raises:
        SelectionError: Unknown ``cost`` or ``acquisition``, a bad ``beta``, a non-finite
            score, a missing or bad duration, or a missing or inconsistent embedding.
    """
    if cost not in COSTS:
        raise SelectionError(f"cost must be one of {', '.join(COSTS)}, got {cost!r}")
    if acquisition not in ACQUISITIONS:
        raise SelectionError(f"acquisition must be one of {', '.join(ACQUISITIONS)}, got "
                             f"{acquisition!r}")
    if isinstance(beta, bool) or not (isinstance(beta, numbers.Real) and 0 <= beta < math.inf):
        raise SelectionError(f"beta must be a number >= 0, got {beta!r}")
    _check_scores(scores)
    _check_durations(scores, durations)
    per_second = budget.hours is not None and cost == "duration"
    value = _per_second(scores, durations) if per_second else dict(scores)
    ranking = sorted(value, key=lambda u: (-value[u], tie_breaker(seed, u), u))
    if acquisition == "softrank":
        ranking = softrank_order(ranking, beta, seed, round_index)
    if _capacity(budget) == 0 or not ranking:
        return []
    if acquisition == "typical":
        if embeddings is None:
            raise SelectionError("acquisition typical needs the pool's embeddings (the "
                                 "strategy returned none)")
        x = _normalised(ranking, embeddings)
        try:
            order = typical_order(x, _clusters_for(budget, ranking, durations), seed,
                                  typicality_knn, typicality_gate)
        except ClusteringError as e:
            raise SelectionError(str(e)) from None
        ranking = [ranking[i] for i in order]
    taken: set = set()
    chosen: List[str] = []
    if embeddings is not None and num_clusters > 1 and acquisition != "typical":
        chosen = _cluster_fill(ranking, durations, budget, embeddings, num_clusters, seed)
        taken.update(chosen)
    left = _capacity(budget) - _used(chosen, durations, budget)
    chosen += _fill(ranking, durations, budget, left, taken)
    logger.debug("selected %d of %d utterances (%.3f h) for a budget of %s", len(chosen),
                 len(ranking), total_hours(chosen, durations), budget.describe())
    return chosen


def softrank_order(ranking: Sequence[str], beta: float, seed: int, round_index: int
                   ) -> List[str]:
    """A random order that favours the top of ``ranking``: the order of a sample without
    replacement with probabilities proportional to ``rank ** -beta`` (Gumbel top-k).

    Stochastic batch acquisition (softrank; Kirsch et al., TMLR 2023): taking the top-k of a
    score selects a batch of near-duplicates, all of them from where the score is highest
    (for a weak model: the noisiest audio); a sample keeps most of the preference and adds
    the spread that random selection has. Scale-free (only ranks count); deterministic for a
    seed and round.
    """
    def key(i: int, u: str) -> float:
        uniform = max(tie_breaker(seed, f"softrank\0{round_index}\0{u}"), 1e-300)
        return -beta * math.log(i + 1) - math.log(-math.log(uniform) or 1e-300)

    keys = {u: key(i, u) for i, u in enumerate(ranking)}
    return sorted(ranking, key=lambda u: (-keys[u], u))


def _clusters_for(budget: Budget, ids: Sequence[str], durations: Mapping[str, float]) -> int:
    """As many clusters as the budget holds utterances (hours: at the pool's mean duration)."""
    if budget.utterances is not None:
        wanted = budget.utterances
    else:
        mean_s = sum(durations[u] for u in ids) / len(ids)
        wanted = int(round(_capacity(budget) / mean_s))
    return max(1, min(wanted, len(ids)))


def _per_second(scores: Mapping[str, float], durations: Mapping[str, float]
                ) -> Dict[str, float]:
    """Usefulness per second of audio, from the score's percentile in the pool.

    Scores are first mapped to their percentile (ties share one), so that the trade-off does
    not depend on a strategy's scale or zero: a ranking-trained LP head's outputs can be
    negative, and dividing a negative score by a duration would favour long utterances.
    """
    ordered = sorted(set(scores.values()))
    percentile = {v: (i + 1) / len(ordered) for i, v in enumerate(ordered)}
    return {u: percentile[s] / durations[u] for u, s in scores.items()}


def _check_scores(scores: Mapping[str, float]) -> None:
    for u, s in scores.items():
        if not math.isfinite(s):
            raise SelectionError(f"utterance {u!r}: acquisition score is not finite ({s!r})")


def _check_durations(ids: Iterable[str], durations: Mapping[str, float]) -> None:
    for u in ids:
        if u not in durations:
            raise SelectionError(f"utterance {u!r}: no duration")
        d = durations[u]
        if not (math.isfinite(d) and d > 0):
            raise SelectionError(f"utterance {u!r}: duration must be finite and > 0, got {d!r}")


def _capacity(budget: Budget) -> float:
    """The budget in its unit: utterances, or seconds."""
    return budget.utterances if budget.utterances is not None else budget.hours * 3600.0


def _used(ids: List[str], durations: Mapping[str, float], budget: Budget) -> float:
    return len(ids) if budget.utterances is not None else sum(durations[u] for u in ids)


def _fill(ranking: Sequence[str], durations: Mapping[str, float], budget: Budget,
          capacity: float, taken: set) -> List[str]:
    """Walk ``ranking`` and take what fits in ``capacity``, skipping ids in ``taken``."""
    out = []
    for u in ranking:
        cost = 1 if budget.utterances is not None else durations[u]
        if u not in taken and cost <= capacity + _EPS_S:
            out.append(u)
            capacity -= cost
    return out


def _cluster_fill(ranking: List[str], durations: Mapping[str, float], budget: Budget,
                  embeddings: Mapping[str, Sequence[float]], num_clusters: int,
                  seed: int) -> List[str]:
    """Fill each cluster's share of the budget by the ranking; clusters in order of best rank."""
    labels = kmeans(_normalised(ranking, embeddings), min(num_clusters, len(ranking)), seed)
    members: Dict[int, List[str]] = {}
    for u, c in zip(ranking, labels.tolist()):
        members.setdefault(c, []).append(u)  # keeps ranking order, first key = best-ranked
    sizes = [len(m) for m in members.values()]
    quotas = _quotas(sizes, _capacity(budget), len(ranking), budget.utterances is not None)
    chosen: List[str] = []
    for m, quota in zip(members.values(), quotas):
        chosen += _fill(m, durations, budget, quota, set())
    return chosen


def _normalised(ids: List[str], embeddings: Mapping[str, Sequence[float]]) -> np.ndarray:
    """L2-normalised embeddings of ``ids``, shape ``(N, D)``."""
    rows = []
    for u in ids:
        if u not in embeddings:
            raise SelectionError(f"utterance {u!r}: no embedding")
        rows.append(np.asarray(embeddings[u], dtype=np.float64).ravel())
    lengths = sorted({len(r) for r in rows})
    if len(lengths) > 1:
        raise SelectionError(f"embeddings have different lengths: {lengths}")
    x = np.stack(rows)
    if not np.all(np.isfinite(x)):
        bad = ids[int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])]
        raise SelectionError(f"utterance {bad!r}: embedding is not finite")
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _quotas(sizes: List[int], capacity: float, pool: int, integer: bool) -> List[float]:
    """Shares of ``capacity`` proportional to ``sizes``; integers by largest remainder."""
    if not integer:
        return [capacity * s / pool for s in sizes]
    total = min(int(capacity), pool)
    exact = [total * s / pool for s in sizes]
    quotas = [math.floor(e) for e in exact]
    by_remainder = sorted(range(len(sizes)), key=lambda i: (quotas[i] - exact[i], i))
    for i in by_remainder[: total - sum(quotas)]:
        quotas[i] += 1
    return quotas

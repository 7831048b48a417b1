"""Clustering of pool embeddings for selection: k-means and typicality-gated ordering.

Numpy only, on arrays (ids are the caller's business), memory bounded by chunking: nothing
here builds an ``(N, K, D)`` or ``(N, N)`` array, so a pool of 100k utterances with 1,000
clusters stays within a few hundred MB.

Typicality-gated ordering follows TypiClust (Hacohen et al., "Active Learning on a Budget",
ICML 2022): with a small labeled set, the most uncertain points are atypical outliers a weak
model cannot learn from (for ASR: the shortest, noisiest clips), and picking dense, typical
points first does better. Here the acquisition score is kept but only trusted among the
typical half of each cluster.
"""

from typing import List

import numpy as np

from espnet_lp.errors import EspnetLPError

_KMEANS_ITERS = 50
_CHUNK_ELEMENTS = 1 << 24  # floats per distance block (128 MB in float64)


class ClusteringError(EspnetLPError, ValueError):
    """Bad input to k-means or typicality: shapes, k, or settings."""


def sq_dists(x: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances, shape ``(N, K)``, computed in row blocks.

    ``|x|^2 - 2 x.c + |c|^2``, clipped at 0 (rounding can make it slightly negative).
    """
    out = np.empty((len(x), len(centers)))
    c2 = (centers ** 2).sum(axis=1)
    step = max(1, _CHUNK_ELEMENTS // max(1, len(centers)))
    for i in range(0, len(x), step):
        block = x[i:i + step]
        d = (block ** 2).sum(axis=1)[:, None] - 2.0 * block @ centers.T + c2[None, :]
        out[i:i + step] = np.maximum(d, 0.0)
    return out


def kmeans(x: np.ndarray, k: int, seed: int) -> np.ndarray:
    """K-means with k-means++ initialisation, deterministic for a seed.

    Args:
        x: Points, shape ``(N, D)``.
        k: Number of clusters, 1 <= k <= N.
        seed: Seed of the initialisation.

    Returns:
        Cluster label of each point, shape ``(N,)``, values in ``[0, k)``.

    Raises:
        ClusteringError: ``x`` is not 2-D or ``k`` is out of range.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or not 1 <= k <= len(x):
        raise ClusteringError(f"kmeans needs (N, D) points and 1 <= k <= N, got {x.shape}, "
                              f"k={k}")
    rng = np.random.default_rng(seed)
    centers = np.empty((k, x.shape[1]))
    centers[0] = x[rng.integers(len(x))]
    # k-means++: the distance to the nearest chosen center, updated with each new one
    nearest = sq_dists(x, centers[:1])[:, 0]
    for c in range(1, k):
        total = nearest.sum()
        centers[c] = x[rng.choice(len(x), p=nearest / total if total > 0 else None)]
        nearest = np.minimum(nearest, sq_dists(x, centers[c:c + 1])[:, 0])
    labels = np.full(len(x), -1)
    for _ in range(_KMEANS_ITERS):
        new = sq_dists(x, centers).argmin(axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
        counts = np.bincount(labels, minlength=k)
        sums = np.zeros_like(centers)
        np.add.at(sums, labels, x)
        filled = counts > 0
        centers[filled] = sums[filled] / counts[filled, None]
    return labels


def typicality(x: np.ndarray, knn: int) -> np.ndarray:
    """TypiClust's typicality: 1 / the mean distance to the ``knn`` nearest other points.

    Args:
        x: Points, shape ``(N, D)``.
        knn: Neighbours (capped at N - 1).

    Returns:
        Shape ``(N,)``; higher = in a denser region. A single point gets 0.
    """
    n = len(x)
    k = min(knn, n - 1)
    if k < 1:
        return np.zeros(n)
    out = np.empty(n)
    step = max(1, _CHUNK_ELEMENTS // n)
    for i in range(0, n, step):
        d = np.sqrt(sq_dists(x[i:i + step], x))
        d[np.arange(len(d)), np.arange(i, i + len(d))] = np.inf  # not its own neighbour
        mean_knn = np.partition(d, k - 1, axis=1)[:, :k].mean(axis=1)
        out[i:i + step] = 1.0 / np.maximum(mean_knn, 1e-12)
    return out


def typical_order(x: np.ndarray, num_clusters: int, seed: int, knn: int = 20,
                  gate: float = 0.5) -> List[int]:
    """An order of the pool for selection: cluster by cluster, best-ranked typical points first.

    ``x`` must be in ranking order (row 0 = the best acquisition score). K-means splits the
    pool into ``num_clusters`` clusters (for a budget of B utterances, B clusters); within
    each, the ``gate`` fraction with the highest typicality (at least one point) is kept. The
    order then takes, level by level, the next-best-ranked kept point of every cluster,
    largest clusters first, so that a budget of one point per cluster gets the best-ranked
    typical point of each; after all kept points come the gated-out ones in ranking order.

    Args:
        x: Embeddings in ranking order, shape ``(N, D)`` (L2-normalised by the caller).
        num_clusters: Number of clusters, 1 <= num_clusters <= N.
        seed: Seed of k-means.
        knn: Neighbours of the typicality estimate.
        gate: Fraction of each cluster kept, in (0, 1].

    Returns:
        A permutation of ``range(N)``.

    Raises:
        ClusteringError: Bad shapes, ``num_clusters``, ``knn`` or ``gate``.
    """
    if isinstance(knn, bool) or not (isinstance(knn, int) and knn >= 1):
        raise ClusteringError(f"typicality knn must be an integer >= 1, got {knn!r}")
    if isinstance(gate, bool) or not (isinstance(gate, (int, float)) and 0 < gate <= 1):
        raise ClusteringError(f"typicality gate must be in (0, 1], got {gate!r}")
    labels = kmeans(x, num_clusters, seed)
    clusters = {}
    for i, c in enumerate(labels.tolist()):
        clusters.setdefault(c, []).append(i)  # ranking order within each cluster
    kept, rest = [], []
    # largest first; equal sizes: the cluster holding the better-ranked point first
    for members in sorted(clusters.values(), key=lambda m: (-len(m), m[0])):
        typ = typicality(x[members], knn)
        keep = max(1, int(round(gate * len(members))))
        by_typ = sorted(range(len(members)), key=lambda j: (-typ[j], j))
        inside = sorted(by_typ[:keep])
        kept.append([members[j] for j in inside])
        rest += [members[j] for j in sorted(by_typ[keep:])]
    order = [m[level] for level in range(max(len(m) for m in kept))
             for m in kept if level < len(m)]
    return order + sorted(rest)

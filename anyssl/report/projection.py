"""The math behind the report's pictures, in pure functions: a class-balanced sample of points,
their 2-D PCA and t-SNE maps, and cosine nearest neighbours.

No plotting here (``plots.py`` draws); scikit-learn's t-SNE is the only heavy call.
"""

from __future__ import annotations

import numpy as np

__all__ = ["TSNE_MAX_POINTS", "nearest_neighbours", "pca_2d", "pick_queries", "subsample",
           "tsne_2d"]

#: t-SNE is run on at most this many points (it is O(N log N) per iteration but still tens of
#: seconds on a CPU beyond a few thousand); larger maps are PCA only.
TSNE_MAX_POINTS = 3000


def subsample(labels: np.ndarray, limit: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of ``min(N, limit)`` rows, drawn per label in proportion to its count
    (largest remainders round up; every label keeps at least one row while ``limit`` allows),
    so small classes stay on the map.

    Shape:
        labels: ``N`` ints -> indices ``min(N, limit)``.
    """
    n = len(labels)
    if limit < 1:
        raise ValueError(f"the number of points must be at least 1, got {limit}")
    if n <= limit:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    share = counts * limit / n
    quota = np.maximum(1, np.floor(share)).astype(int)
    while quota.sum() > limit:  # more classes than points: drop from the largest quotas
        quota[np.argmax(quota)] -= 1
    spare = limit - int(quota.sum())  # largest remainders first, as far as a class has rows
    for c in np.argsort(-(share - np.floor(share)), kind="stable"):
        take = min(spare, int(counts[c] - quota[c]), 1)
        quota[c] += take
        spare -= take
    picked = [rng.choice(np.flatnonzero(labels == c), size=q, replace=False)
              for c, q in zip(classes, quota, strict=True) if q > 0]
    return np.sort(np.concatenate(picked))


def pca_2d(features: np.ndarray) -> np.ndarray:
    """The first two principal components of centred features (SVD), signs fixed so that each
    component's largest-magnitude loading is positive (the same map on every run).

    Shape:
        features: ``N x D`` -> ``N x 2`` (zeros in a missing component when D or N < 2).
    """
    x = np.asarray(features, dtype=np.float64)
    x = x - x.mean(axis=0, keepdims=True)
    out = np.zeros((len(x), 2))
    if len(x) < 2:
        return out
    _, _, vt = np.linalg.svd(x, full_matrices=False)  # vt: min(N, D) x D
    comps = vt[:2]
    signs = np.sign(comps[np.arange(len(comps)), np.abs(comps).argmax(axis=1)])
    out[:, : len(comps)] = x @ (comps * signs[:, None]).T
    return out


def tsne_2d(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """scikit-learn's t-SNE (van der Maaten & Hinton 2008) of the features, PCA-initialised,
    perplexity ``min(30, (N - 1) / 3)`` (it must stay below N).

    Shape:
        features: ``N x D`` with ``4 <= N <= TSNE_MAX_POINTS`` -> ``N x 2``.
    """
    from sklearn.manifold import TSNE

    n = len(features)
    if not 4 <= n <= TSNE_MAX_POINTS:
        raise ValueError(f"t-SNE maps 4 to {TSNE_MAX_POINTS} points, got {n}; use pca_2d")
    perplexity = float(min(30.0, (n - 1) / 3))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
    return np.asarray(tsne.fit_transform(np.asarray(features, dtype=np.float32)), dtype=float)


def nearest_neighbours(features: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` rows of ``features`` most cosine-similar to each query row, the query itself
    excluded, most similar first.

    Shape:
        features: ``N x D``; queries: ``Q`` row indices -> ``Q x min(k, N - 1)`` indices.
    """
    x = np.asarray(features, dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    sims = x[queries] @ x.T  # Q x N
    sims[np.arange(len(queries)), queries] = -np.inf  # a sample is not its own neighbour
    k = min(k, len(x) - 1)
    return np.argsort(-sims, axis=1, kind="stable")[:, :k]


def pick_queries(labels: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """``count`` row indices (fewer when N is smaller) spread over the labels: one from each
    label in turn, labels in sorted order, rows drawn at random within a label.

    Shape:
        labels: ``N`` ints -> ``min(count, N)`` indices.
    """
    rng = np.random.default_rng(seed)
    pools = [list(rng.permutation(np.flatnonzero(labels == c))) for c in np.unique(labels)]
    picked: list[int] = []
    while len(picked) < min(count, len(labels)):
        for pool in pools:
            if pool and len(picked) < count:
                picked.append(int(pool.pop(0)))
    return np.asarray(picked, dtype=np.int64)

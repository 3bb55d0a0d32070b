"""Groups to label in one action: k-means clusters of the embeddings, density groups of the map.

Each :class:`Group` carries its members nearest-the-centre first, so a caller can offer the
tight core of a cluster (purer) or all of it, and a seeded sample of at most one screen of
members to look at before naming it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._arrays import as_vectors
from .._config import CLUSTER_CORE_FRACTION, CLUSTER_SEED, GROUP_SAMPLE_SIZE, SPECTRAL_DIMS
from ..neighbors import KnnGraph, normalize

__all__ = ["Group", "density_groups", "graph_groups", "kmeans_groups", "spectral_embedding"]


@dataclass(frozen=True)
class Group:
    """A proposed group of items.

    Attributes
    ----------
    members : (M,) int64 item positions, most typical first (nearest the centre).
    sample : (S,) int64 positions to show, S <= ``GROUP_SAMPLE_SIZE``, a seeded random
        sample of ``members`` (random, not the most typical, so it reveals impurity).
    kind : ``"kmeans"`` or ``"density"``.
    """

    members: np.ndarray
    sample: np.ndarray
    kind: str

    @property
    def size(self) -> int:
        return int(self.members.size)

    def core(self, fraction: float = CLUSTER_CORE_FRACTION) -> np.ndarray:
        """The ``fraction`` (0, 1] of members nearest the centre (at least one): what to
        label when labelling the group as a whole, leaving its mixed outskirts to the
        models."""
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        return self.members[: max(1, round(self.size * fraction))]


def kmeans_groups(
    vectors: np.ndarray,
    *,
    n_clusters: int,
    exclude: np.ndarray | None = None,
    sample_size: int = GROUP_SAMPLE_SIZE,
    seed: int = CLUSTER_SEED,
    n_iter: int = 20,
) -> list[Group]:
    """FAISS spherical k-means of ``vectors`` into ``n_clusters`` groups, largest first.

    Parameters
    ----------
    vectors : (N, D) float32 embeddings (cosine geometry: rows are normalised).
    n_clusters : number of groups (clamped to the number of items clustered).
    exclude : optional (N,) bool, items to leave out (e.g. already human-labelled).
    sample_size : members sampled for viewing per group (default 12).
    seed : k-means and sampling seed.
    n_iter : k-means iterations.

    Returns
    -------
    list of :class:`Group`, by decreasing size; empty clusters are dropped.
    """
    import faiss

    x = normalize(as_vectors(vectors))
    pos = np.arange(x.shape[0]) if exclude is None else np.flatnonzero(~np.asarray(exclude, bool))
    if n_clusters < 1:
        raise ValueError(f"n_clusters must be >= 1, got {n_clusters}")
    if pos.size == 0:
        return []
    k = int(min(n_clusters, pos.size))
    sub = np.ascontiguousarray(x[pos])
    km = faiss.Kmeans(sub.shape[1], k, niter=n_iter, seed=seed, spherical=True,
                      min_points_per_centroid=1, max_points_per_centroid=100_000)
    km.train(sub)
    sims, assign = km.index.search(sub, 1)
    return _groups(pos, assign[:, 0], -sims[:, 0], "kmeans", sample_size, seed)


def spectral_embedding(graph: KnnGraph, *, dims: int = SPECTRAL_DIMS, seed: int = CLUSTER_SEED
                       ) -> np.ndarray:
    """(N, dims) float32 coordinates from the top eigenvectors of the normalised kNN graph.

    The leading eigenvectors of ``D^-1/2 W D^-1/2`` (the trivial first one dropped), scaled
    by their eigenvalues: items joined by many graph paths land close, so k-means on these
    coordinates follows the manifold the neighbours trace rather than straight-line
    distance (Ng, Jordan & Weiss, 2001).
    """
    import scipy.sparse.linalg as sla

    from .propagate import spreading_operator

    s = spreading_operator(graph)
    n = s.shape[0]
    k = int(min(dims + 1, n - 2))
    if k < 2:
        raise ValueError(f"a spectral embedding needs at least 4 items, got {n}")
    v0 = np.random.default_rng(seed).standard_normal(n)
    vals, vecs = sla.eigsh(s, k=k, which="LA", tol=1e-4, v0=v0)
    order = np.argsort(-vals)[1:]
    return (vecs[:, order] * vals[order]).astype(np.float32)


def graph_groups(
    graph: KnnGraph,
    *,
    n_clusters: int,
    dims: int = SPECTRAL_DIMS,
    exclude: np.ndarray | None = None,
    sample_size: int = GROUP_SAMPLE_SIZE,
    seed: int = CLUSTER_SEED,
    embedding: np.ndarray | None = None,
) -> list[Group]:
    """k-means groups of the :func:`spectral_embedding` of the kNN graph, most diverse first.

    Groups that follow the graph are purer than k-means on raw vectors where classes are
    curved (on MNIST digits, 96% vs 91% for the most typical half of 40 groups). The order
    is a farthest-first walk over the group centres starting from the largest group, so the
    first few groups proposed cover the map rather than one dense region.

    ``embedding`` reuses a :func:`spectral_embedding` of this graph computed before (it
    does not change with labels), e.g. to regroup only the items not labelled yet.
    """
    emb = spectral_embedding(graph, dims=dims, seed=seed) if embedding is None else embedding
    if emb.shape[0] != graph.n:
        raise ValueError(f"embedding has {emb.shape[0]} rows for a graph of {graph.n} items")
    groups = kmeans_groups(emb, n_clusters=n_clusters, exclude=exclude,
                           sample_size=sample_size, seed=seed)
    return _farthest_first(normalize(emb), groups)


def _farthest_first(x: np.ndarray, groups: list[Group]) -> list[Group]:
    if len(groups) < 3:
        return groups
    centres = normalize(np.stack([x[g.members].mean(0) for g in groups]))
    order = [0]
    dist = 1.0 - centres @ centres[0]
    dist[0] = -np.inf
    for _ in range(len(groups) - 1):
        j = int(np.argmax(dist))
        order.append(j)
        dist = np.minimum(dist, 1.0 - centres @ centres[j])
        dist[order] = -np.inf
    return [groups[i] for i in order]


def density_groups(
    layout: np.ndarray,
    *,
    min_size: int = 25,
    exclude: np.ndarray | None = None,
    sample_size: int = GROUP_SAMPLE_SIZE,
    seed: int = CLUSTER_SEED,
) -> list[Group]:
    """Dense regions of the 2-D map (HDBSCAN), largest first; noise points are left out.

    Parameters
    ----------
    layout : (N, 2) float32 map coordinates (from the layout step).
    min_size : smallest group worth proposing (HDBSCAN ``min_cluster_size``).
    exclude, sample_size, seed : as in :func:`kmeans_groups`.
    """
    from sklearn.cluster import HDBSCAN

    xy = np.asarray(layout, np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"layout must be (N, 2) map coordinates, got shape {xy.shape}")
    pos = np.arange(xy.shape[0]) if exclude is None else np.flatnonzero(~np.asarray(exclude, bool))
    if pos.size < max(2, min_size):
        return []
    sub = xy[pos]
    model = HDBSCAN(min_cluster_size=min_size, copy=True).fit(sub)
    keep = model.labels_ >= 0
    centres = {c: sub[model.labels_ == c].mean(0) for c in np.unique(model.labels_[keep])}
    dist = np.array([np.linalg.norm(sub[i] - centres[c]) if c >= 0 else np.inf
                     for i, c in enumerate(model.labels_)])
    return _groups(pos[keep], model.labels_[keep], dist[keep], "density", sample_size, seed)


def _groups(pos: np.ndarray, assign: np.ndarray, dist: np.ndarray, kind: str,
            sample_size: int, seed: int) -> list[Group]:
    rng = np.random.default_rng(seed)
    out = []
    for c in np.unique(assign):
        m = assign == c
        members = pos[m][np.argsort(dist[m], kind="stable")].astype(np.int64)
        sample = rng.choice(members, size=min(sample_size, members.size), replace=False)
        out.append(Group(members=members, sample=np.sort(sample).astype(np.int64), kind=kind))
    out.sort(key=lambda g: -g.size)
    return out

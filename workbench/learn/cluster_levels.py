"""Two levels of clusters for a map that names them: coarse groups made by merging fine
clusters, and where on the map to write a group's name."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..neighbors import normalize

__all__ = ["coarse_groups", "name_positions"]


def coarse_groups(vectors: np.ndarray, assign: np.ndarray, n_groups: int,
                  n_coarse: int) -> np.ndarray:
    """(G,) int64 the coarse group of each fine group: the fine groups' centroids (mean
    normalised vector) merged by average-linkage agglomerative clustering on the cosine
    distance, cut at ``n_coarse`` groups; coarse ids are numbered in order of their first
    fine group, so coarse group 0 holds fine group 0."""
    from scipy.cluster.hierarchy import fcluster, linkage

    assign = np.asarray(assign, np.int64)
    if n_groups <= max(1, n_coarse):
        return np.arange(n_groups, dtype=np.int64)
    x = normalize(np.asarray(vectors, np.float32))
    centres = np.zeros((n_groups, x.shape[1]), np.float64)
    np.add.at(centres, assign[assign >= 0], x[assign >= 0])
    centres = normalize(centres.astype(np.float32) + 1e-12)
    tree = linkage(centres.astype(np.float64), method="average", metric="cosine")
    raw = fcluster(tree, t=n_coarse, criterion="maxclust")
    _, first = np.unique(raw, return_index=True)
    order = {raw[i]: k for k, i in enumerate(sorted(first))}
    return np.array([order[r] for r in raw], np.int64)


def name_positions(xy: np.ndarray, groups: Sequence[np.ndarray]) -> np.ndarray:
    """(G, 2) float32 where to write each group's name on the map: the member nearest the
    median of its members' map coordinates (on the data even for a curved group)."""
    xy = np.asarray(xy, np.float32)
    out = np.zeros((len(groups), 2), np.float32)
    for g, members in enumerate(groups):
        m = np.asarray(members, np.int64)
        if m.size == 0:
            continue
        pts = xy[m]
        mid = np.median(pts, axis=0)
        out[g] = pts[int(np.argmin(((pts - mid) ** 2).sum(1)))]
    return out

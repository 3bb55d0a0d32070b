"""Groups to label in one action, on real data (digits)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.manifold import TSNE

from workbench.learn import density_groups, graph_groups, kmeans_groups, spectral_embedding
from workbench.neighbors import build_knn_graph


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    return x.astype(np.float32), y.astype(np.int64)


def purity(groups, y, fraction=1.0):
    hit = tot = 0
    for g in groups:
        m = g.core(fraction)
        hit += np.bincount(y[m]).max()
        tot += m.size
    return hit / tot


def test_kmeans_groups_are_pure_and_partition(digits):
    x, y = digits
    groups = kmeans_groups(x, n_clusters=20)
    members = np.concatenate([g.members for g in groups])
    assert np.array_equal(np.sort(members), np.arange(y.size))  # a partition
    assert [g.size for g in groups] == sorted((g.size for g in groups), reverse=True)
    assert purity(groups, y) > 0.8  # one label per group is right for most members
    assert purity(groups, y, 0.5) >= purity(groups, y)  # the typical half is purer
    for g in groups:
        assert g.sample.size == min(12, g.size)
        assert np.isin(g.sample, g.members).all()
        assert g.kind == "kmeans"
    again = kmeans_groups(x, n_clusters=20)
    assert all(np.array_equal(a.members, b.members) for a, b in zip(groups, again, strict=True))


def test_exclude_leaves_items_out(digits):
    x, _ = digits
    done = np.zeros(x.shape[0], bool)
    done[:1000] = True
    groups = kmeans_groups(x, n_clusters=10, exclude=done)
    assert all((g.members >= 1000).all() for g in groups)
    assert kmeans_groups(x, n_clusters=5, exclude=np.ones(x.shape[0], bool)) == []
    with pytest.raises(ValueError, match="n_clusters"):
        kmeans_groups(x, n_clusters=0)


def test_graph_groups_follow_the_graph(digits):
    x, y = digits
    g = build_knn_graph(x, k=15)
    emb = spectral_embedding(g, dims=16)
    assert emb.shape == (y.size, 16) and emb.dtype == np.float32
    groups = graph_groups(g, n_clusters=20, embedding=emb)
    assert purity(groups, y, 0.5) > 0.9
    # Farthest-first order: the first ten groups already cover most classes.
    first = {int(np.bincount(y[gr.members]).argmax()) for gr in groups[:10]}
    assert len(first) >= 7
    with pytest.raises(ValueError, match="rows"):
        graph_groups(g, n_clusters=5, embedding=emb[:10])


def test_density_groups_on_a_map(digits):
    x, y = digits
    # A 2-D map in which digits form islands (t-SNE here: the project's UMAP compiles numba).
    xy = TSNE(random_state=0, init="pca", max_iter=250).fit_transform(x).astype(np.float32)
    groups = density_groups(xy, min_size=40)
    assert groups
    members = np.concatenate([g.members for g in groups])
    assert np.unique(members).size == members.size  # disjoint; noise left out
    assert all(g.size >= 40 and g.kind == "density" for g in groups)
    assert len(groups) >= 5
    assert purity(groups, y) > 0.7  # chance is ~0.1
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        density_groups(x)

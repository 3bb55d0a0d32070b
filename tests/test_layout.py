"""The 2-D map (workbench.layout). Only the slow test compiles umap-learn's numba code."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.manifold import trustworthiness

from workbench.layout import (
    _save_layout,
    compute_layout,
    map_graph,
    quick_layout,
    scale_to_unit,
    warm_up,
)
from workbench.learn import propagate
from workbench.neighbors import build_knn_graph


def test_scale_to_unit_keeps_aspect_and_range():
    c = np.array([[0, 0], [10, 2], [4, 1]], dtype=np.float64)
    out = scale_to_unit(c)
    assert out.dtype == np.float32
    assert out.min() >= -1 and out.max() <= 1
    np.testing.assert_allclose(out[:, 0].min(), -1)
    np.testing.assert_allclose(out[:, 0].max(), 1)
    # y spans 2 of x's 10 units, so 0.4 of the [-1, 1] width.
    np.testing.assert_allclose(out[:, 1].max() - out[:, 1].min(), 0.4, atol=1e-6)
    assert np.isfinite(scale_to_unit(np.zeros((3, 2)))).all()  # a single point stays finite


def test_layout_rejects_mismatched_or_tiny_input():
    x = np.random.default_rng(0).standard_normal((50, 4)).astype(np.float32)
    g = build_knn_graph(x)
    with pytest.raises(ValueError, match="graph has 50 items but the vectors 40"):
        compute_layout(g, x[:40])
    tiny = x[:3]
    with pytest.raises(ValueError, match="at least 5 items"):
        quick_layout(build_knn_graph(tiny), tiny)


def test_map_graph_is_the_exact_neighbours_on_the_map():
    xy = np.random.default_rng(0).random((500, 2))
    g = map_graph(xy, k=7)
    assert g.indices.shape == (500, 7) and g.k == 7
    d = ((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    expected = np.sort(np.argsort(d, axis=1)[:, :7], axis=1)
    np.testing.assert_array_equal(np.sort(g.indices, axis=1), expected)
    assert (g.similarities == 1).all()
    # Duplicated points and fewer items than k: self never listed, the rest padded with -1.
    dup = map_graph(np.zeros((4, 2)), k=6)
    assert (dup.indices[:, 3:] == -1).all()
    for i in range(4):
        assert set(dup.indices[i, :3].tolist()) == set(range(4)) - {i}
    with pytest.raises(ValueError, match=r"\(N, 2\) map coordinates"):
        map_graph(np.zeros((5, 3)))
    with pytest.raises(ValueError, match="NaN"):
        map_graph(np.array([[0.0, np.nan], [1.0, 1.0]]))


@pytest.mark.slow
def test_layout_from_graph_is_faithful_seeded_and_cached(tmp_path):
    thread = warm_up()  # compiles numba in the background, as a session start does
    assert thread.daemon
    assert warm_up() is thread  # a second call does not compile again
    x, _ = load_digits(return_X_y=True)
    x = x[:300].astype(np.float32)
    g = build_knn_graph(x)
    thread.join()

    quick = quick_layout(g, x)
    assert quick.shape == (300, 2)

    coords = compute_layout(g, x, seed=3, cache_dir=tmp_path)
    assert coords.shape == (300, 2)
    assert coords.dtype == np.float32
    assert coords.min() >= -1 and coords.max() <= 1
    assert np.isclose(np.abs(coords).max(), 1)
    assert trustworthiness(x, coords, n_neighbors=10) > 0.9
    assert trustworthiness(x, quick, n_neighbors=10) > 0.85

    # Same seed: the same map, recomputed or read from the cache.
    assert np.array_equal(compute_layout(g, x, seed=3), coords)
    cached = list(tmp_path.glob("layout-*.npy"))
    assert len(cached) == 1
    assert np.array_equal(compute_layout(g, x, seed=3, cache_dir=tmp_path), coords)
    _save_layout(cached[0], np.zeros((300, 2), np.float32))  # prove the cache is what is read
    assert not compute_layout(g, x, seed=3, cache_dir=tmp_path).any()
    np.save(cached[0], np.full((300, 2), 0.5, np.float32))  # not by the cache: recomputed
    assert np.array_equal(compute_layout(g, x, seed=3, cache_dir=tmp_path), coords)
    assert not np.array_equal(compute_layout(g, x, seed=4, cache_dir=tmp_path), coords)

    # Spreading labels over the map's neighbours: 3 labels per digit reach most items.
    y = load_digits(return_X_y=True)[1][:300]
    lab = np.full(300, -1)
    rng = np.random.default_rng(0)
    for c in range(10):
        lab[rng.choice(np.flatnonzero(y == c), 3, replace=False)] = c
    pred = propagate(map_graph(coords), lab)
    assert (pred.label[lab < 0] == y[lab < 0]).mean() > 0.8  # chance is 0.1

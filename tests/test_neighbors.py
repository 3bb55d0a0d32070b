"""FAISS index, kNN graph, search, near-duplicates and outliers (workbench.neighbors)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from workbench._config import GRAPH_TARGET_RECALL
from workbench.neighbors import (
    KnnGraph,
    NeighborIndex,
    build_knn_graph,
    near_duplicates,
    normalize,
    outlier_scores,
    update_knn_graph,
)
from workbench.neighbors import build as build_module


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    return d.data.astype(np.float32), d.target


def clustered(n=3000, dim=32, centres=12, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, dim)).astype(np.float32)
    y = rng.integers(0, centres, n)
    x = c[y] + 0.35 * rng.standard_normal((n, dim)).astype(np.float32)
    return x, y


def brute_force(x, k):
    u = normalize(x)
    s = u @ u.T
    np.fill_diagonal(s, -np.inf)
    idx = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(s, idx, axis=1)


# -- graph -----------------------------------------------------------------------------------


def test_exact_graph_matches_brute_force_and_excludes_self():
    x, _ = clustered(n=400, dim=16)
    g = build_knn_graph(x, k=10)
    idx, sims = brute_force(x, 10)
    assert g.indices.shape == (400, 10)
    assert g.indices.dtype == np.int64
    assert g.similarities.dtype == np.float32
    assert not (g.indices == np.arange(400)[:, None]).any()
    assert np.array_equal(g.indices, idx)
    np.testing.assert_allclose(g.similarities, sims, atol=1e-5)
    assert (np.diff(g.similarities, axis=1) <= 1e-6).all()  # nearest first
    assert g.recall_estimate == 1.0


def test_csr_is_symmetric_without_self_loops():
    x, _ = clustered(n=500, dim=16)
    w = build_knn_graph(x).to_csr()
    assert w.shape == (500, 500)
    assert abs(w - w.T).max() == 0
    assert w.diagonal().sum() == 0
    assert (w.getnnz(axis=1) >= 15).all()  # every item keeps its own k edges


def test_umap_knn_puts_each_item_first_at_distance_zero():
    x, _ = clustered(n=200, dim=8)
    g = build_knn_graph(x, k=7)
    knn_i, knn_d = g.umap_knn()
    assert knn_i.shape == knn_d.shape == (200, 8)
    assert np.array_equal(knn_i[:, 0], np.arange(200))
    assert (knn_d[:, 0] == 0).all()
    np.testing.assert_allclose(knn_d[:, 1:], 1 - g.similarities, atol=1e-6)


def test_small_collection_pads_rows():
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    g = build_knn_graph(x, k=5)
    assert (g.indices[:, 3:] == -1).all()
    assert (g.indices[:, :3] >= 0).all()


def _recall(approx, exact):
    hits = sum(np.intersect1d(a, e).size for a, e in zip(approx.indices, exact.indices))
    return hits / exact.indices.size


def test_ivf_graph_reaches_target_recall():
    x, _ = clustered(n=6000, dim=32, centres=30)
    approx = build_knn_graph(x, method="ivf", seed=1)
    exact = build_knn_graph(x, method="exact")
    recall = _recall(approx, exact)
    assert GRAPH_TARGET_RECALL >= 0.99
    assert recall >= 0.99
    assert approx.recall_estimate >= 0.99
    assert abs(approx.recall_estimate - recall) < 0.02  # the sample estimate is honest
    assert not (approx.indices == np.arange(6000)[:, None]).any()
    # Exact similarities of the ids found, nearest first.
    u = normalize(x)
    sims = np.einsum("ij,ikj->ik", u, u[approx.indices])
    np.testing.assert_allclose(approx.similarities, sims, atol=1e-5)
    assert (np.diff(approx.similarities, axis=1) <= 1e-6).all()


def test_ivf_graph_on_uneven_clusters_reaches_099():
    # Clusters of very different sizes and spreads (uneven k-means cells, split by the build).
    rng = np.random.default_rng(3)
    sizes = [4000, 2000, 1000, 500, 250, 125, 125]
    c = rng.standard_normal((len(sizes), 48)).astype(np.float32)
    x = np.vstack([c[j] + (0.2 + 0.1 * j) * rng.standard_normal((m, 48)).astype(np.float32)
                   for j, m in enumerate(sizes)])
    approx = build_knn_graph(x, method="ivf", target_recall=0.99)
    assert _recall(approx, build_knn_graph(x, method="exact")) >= 0.99


def test_ivf_graph_is_the_same_with_one_and_two_threads():
    x, _ = clustered(n=6000, dim=32, centres=30)
    one = build_knn_graph(x, method="ivf", threads=1)
    two = build_knn_graph(x, method="ivf", threads=2)
    assert np.array_equal(one.indices, two.indices)
    assert np.array_equal(one.similarities, two.similarities)
    assert one.recall_estimate == two.recall_estimate


def test_cheap_cell_pass_with_neighbour_rounds_reaches_target(monkeypatch):
    # A pass at recall ~0.6, then neighbour-of-neighbour rounds (with the full pass behind).
    monkeypatch.setattr(build_module, "GRAPH_CELL_PASS_RECALL", 0.6)
    x, _ = clustered(n=6000, dim=32, centres=30)
    exact = build_knn_graph(x, method="exact")
    one = build_knn_graph(x, method="ivf", threads=1)
    two = build_knn_graph(x, method="ivf", threads=2)
    assert np.array_equal(one.indices, two.indices)
    assert _recall(one, exact) >= 0.985  # stopped on the sample's recall: within its noise
    assert abs(one.recall_estimate - _recall(one, exact)) < 0.02
    assert not (one.indices == np.arange(6000)[:, None]).any()


def test_neighbour_round_without_numba_finds_what_the_compiled_one_finds(monkeypatch):
    from workbench.neighbors import _refine

    x, _ = clustered(n=1500, dim=16)
    u = normalize(x)
    exact = build_knn_graph(x, method="exact")
    start_i = np.roll(exact.indices, 5, axis=1)[:, :10]  # partial, shuffled rows
    start_s = np.einsum("ij,ikj->ik", u, u[start_i]).astype(np.float32)
    order = np.argsort(-start_s, axis=1, kind="stable")
    start_i = np.take_along_axis(start_i, order, axis=1)
    start_s = np.take_along_axis(start_s, order, axis=1)
    compiled = _refine.refine_graph(u, start_i, start_s, max_reverse=5, threads=2)
    monkeypatch.setattr(_refine, "_KERNEL", [None])
    plain = _refine.refine_graph(u, start_i, start_s, max_reverse=5, threads=1)
    # The same neighbours; near-ties (products summed in another order) may swap places.
    assert np.array_equal(np.sort(compiled[0], axis=1), np.sort(plain[0], axis=1))
    np.testing.assert_allclose(compiled[1], plain[1], atol=1e-5)
    assert compiled[2] == plain[2] > 0


def test_graph_cache_is_reused_and_keyed_by_content(tmp_path):
    x, _ = clustered(n=300, dim=8)
    g1 = build_knn_graph(x, cache_dir=tmp_path)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 3  # indices, similarities, recall estimate
    g2 = build_knn_graph(x, cache_dir=tmp_path)
    assert np.array_equal(g1.indices, g2.indices)
    assert g2.recall_estimate == 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == files  # nothing rebuilt
    x2 = x.copy()
    x2[0] += 1.0
    build_knn_graph(x2, cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 6  # changed content, new entry
    build_knn_graph(x, k=5, cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 9  # changed k, new entry


def test_graph_save_load_roundtrip(tmp_path):
    x, _ = clustered(n=100, dim=8)
    g = build_knn_graph(x)
    g.save(tmp_path / "g")
    h = KnnGraph.load(tmp_path / "g")
    assert h.recall_estimate == 1.0
    assert np.array_equal(g.indices, h.indices)
    assert np.array_equal(g.similarities, h.similarities)


# -- incremental -----------------------------------------------------------------------------


@pytest.mark.parametrize("n_old", [3, 1200])
def test_incremental_add_equals_rebuild(n_old):
    x, _ = clustered(n=1500, dim=16)
    index = NeighborIndex.build(x[:n_old])
    graph = build_knn_graph(x[:n_old])
    # Two successive adds, as a growing collection would see them.
    graph = update_knn_graph(graph, index, x[n_old:1400])
    graph = update_knn_graph(graph, index, x[1400:])
    rebuilt = build_knn_graph(x)
    assert index.n == 1500
    assert np.array_equal(graph.indices, rebuilt.indices)
    np.testing.assert_allclose(graph.similarities, rebuilt.similarities, atol=1e-5)


def test_incremental_add_with_ivf_index_keeps_recall():
    x, _ = clustered(n=5000, dim=32, centres=30)
    index = NeighborIndex.build(x[:4500], kind="ivf")
    graph = build_knn_graph(x[:4500], method="ivf")
    graph = update_knn_graph(graph, index, x[4500:])
    exact = build_knn_graph(x)
    hits = sum(np.intersect1d(a, e).size for a, e in zip(graph.indices, exact.indices))
    assert hits / exact.indices.size >= 0.95


def test_update_rejects_mismatched_index():
    x, _ = clustered(n=100, dim=8)
    graph = build_knn_graph(x)
    index = NeighborIndex.build(x[:50])
    with pytest.raises(ValueError, match="index holds 50 items but the graph 100"):
        update_knn_graph(graph, index, x[:3])


# -- search on a real set --------------------------------------------------------------------


def test_more_like_this_on_digits_returns_same_digit(digits):
    x, y = digits
    index = NeighborIndex.build(x)
    items = np.random.default_rng(0).choice(len(y), 100, replace=False)
    same = []
    for i in items:
        idx, sims = index.more_like_this(int(i), 10)
        assert i not in idx
        assert (np.diff(sims) <= 1e-6).all()
        same.append((y[idx] == y[i]).mean())
    assert np.mean(same) > 0.9


def test_more_like_this_for_several_items_excludes_them(digits):
    x, y = digits
    index = NeighborIndex.build(x)
    threes = np.flatnonzero(y == 3)[:5]
    idx, _ = index.more_like_this(threes, 20)
    assert not np.isin(idx, threes).any()
    assert (y[idx] == 3).mean() > 0.9


def test_search_vectors_finds_the_item_a_query_describes(digits):
    x, _ = digits
    index = NeighborIndex.build(x)
    rng = np.random.default_rng(0)
    q = x[[10, 500]] + 0.5 * rng.standard_normal((2, x.shape[1])).astype(np.float32)
    idx, sims = index.search_vectors(q, 5)
    assert idx.shape == sims.shape == (2, 5)
    assert list(idx[:, 0]) == [10, 500]
    idx1, _ = index.search_vectors(x[7], 3)  # a single (D,) vector works too
    assert idx1[0, 0] == 7


def test_ivf_index_search_and_more_like_this(digits):
    x, y = digits
    index = NeighborIndex.build(x, kind="ivf")
    assert index.kind == "ivf"
    assert index.recall_estimate >= 0.95
    idx, _ = index.more_like_this(0, 10)
    assert 0 not in idx
    assert (y[idx] == y[0]).mean() >= 0.8


def test_auto_kind_switches_to_ivf_above_threshold():
    x, _ = clustered(n=2000, dim=16)
    assert NeighborIndex.build(x, exact_max_items=5000).kind == "flat"
    assert NeighborIndex.build(x, exact_max_items=1000).kind == "ivf"


def test_index_save_load_and_cache(tmp_path, digits):
    x, _ = digits
    index = NeighborIndex.build(x, kind="ivf", cache_dir=tmp_path)
    saved = sorted(p.name for p in tmp_path.iterdir())
    assert len(saved) == 2  # the .faiss file and its .json
    again = NeighborIndex.build(x, kind="ivf", cache_dir=tmp_path)
    assert again.nprobe == index.nprobe
    a, _ = index.search(x[:20], 5)
    b, _ = again.search(x[:20], 5)
    assert np.array_equal(a, b)
    path = tmp_path / "mine.faiss"
    index.save(path)
    loaded = NeighborIndex.load(path)
    assert loaded.n == len(x)
    assert loaded.kind == "ivf"
    loaded.add(x[:2])  # a loaded index keeps growing
    (tmp_path / "mine.faiss.json").write_text('{"version": 1, "n": 3}')
    with pytest.raises(ValueError, match="does not match its metadata"):
        NeighborIndex.load(path)
    with pytest.raises(FileNotFoundError, match="build one"):
        NeighborIndex.load(tmp_path / "missing.faiss")


# -- duplicates and outliers -----------------------------------------------------------------


def test_near_duplicates_finds_planted_groups():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 64)).astype(np.float32)
    x[10] = x[3] + 0.01 * rng.standard_normal(64)
    x[20] = x[3] + 0.01 * rng.standard_normal(64)
    x[200] = x[150] + 0.01 * rng.standard_normal(64)
    groups = near_duplicates(build_knn_graph(x), threshold=0.97)
    assert [g.tolist() for g in groups] == [[3, 10, 20], [150, 200]]
    assert near_duplicates(build_knn_graph(x), threshold=0.99999999) == []


def test_outlier_scores_rank_planted_outlier_first():
    x, _ = clustered(n=500, dim=16)
    x[42] = np.random.default_rng(1).standard_normal(16) * 10
    g = build_knn_graph(x)
    scores = outlier_scores(g)
    assert scores.shape == (500,)
    assert scores.dtype == np.float32
    assert int(np.argmax(scores)) == 42
    np.testing.assert_allclose(scores, 1 - g.similarities[:, -1], atol=1e-6)


# -- bad input -------------------------------------------------------------------------------


def test_bad_input_gives_clear_errors():
    x, _ = clustered(n=100, dim=8)
    index = NeighborIndex.build(x)
    with pytest.raises(ValueError, match="have 5 dimensions but the index holds 8"):
        index.add(np.ones((3, 5), np.float32))
    with pytest.raises(ValueError, match="have 5 dimensions but the index holds 8"):
        index.search(np.ones((1, 5), np.float32), 3)
    bad = x[:3].copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="row 1 contains NaN"):
        index.add(bad)
    with pytest.raises(ValueError, match="row 1 contains NaN"):
        build_knn_graph(bad)
    bad[1, 2] = np.inf
    with pytest.raises(ValueError, match="NaN or infinity"):
        index.search(bad, 3)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        index.search(x[:1], 0)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        build_knn_graph(x, k=0)
    with pytest.raises(ValueError, match="outside the index"):
        index.more_like_this(100)
    with pytest.raises(ValueError, match="no items given"):
        index.more_like_this([])
    with pytest.raises(ValueError, match="at least 2 items"):
        build_knn_graph(x[:1])
    with pytest.raises(ValueError, match="method must be"):
        build_knn_graph(x, method="lsh")
    with pytest.raises(ValueError, match="kind must be"):
        NeighborIndex.build(x, kind="hnsw")
    assert index.n == 100  # failed adds left the index unchanged


def test_empty_index_says_to_add_first():
    index = NeighborIndex(8)
    assert index.n == 0
    with pytest.raises(ValueError, match="index is empty: add vectors"):
        index.search(np.ones((1, 8), np.float32), 3)
    index.add(np.eye(8, dtype=np.float32))
    idx, sims = index.search(np.eye(8, dtype=np.float32)[:1], 3)
    assert idx[0, 0] == 0
    assert sims[0, 0] == pytest.approx(1.0)
    assert (idx[0, 1:] >= 1).all()

"""Label spreading on real data (scikit-learn digits)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as sla
from sklearn.datasets import load_digits

from workbench.learn import LabelSpreader, NotEnoughLabels, propagate, spreading_operator
from workbench.neighbors import build_knn_graph


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    x = x.astype(np.float32)
    return x, y.astype(np.int64), build_knn_graph(x, k=15)


def few_labels(y: np.ndarray, per_class: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lab = np.full(y.size, -1, np.int64)
    for c in np.unique(y):
        idx = rng.choice(np.flatnonzero(y == c), per_class, replace=False)
        lab[idx] = c
    return lab


def test_spreading_beats_chance_by_far(digits):
    _x, y, g = digits
    lab = few_labels(y, 3)
    p = propagate(g, lab)
    rest = lab < 0
    assert (p.label[rest] == y[rest]).mean() > 0.85  # chance is 0.10
    assert p.proba.shape == (y.size, 10) and p.proba.dtype == np.float32
    np.testing.assert_allclose(p.proba.sum(1), 1.0, atol=1e-5)
    assert p.converged and p.source == "propagated"
    # Confidence means something: the confident half is more accurate than the rest.
    order = np.argsort(-p.confidence[rest])
    hit = p.label[rest][order] == y[rest][order]
    assert hit[: hit.size // 2].mean() > hit[hit.size // 2 :].mean()


def test_matches_direct_solve(digits):
    _, y, g = digits
    lab = few_labels(y, 2)
    alpha = 0.9
    p = propagate(g, lab, alpha=alpha, tol=1e-10, max_iter=2000)
    s = spreading_operator(g)
    classes = np.unique(lab[lab >= 0])
    col = np.searchsorted(classes, lab[lab >= 0])
    counts = np.bincount(col)
    b = np.zeros((y.size, classes.size))
    b[np.flatnonzero(lab >= 0), col] = (1 - alpha) * counts.mean() / counts[col]
    a = (sp.identity(y.size) - alpha * s).tocsc()
    direct = np.column_stack([sla.spsolve(a, b[:, j]) for j in range(classes.size)])
    np.testing.assert_allclose(p.scores, direct, atol=1e-7)


def test_warm_start_same_answer_fewer_steps_and_new_class(digits):
    _, y, g = digits
    lab = few_labels(y, 3)
    lab[y == 9] = -1  # class 9 appears only in the second round
    first = propagate(g, lab)
    assert 9 not in first.classes
    lab2 = lab.copy()
    lab2[np.flatnonzero(y == 9)[:3]] = 9
    cold = propagate(g, lab2)
    warm = propagate(g, lab2, warm_start=first)
    assert 9 in warm.classes
    np.testing.assert_array_equal(warm.label, cold.label)
    # A small change: the previous answer is a better start than the labels alone.
    lab3 = lab2.copy()
    lab3[np.flatnonzero((lab2 < 0) & (y == 4))[0]] = 4
    assert propagate(g, lab3, warm_start=cold).n_iter < propagate(g, lab3).n_iter


def test_estimator_keeps_operator_and_warm_starts(digits):
    _, y, g = digits
    est = LabelSpreader(g)
    est.fit(few_labels(y, 2))
    est.fit(few_labels(y, 3))
    assert est.predict_proba().shape == (y.size, 10)
    np.testing.assert_array_equal(est.predictions_.label, propagate(g, few_labels(y, 3)).label)
    np.testing.assert_array_equal(est.classes_, np.arange(10))


@pytest.mark.parametrize(
    ("labelled", "message"),
    [([], "got 0 labelled item"), ([0], "got 1 labelled item"), ([0, 10, 20], "1 class")],
)
def test_too_few_labels_say_what_is_needed(digits, labelled, message):
    _, y, g = digits
    lab = np.full(y.size, -1, np.int64)
    lab[labelled] = 0
    with pytest.raises(NotEnoughLabels, match=message) as info:
        propagate(g, lab)
    assert "at least 2 classes" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_bad_inputs(digits):
    _, y, g = digits
    with pytest.raises(ValueError, match="one per item"):
        propagate(g, np.zeros(5, np.int64))
    with pytest.raises(TypeError, match="integer class ids"):
        propagate(g, np.zeros(y.size, np.float32))
    with pytest.raises(ValueError, match="alpha"):
        propagate(g, few_labels(y, 1), alpha=1.0)
    with pytest.raises(TypeError, match="KnnGraph"):
        propagate(np.eye(3), np.array([0, 1, -1]))


def test_operator_matches_the_graph_affinity(digits):
    _, _, g = digits
    from workbench.neighbors import KnnGraph

    rng = np.random.default_rng(0)
    small = build_knn_graph(rng.standard_normal((6, 4)).astype(np.float32), k=15)
    assert (small.indices < 0).any()  # padded rows: fewer items than k
    for graph in (g, small, KnnGraph(g.indices, -g.similarities)):
        w = graph.to_csr(symmetric=True).astype(np.float64)
        deg = np.asarray(w.sum(axis=1)).ravel()
        inv = np.where(deg > 0, 1.0 / np.sqrt(np.where(deg > 0, deg, 1.0)), 0.0)
        expected = sp.diags(inv) @ w @ sp.diags(inv)
        s = spreading_operator(graph)
        assert s.dtype == np.float64 and s.shape == w.shape
        assert abs(s - expected).max() < 1e-12


def test_cache_friendly_order_changes_no_answer(digits, monkeypatch):
    # The solver reorders items (reverse Cuthill-McKee) from 4,096 items up; force it here.
    import importlib

    module = importlib.import_module("workbench.learn.propagate")
    _, y, g = digits
    lab = few_labels(y, 3)
    lab2 = lab.copy()
    lab2[np.flatnonzero((lab < 0) & (y == 4))[:2]] = 4
    plain = propagate(g, lab)
    plain_warm = propagate(g, lab2, warm_start=plain)
    exact = propagate(g, lab, alpha=0.9, tol=1e-10, max_iter=2000)
    monkeypatch.setattr(module, "_REORDER_MIN_ITEMS", 0)
    est = LabelSpreader(g)
    assert est._system.perm is not None and not np.array_equal(est._system.perm, np.arange(y.size))
    scale = np.abs(plain.scores).max()
    first = est.fit(lab).predictions_
    np.testing.assert_allclose(first.scores, plain.scores, atol=1e-3 * scale)
    assert (first.label == plain.label).mean() > 0.999
    warm = est.fit(lab2).predictions_
    assert warm.n_iter < plain.n_iter
    np.testing.assert_allclose(warm.scores, plain_warm.scores, atol=1e-3 * scale)
    np.testing.assert_allclose(
        propagate(g, lab, alpha=0.9, tol=1e-10, max_iter=2000).scores, exact.scores, atol=1e-9
    )

"""Hundreds of classes (issue 13): bounded memory and work, and a warning past MANY_CLASSES."""

from __future__ import annotations

import gc
import importlib
import time
import tracemalloc
import warnings

import numpy as np
import pytest
import torch  # noqa: F401 - loaded once here, not inside the first timed fit

from workbench._config import MANY_CLASSES
from workbench.learn import LabelSpreader, LinearProbe, propagate
from workbench.neighbors import build_knn_graph

propagate_module = importlib.import_module("workbench.learn.propagate")
probe_module = importlib.import_module("workbench.learn.probe")
cg_module = importlib.import_module("workbench.learn._cg")


def clustered(n: int, classes: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, dim) float32 unit vectors around ``classes`` random centres, and the centre ids."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((classes, dim)).astype(np.float32)
    y = np.arange(n) % classes
    x = centres[y] + 0.3 * rng.standard_normal((n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, y.astype(np.int64)


def labels_per_class(y: np.ndarray, per_class: int) -> np.ndarray:
    lab = np.full(y.size, -1, np.int64)
    for c in np.unique(y):
        lab[np.flatnonzero(y == c)[:per_class]] = c
    return lab


@pytest.fixture(scope="module")
def many():
    """2,000 items in 500 classes, one human label each."""
    x, y = clustered(2000, 500, 32)
    return x, y, build_knn_graph(x, k=15), labels_per_class(y, 1)


def peak_bytes(fn) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_propagation_memory_is_about_one_answer(many):
    # The answer is one (N, C) float32 array (the probabilities, written over the scores;
    # a warm start remakes scores from them and the (N,) label mass); the solver used to
    # hold ~8 more (right-hand side, iterate, residual, direction, two work arrays, the
    # reordered copy and float32 + float64 scores): 28 MB here against 4 MB now.
    _, _, g, lab = many
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        propagate(g, lab)  # compile and build the operator outside the measurement
        peak = peak_bytes(lambda: propagate(g, lab))
    answer = 2000 * 500 * 4
    assert peak < 2 * answer, f"peak {peak / 1e6:.1f} MB for a {answer / 1e6:.1f} MB answer"


def test_blocks_of_classes_give_the_same_answer(many, monkeypatch):
    _, y, g, lab = many
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        whole = propagate(g, lab, tol=1e-6)
        monkeypatch.setattr(propagate_module, "PROPAGATION_BLOCK_COLUMNS", 37)
        blocks = propagate(g, lab, tol=1e-6)
    np.testing.assert_allclose(blocks.proba, whole.proba, atol=1e-4)
    assert (blocks.label == whole.label).mean() > 0.999
    assert (blocks.label[lab < 0] == y[lab < 0]).mean() > 0.8  # chance is 0.002


def test_warm_start_over_blocks_keeps_the_answer_and_is_cheap(many, monkeypatch):
    _, y, g, lab = many
    est = LabelSpreader(g)
    products = []  # columns times sparse products: the work of a solve
    matmul, steps = cg_module.matmul, cg_module.cg_steps

    def counting_matmul(m, x, out=None):
        products.append(x.shape[1])
        return matmul(m, x, out)

    def counting_steps(m, x, *args):
        n_iter, converged = steps(m, x, *args)
        products.append(x.shape[1] * n_iter)
        return n_iter, converged

    monkeypatch.setattr(cg_module, "matmul", counting_matmul)
    monkeypatch.setattr(cg_module, "cg_steps", counting_steps)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(lab)
        lab2 = lab.copy()
        lab2[np.flatnonzero((lab < 0) & (y == 7))[0]] = 7
        products.clear()
        warm = est.fit(lab2).predictions_
        warm_work = sum(products)
        products.clear()
        cold = propagate(g, lab2)
        cold_work = sum(products)
    assert (warm.label == cold.label).mean() > 0.999
    # Only the block holding class 7 iterates; the others are already within tolerance.
    assert warm_work < cold_work / 4
    assert warm.scores.dtype == np.float32 and warm.scores.shape == (2000, 500)


def test_propagate_reuses_the_operator_of_the_same_graph(many):
    x, _, g, _ = many
    est = LabelSpreader(g)
    assert propagate_module._system_for(g, est.alpha, np.float32) is est._system
    other = build_knn_graph(x[:300], k=5)
    first = propagate_module._system_for(other, 0.99, np.float32)
    assert propagate_module._system_for(other, 0.99, np.float32) is first
    key = (id(other), 0.99, np.float32)
    assert key in propagate_module._SYSTEMS
    del other, first
    gc.collect()
    assert key not in propagate_module._SYSTEMS  # forgotten with its graph


def test_probe_never_fits_more_than_a_bounded_batch(monkeypatch):
    # k folds x 5 L2 values used to be one L-BFGS run over 25 problems whatever the class
    # count (at 2,000 labels of 1,000 classes: 50M logits per step, minutes). Bounds scaled
    # down here (400 labels of 200 classes) so the test stays quick: one held-out split,
    # fitted a batch of problems at a time.
    x, y = clustered(600, 200, 16)
    lab = labels_per_class(y, 2)
    monkeypatch.setattr(probe_module, "PROBE_SELECT_CELLS", 1_000_000)
    monkeypatch.setattr(probe_module, "PROBE_BATCH_CELLS", 150_000)
    sizes = []
    fit = probe_module._fit_batched

    def recording(torch_, xt, yt, c, train, *args, **kwargs):
        sizes.append(train.shape[0] * train.shape[1] * c)
        return fit(torch_, xt, yt, c, train, *args, **kwargs)

    monkeypatch.setattr(probe_module, "_fit_batched", recording)
    probe = LinearProbe(max_iter=30).fit(x, lab)
    assert len(sizes) == 6  # 5 L2 values on one split, one at a time, then the final fit
    assert max(sizes) <= 150_000
    assert np.isnan(probe.oof_proba_).all(axis=1).mean() == pytest.approx(0.8, abs=0.01)
    rest = lab < 0
    assert (probe.predict(x)[rest] == y[rest]).mean() > 0.8


def test_warning_past_many_classes_and_not_below(many):
    x, y, g, lab = many
    with pytest.warns(UserWarning, match=r"label propagation over 500 classes"):
        propagate(g, lab)
    with pytest.warns(UserWarning, match=r"linear probe over 500 classes"):
        LinearProbe(l2_grid=(1.0,), cv=2).fit(x, labels_per_class(y, 2))
    few = np.where(y < MANY_CLASSES, lab, -1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        propagate(g, few)
        LinearProbe(l2_grid=(1.0,), cv=2).fit(x, np.where(y < 20, labels_per_class(y, 2), -1))


@pytest.mark.slow
def test_twenty_thousand_items_a_thousand_classes_retrain_in_bounded_time():
    # Issue 13: at 20k items and 1,000 classes the probe alone took 108 s (190 s on a busy
    # 2-core machine). Generous bounds: a shared machine stretches wall time.
    x, y = clustered(20_000, 1000, 128, seed=1)
    lab = labels_per_class(y, 2)
    g = build_knn_graph(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        prop = LabelSpreader(g).fit(lab).predictions_
        probe = LinearProbe().fit(x, lab)
        pred = probe.predictions(x)
        seconds = time.perf_counter() - t
    rest = lab < 0
    assert (prop.label[rest] == y[rest]).mean() > 0.8
    assert (pred.label[rest] == y[rest]).mean() > 0.8
    assert seconds < 60, f"propagation + probe took {seconds:.0f} s"


def test_label_mass_comes_without_a_dense_copy(many):
    _, _, g, lab = many
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = propagate(g, lab)
    expected = np.maximum(np.asarray(p.scores, np.float64), 0.0).sum(axis=1)
    assert p.mass.shape == (2000,) and p.mass.dtype == np.float64
    np.testing.assert_allclose(p.mass, expected, rtol=1e-5)


def test_fold_propagation_matches_a_full_solve_of_the_fold(many):
    # Held-out folds with many classes (issue 13) solve only the columns of classes that
    # lost a label, started from the full answer, and read only the hidden rows: the same
    # probabilities as propagating the fold's labels from cold.
    _, y, g, _ = many
    lab = labels_per_class(y, 3)
    hidden = np.flatnonzero(lab >= 0)[::7]  # some classes lose a label, some lose all
    train = lab.copy()
    train[hidden] = -1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = propagate(g, lab, tol=1e-8)
        cold = propagate(g, train, tol=1e-8)
        classes, proba, mass = propagate_module.fold_propagation(g, lab, hidden, full,
                                                                 tol=1e-8)
    lost = np.unique(lab[hidden])
    assert 0 < np.isin(cold.classes, lost).sum() < cold.classes.size  # both kinds present
    np.testing.assert_array_equal(classes, cold.classes)
    np.testing.assert_allclose(proba, cold.proba[hidden], atol=1e-5)
    np.testing.assert_allclose(mass, cold.mass[hidden], rtol=1e-5)


def test_many_classes_hold_out_one_split_with_one_probe_fit_per_fold(many, monkeypatch):
    # Above MANY_CLASSES a single split is hidden (five folds cost 92 s of a 134 s retrain at
    # 100k items x 1,000 classes), its propagation reuses the full one and the probe is
    # refitted once (its L2 and temperature kept), not three times.
    from workbench.learn import held_out_predictions

    x, y, g, _ = many
    lab = labels_per_class(y, 3)
    fits = []
    fit = probe_module._fit_batched

    def recording(*args, **kwargs):
        fits.append(1)
        return fit(*args, **kwargs)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probe = LinearProbe(l2_grid=(1e-2,), cv=2, max_iter=30).fit(x, lab)
        full = propagate(g, lab)
        monkeypatch.setattr(probe_module, "_fit_batched", recording)
        held = held_out_predictions(lab, {"propagated": g}, probe, vectors=x,
                                    fitted={"propagated": full})
    assert np.unique(held.fold).size == 1
    assert len(fits) == 1
    assert held.positions.size == pytest.approx(0.2 * (lab >= 0).sum(), abs=2)
    ok = held.present
    assert (held.proba["propagated"][ok].argmax(1) == held.truth[ok]).mean() > 0.8
    assert (held.proba["probe"][ok].argmax(1) == held.truth[ok]).mean() > 0.8


def test_features_from_votes_equal_features_from_whole_tables(many):
    # The calibrated confidence reads each model's vote in row blocks (at 100k items x
    # 1,000 classes the (N, C) float64 copies it used to make peaked at 8 GB): the same
    # features as from the laid-out probability tables, exactly.
    from workbench.learn import Mixing, calibrated, mix
    from workbench.learn.calibrate import confidence_features

    x, y, g, _ = many
    lab = labels_per_class(y, 3)
    some = np.where(y < 400, lab, -1)  # the probe knows fewer classes than propagation
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prop = propagate(g, lab)
        probe = LinearProbe(l2_grid=(1e-2,), cv=2, max_iter=30).fit(x, some).predictions(x)
    models = {"propagated": prop, "probe": probe}
    combined = mix(models, {"propagated": 0.6, "probe": 0.4}, temperature=1.3)
    mass, dist = np.log(prop.mass + 1e-6), np.linspace(0, 1, y.size)
    _, feats = calibrated(combined, models, Mixing({"propagated": 0.6, "probe": 0.4}),
                          log_mass=mass, distance=dist)
    tables = []
    for p in models.values():  # the old way: every model laid out as (N, C) float64
        t = np.zeros((y.size, combined.classes.size))
        t[:, np.searchsorted(combined.classes, p.classes)] = p.proba
        t[p.label < 0] = 1.0 / combined.classes.size
        tables.append(t)
    old = confidence_features(np.asarray(combined.proba, np.float64), tables,
                              np.array([0.6, 0.4]), mass, dist)
    np.testing.assert_array_equal(feats, old)
    part = np.partition(np.asarray(combined.proba, np.float64), -2, axis=1)
    np.testing.assert_array_equal(feats[:, 1], part[:, -1] - part[:, -2])


def test_side_by_side_gives_both_results_and_both_errors():
    from workbench.learn import side_by_side

    assert side_by_side(lambda: 1, lambda: 2) == (1, 2)
    with pytest.raises(KeyError):
        side_by_side(lambda: {}["first"], lambda: 2)
    finished = []
    with pytest.raises(ZeroDivisionError):  # the worker is waited for before raising
        side_by_side(lambda: (time.sleep(0.2), finished.append(1)), lambda: 1 / 0)
    assert finished == [1]


def test_many_classes_propagate_over_the_vectors_graph_only(tmp_path):
    # Above MANY_CLASSES the 2-D map's neighbours stay out of the retrain (they cannot keep
    # hundreds of classes apart; a second propagation doubled its cost); below, they join.
    from workbench import Workbench
    from workbench.items import from_vectors

    x, y = clustered(1500, MANY_CLASSES + 50, 32, seed=3)
    items, vectors = from_vectors(x)
    wb = Workbench.create(tmp_path / "p", items, vectors=vectors, background=False,
                          layout="quick")
    wb._umap_ready = True  # as once the UMAP map exists
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        many_out = wb._fit(labels_per_class(y, 3))
        few_out = wb._fit(np.where(y < 20, labels_per_class(y, 3), -1))
    assert many_out.map_propagation is None and "map" not in many_out.weights
    assert many_out.combined.label[y >= 0].size == y.size
    rest = labels_per_class(y, 3) < 0
    assert (many_out.combined.label[rest] == y[rest]).mean() > 0.9
    assert few_out.map_propagation is not None and "map" in few_out.weights

"""Combined predictions, disagreements, and what to label next, on real data (digits)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from workbench.learn import (
    LinearProbe,
    Predictions,
    choose_weights,
    cluster_coverage_batch,
    fit_temperature,
    held_out_weights,
    kmeans_groups,
    mix,
    propagate,
    suggest_batch,
    uncertainty,
)
from workbench.neighbors import build_knn_graph, normalize


def combine(propagation, probe, *, probe_weight=0.5):
    """The two-model mix (what ``learn.combine`` was, before issue 14 removed it as dead)."""
    return mix({"propagated": propagation, "probe": probe},
               {"propagated": 1.0 - probe_weight, "probe": probe_weight})


@pytest.fixture(scope="module")
def setup():
    x, y = load_digits(return_X_y=True)
    x = x.astype(np.float32)
    y = y.astype(np.int64)
    rng = np.random.default_rng(0)
    lab = np.full(y.size, -1, np.int64)
    for c in range(10):
        lab[rng.choice(np.flatnonzero(y == c), 4, replace=False)] = c
    g = build_knn_graph(x, k=15)
    prop = propagate(g, lab)
    probe = LinearProbe(l2_grid=(1e-2, 1e-1)).fit(x, lab).predictions(x)
    return x, y, lab, prop, probe


def test_combined_beats_chance_and_marks_disagreements(setup):
    _x, y, lab, prop, probe = setup
    comb = combine(prop, probe)
    rest = lab < 0
    assert (comb.label[rest] == y[rest]).mean() > 0.8  # chance is 0.10
    assert set(np.unique(comb.origin)) == {"both"}
    np.testing.assert_array_equal(comb.disagree, prop.label != probe.label)
    # Where the two disagree, predictions are much less reliable than where they agree.
    agree = rest & ~comb.disagree
    dis = rest & comb.disagree
    assert dis.any()
    assert (comb.label[dis] == y[dis]).mean() < (comb.label[agree] == y[agree]).mean() - 0.2
    order = comb.disagreements()
    assert set(order) == set(np.flatnonzero(comb.disagree))
    assert np.all(np.diff(comb.confidence[order]) >= 0)


def test_combine_with_one_model_and_unreached_items(setup):
    _, _, _lab, prop, probe = setup
    only = combine(None, probe)
    np.testing.assert_array_equal(only.label, probe.label)
    assert set(np.unique(only.origin)) == {"probe"}
    # An item propagation cannot reach takes the probe's answer.
    proba = prop.proba.copy()
    label = prop.label.copy()
    label[0] = -1
    partial = Predictions(prop.classes, proba, label, prop.confidence, "propagated")
    comb = combine(partial, probe)
    assert comb.origin[0] == "probe" and comb.label[0] == probe.label[0]
    assert not comb.disagree[0]
    with pytest.raises(ValueError, match="at least one"):
        combine(None, None)


def test_mix_of_three_models_weights_and_fallbacks(setup):
    _x, y, lab, prop, probe = setup
    rng = np.random.default_rng(5)
    noise = rng.random(prop.proba.shape).astype(np.float32)
    noise /= noise.sum(axis=1, keepdims=True)
    junk = Predictions.from_proba(prop.classes, noise, "propagated")
    # Weight 0 for the junk model: the same answer as the other two alone.
    three = mix({"propagated": prop, "map": junk, "probe": probe},
                {"propagated": 0.5, "map": 0.0, "probe": 0.5})
    two = combine(prop, probe, probe_weight=0.5)
    np.testing.assert_allclose(three.proba, two.proba, atol=1e-6)
    assert set(np.unique(three.origin)) == {"both"}
    # All weight on the junk model: its answer, far worse than the others'.
    bad = mix({"propagated": prop, "map": junk, "probe": probe}, {"map": 1.0})
    rest = lab < 0
    assert (bad.label[rest] == y[rest]).mean() < 0.3 < (two.label[rest] == y[rest]).mean()
    # An item only a zero-weight model knows still gets that model's prediction.
    label = probe.label.copy()
    label[0] = -1
    partial = Predictions(probe.classes, probe.proba, label, probe.confidence, "probe")
    label = prop.label.copy()
    label[0] = -1
    unreached = Predictions(prop.classes, prop.proba, label, prop.confidence, "propagated")
    out = mix({"propagated": unreached, "map": junk, "probe": partial},
              {"propagated": 0.5, "probe": 0.5})
    assert out.origin[0] == "map" and out.label[0] == junk.label[0]
    with pytest.raises(ValueError, match="finite and >= 0"):
        mix({"probe": probe}, {"probe": -1.0})
    with pytest.raises(ValueError, match="different numbers of items"):
        mix({"a": prop, "b": Predictions.from_proba(prop.classes, prop.proba[:5], "probe")},
            {"a": 1, "b": 1})


def test_choose_weights_prefers_the_model_that_predicts_held_out_labels():
    truth = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    right = np.eye(3)[truth] * 0.8 + 0.2 / 3
    wrong = np.eye(3)[(truth + 1) % 3] * 0.8 + 0.2 / 3
    w = choose_weights({"good": right, "bad": wrong}, truth)
    assert w["good"] > w["bad"] and w["good"] >= 0.75
    assert np.isclose(sum(w.values()), 1.0)
    # Two models equally right and equally sure: the even mix.
    assert choose_weights({"a": right, "b": right.copy()}, truth) == {"a": 0.5, "b": 0.5}


def test_held_out_weights_pick_the_real_graph_over_a_random_one(setup):
    from workbench.neighbors import KnnGraph

    x, y, _lab, _prop, _probe = setup
    rng = np.random.default_rng(0)
    lab = np.full(y.size, -1, np.int64)
    picks = rng.choice(y.size, 300, replace=False)
    lab[picks] = y[picks]
    real = build_knn_graph(x, k=15)
    # Random neighbours: a graph that knows nothing, so it must not get any weight.
    idx = rng.integers(0, y.size, real.indices.shape)
    fake = KnnGraph(idx, np.ones(idx.shape, np.float32))
    probe = LinearProbe(l2_grid=(1e-2,)).fit(x, lab)
    choice = held_out_weights(lab, {"propagated": real, "map": fake}, probe, vectors=x)
    w = choice.weights
    assert set(w) == {"propagated", "map", "probe"}
    assert w["map"] == 0.0 and w["propagated"] > 0
    # The chosen mix predicts the unlabelled items at least as well as the real graph.
    models = {"propagated": propagate(real, lab), "map": propagate(fake, lab),
              "probe": probe.predictions(x)}
    rest = lab < 0
    alone = (models["propagated"].label[rest] == y[rest]).mean()
    mixed = mix(models, w, temperature=choice.temperature)
    assert (mixed.label[rest] == y[rest]).mean() >= alone - 0.01
    # Calibrated: on the unlabelled items, confidence reads as the chance of being right.
    right = mixed.label[rest] == y[rest]
    assert abs(mixed.confidence[rest].mean() - right.mean()) < 0.1
    # Hiding whole clusters at a time (5 folds), or a single fifth: the same verdict.
    clusters = np.zeros(y.size, np.int64)
    for i, g in enumerate(kmeans_groups(x, n_clusters=20)):
        clusters[g.members] = i
    for kw in ({"groups": clusters}, {"folds": 1}):
        w = held_out_weights(lab, {"propagated": real, "map": fake}, probe, vectors=x,
                             **kw).weights
        assert w["map"] == 0.0 and w["propagated"] > 0, kw
    with pytest.raises(ValueError, match="needs the vectors"):
        held_out_weights(lab, {"propagated": real}, probe)
    one = np.full(y.size, -1, np.int64)
    one[:2] = [0, 1]
    assert held_out_weights(one, {"propagated": real}) is None  # nothing left to hold out


def test_fit_temperature_calibrates_over_and_under_confident_scores():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, 2000)
    logits = np.eye(4)[truth] * 1.0 + rng.standard_normal((2000, 4))
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    t = fit_temperature(p, truth)
    assert 0.7 < t < 1.4  # already calibrated: softmax of the true logits
    assert fit_temperature(p ** 4 / (p ** 4).sum(1, keepdims=True), truth) > 2.5  # overconfident
    flat = p ** 0.25 / (p ** 0.25).sum(1, keepdims=True)
    assert fit_temperature(flat, truth) < 0.4  # underconfident
    assert fit_temperature(p[:0], truth[:0]) == 1.0
    with pytest.raises(ValueError, match="temperature"):
        mix({"probe": Predictions.from_proba(np.arange(4), p.astype(np.float32), "probe")},
            {"probe": 1.0}, temperature=0.0)


def test_uncertainty_kinds(setup):
    *_, prop, _ = setup
    for kind in ("margin", "entropy", "confidence"):
        u = uncertainty(prop, kind=kind)
        assert u.shape == (prop.n,) and u.min() >= 0 and u.max() <= 1
    with pytest.raises(ValueError, match="margin"):
        uncertainty(prop, kind="nope")


def test_suggested_batches_teach_more_than_random_ones(setup):
    x, y, lab, prop, _ = setup
    g = build_knn_graph(x, k=15)
    batch = suggest_batch(prop, x, lab, batch_size=12)
    assert batch.size == 12 and np.unique(batch).size == 12
    assert (lab[batch] < 0).all()
    # Uncertain: the model is wrong far more often on them than overall.
    assert (prop.label[batch] != y[batch]).mean() > 2 * (prop.label[lab < 0] != y[lab < 0]).mean()
    # Diverse: farther apart than the 12 most uncertain items.
    xn = normalize(x)
    top = suggest_batch(prop, x, lab, batch_size=12, pool_factor=1)

    def spread(idx):
        s = xn[idx] @ xn[idx].T
        return 1 - s[np.triu_indices(idx.size, 1)].mean()

    assert spread(batch) >= spread(top) - 1e-6
    # Three rounds of suggestions beat three rounds of random items (same count).
    rng = np.random.default_rng(1)
    act, rnd = lab.copy(), lab.copy()
    p_act = prop
    for _ in range(3):
        b = suggest_batch(p_act, x, act, batch_size=12)
        act[b] = y[b]
        p_act = propagate(g, act)
        r = rng.choice(np.flatnonzero(rnd < 0), 12, replace=False)
        rnd[r] = y[r]
    p_rnd = propagate(g, rnd)
    assert (p_act.label == y).mean() > (p_rnd.label == y).mean()
    excl = np.zeros(y.size, bool)
    excl[batch] = True
    assert not np.isin(suggest_batch(prop, x, lab, exclude=excl), batch).any()


def test_cluster_coverage_batch(setup):
    x, _, lab, _, _ = setup
    groups = kmeans_groups(x, n_clusters=20)
    batch = cluster_coverage_batch(groups, lab, batch_size=12)
    assert batch.size == 12 and (lab[batch] < 0).all()
    owner = {int(i): gi for gi, g in enumerate(groups) for i in g.members}
    assert len({owner[int(i)] for i in batch}) == 12  # one per group

"""Rules as labellers: the label model's estimates against the truth of simulated rules, the
held-out check of each rule, and the rules as one more source in a retrain (human labels never
overridden, confidence still calibrated, no rules = exactly the retrain without them)."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.learn import LabelSpreader
from workbench.learn.calibrate import expected_calibration_error
from workbench.learn.label_model import check_rules, fit_label_model, rule_weights, weak_labels
from workbench.learn.pipeline import fit_models
from workbench.neighbors import build_knn_graph

#: (class it votes, P(votes | that class), P(votes | the other class)) of one-sided rules.
SPECS = [(1, 0.4, 0.05), (1, 0.3, 0.1), (0, 0.5, 0.1), (0, 0.2, 0.02), (1, 0.15, 0.01),
         (0, 0.3, 0.12)]


def simulate(y, rng, specs=SPECS, random_rule=True):
    """(N, R) votes of one-sided rules (+ one voting a random class on 30% of the items)."""
    votes = np.full((y.size, len(specs) + int(random_rule)), -1, np.int64)
    for j, (k, hit, miss) in enumerate(specs):
        fire = rng.random(y.size) < np.where(y == k, hit, miss)
        votes[fire, j] = k
    if random_rule:
        some = rng.random(y.size) < 0.3
        votes[some, -1] = rng.integers(0, 2, int(some.sum()))
    return votes


def precision(votes, y):
    return np.array([(votes[votes[:, j] >= 0, j] == y[votes[:, j] >= 0]).mean()
                     for j in range(votes.shape[1])])


def test_estimated_accuracies_match_the_truth_and_a_random_rule_weighs_nothing():
    rng = np.random.default_rng(0)
    y = (rng.random(6000) < 0.3).astype(np.int64)
    votes = simulate(y, rng)
    lm = fit_label_model(votes)
    assert np.abs(lm.accuracy - precision(votes, y)).max() < 0.05
    assert abs(lm.class_prior[1] - y.mean()) < 0.03
    # the random rule's confusion rows are the same whatever the true class: no say
    rand = lm.confusion[-1]
    assert np.abs(rand[0] - rand[1]).max() < 0.03
    without = fit_label_model(votes[:, :-1])
    cov = without.covered
    assert np.abs(lm.proba[cov] - without.proba[cov]).max() < 0.1
    same = (lm.proba.argmax(1) == without.proba.argmax(1))[cov].mean()
    assert same > 0.99
    # better than any single rule and than a majority vote over the covered items
    assert (lm.label[cov] == y[cov]).mean() > 0.8
    assert lm.label[~lm.covered].tolist() == [-1] * int((~lm.covered).sum())
    assert np.allclose(lm.proba[~lm.covered], 0.5)


def test_human_labels_are_fixed_and_teach_the_rules():
    rng = np.random.default_rng(1)
    y = (rng.random(3000) < 0.5).astype(np.int64)
    votes = simulate(y, rng, random_rule=False)
    human = np.full(y.size, -1)
    idx = rng.choice(y.size, 300, replace=False)
    human[idx] = 1 - y[idx]  # even wrong human labels stay as given
    lm = fit_label_model(votes, human)
    assert (lm.label[idx] == human[idx]).all()
    assert np.allclose(lm.proba[idx].max(axis=1), 1.0)
    weak = weak_labels(lm, human, 0.8)
    assert (weak[idx] == human[idx]).all()
    assert ((weak >= 0) <= (lm.covered | (human >= 0))).all()
    # a class only a human named still gets a column; one only rules name too
    votes3 = votes.copy()
    votes3[:50, 0] = 2
    lm3 = fit_label_model(votes3, np.where(np.arange(y.size) == 7, 3, -1))
    assert lm3.classes.tolist() == [0, 1, 2, 3]


def test_duplicated_rules_count_once():
    rng = np.random.default_rng(2)
    y = (rng.random(4000) < 0.5).astype(np.int64)
    votes = simulate(y, rng, random_rule=False)
    doubled = np.column_stack([votes, votes[:, 0], votes[:, 0]])
    w = rule_weights(doubled)
    assert np.allclose(w[[0, -2, -1]], 1 / 3) and np.allclose(w[1:-2], 1.0)
    once, thrice = fit_label_model(votes), fit_label_model(doubled)
    assert np.abs(once.proba - thrice.proba).max() < 0.05


def test_random_rule_is_flagged_and_good_rules_are_not():
    rng = np.random.default_rng(3)
    y = (rng.random(5000) < 0.4).astype(np.int64)
    votes = simulate(y, rng)
    human = np.full(y.size, -1)
    idx = rng.choice(y.size, 400, replace=False)
    human[idx] = y[idx]
    check = check_rules(votes, human)
    assert check.flagged[-1]
    assert not check.flagged[:-1].any()
    assert abs(check.gain[-1]) < 0.01 < check.gain[:4].min()
    assert np.allclose(check.precision, precision(votes[idx], y[idx]))
    # a rule that is wrong more often than chance is flagged as well
    bad = np.where(votes[:, 0] >= 0, 1 - votes[:, 0], -1)
    assert check_rules(np.column_stack([votes[:, :-1], bad]), human).flagged[-1]
    # too few votes on labelled items: not judged
    few = human.copy()
    few[idx[20:]] = -1
    assert not check_rules(votes, few).flagged.any()


@pytest.fixture(scope="module")
def blobs():
    """Two overlapping Gaussian classes (16-D), their kNN graph, and rules from the truth."""
    rng = np.random.default_rng(4)
    n = 1600
    y = (rng.random(n) < 0.5).astype(np.int64)
    centres = rng.normal(0, 1, (2, 16))
    x = (centres[y] * 0.45 + rng.normal(0, 1, (n, 16))).astype(np.float32)
    graph = build_knn_graph(x, k=10)
    return x, y, graph, simulate(y, rng)


def fit(blobs, human, rules=None, **kw):
    x, _, graph, _ = blobs
    return fit_models(human, vectors=x, graph=graph, spreader=LabelSpreader(graph),
                      rules=rules, **kw)


def test_no_rules_is_exactly_the_retrain_without_them(blobs):
    x, y, graph, _ = blobs
    human = np.full(y.size, -1)
    idx = np.random.default_rng(5).choice(y.size, 80, replace=False)
    human[idx] = y[idx]
    plain = fit_models(human, vectors=x, graph=graph, spreader=LabelSpreader(graph))
    for rules in (None, np.zeros((y.size, 0), np.int64)):
        got = fit(blobs, human, rules)
        assert got.weights == plain.weights and got.rules is None
        for a, b in ((got.combined, plain.combined), (got.probe, plain.probe),
                     (got.propagation, plain.propagation)):
            assert np.array_equal(a.proba, b.proba) and np.array_equal(a.label, b.label)
            assert np.array_equal(a.confidence, b.confidence)


def test_rules_never_override_a_human_label(blobs):
    _, y, _, votes = blobs
    rng = np.random.default_rng(6)
    human = np.full(y.size, -1)
    idx = rng.choice(y.size, 120, replace=False)
    human[idx] = 1 - y[idx]  # every human label wrong: they stay as given all the same
    state = fit(blobs, human, votes)
    assert {"rules", "rules_probe"} <= set(state.weights)
    assert (state.rules.label[idx] == human[idx]).all()
    assert np.array_equal(state.rules.proba[idx].argmax(1), human[idx])


def test_confidence_with_rules_stays_calibrated(blobs):
    _, y, _, votes = blobs
    rng = np.random.default_rng(7)
    human = np.full(y.size, -1)
    idx = rng.choice(y.size, 120, replace=False)
    human[idx] = y[idx]
    state = fit(blobs, human, votes)
    free = human < 0
    conf = state.combined.confidence[free]
    right = state.combined.label[free] == y[free]
    assert expected_calibration_error(conf, right) < 0.06
    without = fit(blobs, human)
    assert right.mean() >= (without.combined.label[free] == y[free]).mean() - 0.01


def test_rules_alone_predict_before_any_human_label(blobs):
    _, y, _, votes = blobs
    state = fit(blobs, np.full(y.size, -1), votes)
    assert state.combined is not None and state.propagation is None
    assert (state.combined.label == y).mean() > 0.75
    assert fit(blobs, np.full(y.size, -1)).combined is None


def test_bad_votes_say_what_is_wrong():
    with pytest.raises(ValueError, match="rule 1 votes -2"):
        fit_label_model(np.array([[0, -2], [1, 0]]))
    with pytest.raises(TypeError, match="integer class ids"):
        fit_label_model(np.array([[0.5, 1.0]]))
    with pytest.raises(ValueError, match="not in `classes`"):
        fit_label_model(np.array([[0, 3]]), classes=np.array([0, 1]))

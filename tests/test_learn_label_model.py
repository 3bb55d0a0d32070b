"""Rules as labellers: the label model's estimates against the truth of simulated rules, the
held-out check of each rule, and the rules as one more source in a retrain (human labels never
overridden, confidence still calibrated, no rules = exactly the retrain without them)."""

from __future__ import annotations

import numpy as np
import pytest

from workbench._config import PROBE_L2_GRID, RULE_ACCURACY_Z, RULE_CHECK_MIN_VOTES
from workbench.learn import LabelSpreader
from workbench.learn.calibrate import expected_calibration_error
from workbench.learn.heldout import with_optional
from workbench.learn.label_model import check_rules, fit_label_model, rule_weights, weak_labels
from workbench.learn.pipeline import fit_models, fit_rules_probe
from workbench.learn.probe import LinearProbe
from workbench.neighbors import build_knn_graph
from workbench.rules.analysis import rule_flags, rule_stats

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


def test_the_analysis_table_and_check_rules_flag_by_one_rule():
    rng = np.random.default_rng(8)
    y = (rng.random(5000) < 0.4).astype(np.int64)
    votes = simulate(y, rng, random_rule=False)
    rand = np.where(rng.random(y.size) < 0.3, 1, -1)  # votes its class at random
    bad = np.where(votes[:, 0] >= 0, 1 - votes[:, 0], -1)  # points away from its class
    # votes both classes at random (a Python rule can): judged against the classes it
    # voted, not its first class's share (the benchmark's random rule was flagged by the
    # table and not by check_rules when its first vote was the commoner class)
    both = np.where(rng.random(y.size) < 0.3, rng.integers(0, 2, y.size), -1)
    votes = np.column_stack([votes, rand, bad, both])
    rule_class = np.array([k for k, _, _ in SPECS] + [1, 1 - SPECS[0][0], 0])
    for m in (30, 150, 600):
        human = np.full(y.size, -1)
        idx = rng.choice(y.size, m, replace=False)
        human[idx] = y[idx]
        table = rule_stats(votes, np.ones(votes.shape[1], bool), rule_class, human)
        check = check_rules(votes, human)
        assert np.array_equal(table["flagged"].to_numpy(), check.flagged)
        # the rule by hand: 90% Wilson interval against the class's share of the labels
        for j in range(votes.shape[1]):
            at = idx[votes[idx, j] >= 0]
            n, k = at.size, int((votes[at, j] == y[at]).sum())
            base = float(np.mean([(y[idx] == v).mean() for v in votes[at, j]])) if n else 0.0
            if n == 0:
                assert not check.flagged[j]
                continue
            z = RULE_ACCURACY_Z
            centre = (k / n + z * z / (2 * n)) / (1 + z * z / n)
            half = z * np.sqrt(k / n * (1 - k / n) / n + z * z / (4 * n * n)) / (1 + z * z / n)
            want = (centre + half < base) or (n >= RULE_CHECK_MIN_VOTES and centre - half <= base)
            assert check.flagged[j] == want, (m, j, n, k, base)
        if m == 600:  # enough labels: the random rules and the reversed one, no good one
            assert check.flagged[-3:].all() and not check.flagged[:-3].any()
    assert rule_flags(np.array([5.0]), np.array([10.0]), np.array([0.5])).tolist() == [False]
    assert rule_flags(np.array([0.0]), np.array([10.0]), np.array([0.5])).tolist() == [True]


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
    assert state.weights == {"rules": 0.0, "rules_probe": 1.0}  # the probe stands for them
    assert (state.combined.label == y).mean() > 0.75
    assert fit(blobs, np.full(y.size, -1)).combined is None


def test_bad_votes_say_what_is_wrong():
    with pytest.raises(ValueError, match="rule 1 votes -2"):
        fit_label_model(np.array([[0, -2], [1, 0]]))
    with pytest.raises(TypeError, match="integer class ids"):
        fit_label_model(np.array([[0.5, 1.0]]))
    with pytest.raises(ValueError, match="not in `classes`"):
        fit_label_model(np.array([[0, 3]]), classes=np.array([0, 1]))


def test_rules_that_tell_nothing_change_nothing(blobs):
    _, y, _, _ = blobs
    rng = np.random.default_rng(9)
    noise = np.where(rng.random((y.size, 3)) < 0.3, rng.integers(0, 2, (y.size, 3)), -1)
    human = np.full(y.size, -1)
    idx = rng.choice(y.size, 120, replace=False)
    human[idx] = y[idx]
    state, plain = fit(blobs, human, noise), fit(blobs, human)
    free = human < 0
    right = (state.combined.label == y)[free].mean()
    # at most half a point lower (the bound for a rule voting at random), and
    # nearly every label the same
    assert right >= (plain.combined.label == y)[free].mean() - 0.005
    assert (state.combined.label == plain.combined.label).mean() > 0.97


def test_optional_models_get_the_middle_share_the_held_out_labels_allow():
    rng = np.random.default_rng(10)
    truth = rng.integers(0, 2, 400)
    onehot = np.eye(2)[truth]
    base = np.where(rng.random((400, 1)) < 0.8, onehot, 1 - onehot) * 0.6 + 0.2  # 80% right
    good = np.where(rng.random((400, 1)) < 0.95, onehot, 1 - onehot) * 0.9 + 0.05
    w = with_optional({"probe": base, "rules_probe": good}, truth, ("rules_probe",), steps=8)
    shares = np.arange(9) / 8
    acc = np.array([(((1 - a) * base + a * good).argmax(1) == truth).mean() for a in shares])
    slack = np.sqrt(acc.max() * (1 - acc.max()) / truth.size)
    upto = int(np.argmax(acc)) + 1  # from the smallest share near the best, to the best
    want = np.median(shares[:upto][acc[:upto] >= acc.max() - slack - 1e-12])
    assert w["rules_probe"] == pytest.approx(want) and 0 < want < 1
    assert w["probe"] == pytest.approx(1 - want)
    # an optional model worse than the rest gets too small a share to change a label
    w = with_optional({"probe": good, "rules_probe": base}, truth, ("rules_probe",))
    assert w["rules_probe"] < 0.5
    mixed = w["probe"] * good + w["rules_probe"] * base
    assert np.array_equal(mixed.argmax(1), good.argmax(1))


def test_the_rules_probe_chooses_its_l2_on_the_human_labels(blobs):
    x, y, _, _ = blobs
    rng = np.random.default_rng(11)
    human = np.full(y.size, -1)
    idx = rng.choice(y.size, 60, replace=False)
    human[idx] = y[idx]
    # machine labels: right on most items, but one direction of the vectors flips them
    flip = (x[:, 0] > 1.0) & (human < 0)
    weak = np.where(human >= 0, human, np.where(flip, 1 - y, y))
    state = fit_rules_probe(weak, human, x)
    only = np.where(human >= 0, -1, weak)
    scores = []
    for l2 in PROBE_L2_GRID:  # each strength fitted on the machine labels, scored on humans
        p = LinearProbe(l2_grid=(l2,), cv=2).fit(x, only)
        proba = p.predict_proba(x[idx])
        scores.append(((proba.argmax(1) == y[idx]).mean(),
                       np.log(np.clip(proba[np.arange(idx.size), y[idx]], 1e-9, None)).mean()))
    best = max(range(len(scores)), key=lambda i: (scores[i], -i))
    assert state.model.l2_ == PROBE_L2_GRID[best]
    # too few human labels: the probe's own choice on the machine labels
    few = np.where(np.arange(y.size) == idx[0], human, -1)
    assert fit_rules_probe(np.where(few >= 0, few, weak), few, x).model is not None

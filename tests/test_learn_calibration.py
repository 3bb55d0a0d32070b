"""Confidence that reads as the chance of being right (learn/calibrate.py), and the session's
estimate of how right its labels are."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.datasets import load_digits

from workbench.learn import (
    calibrated,
    estimate_accuracy,
    expected_calibration_error,
    fit_calibrator,
    held_out_weights,
    kmeans_groups,
    mix,
    propagate,
)
from workbench.learn.calibrate import (
    FEATURES,
    fallback_calibrator,
    label_mass,
    nearest_labelled_distance,
    neighbour_radius,
)
from workbench.neighbors import build_knn_graph


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _synthetic(slope: float, n_groups: int = 40, per: int = 30, seed: int = 0):
    """Features whose top logit says ``z`` while the truth is right with _sigmoid(slope z)."""
    rng = np.random.default_rng(seed)
    n = n_groups * per
    z = rng.normal(1.0, 1.5, n)
    feats = np.column_stack([z, rng.uniform(0, 1, n), rng.uniform(0, 1, n),
                             rng.normal(0, 1, n), rng.normal(0, 1, n)])
    correct = rng.random(n) < _sigmoid(slope * z)
    groups = np.repeat(np.arange(n_groups), per)
    return feats, correct, groups


@pytest.mark.parametrize("slope", [0.4, 2.5])  # overconfident, underconfident
def test_calibrator_fixes_over_and_under_confident_scores(slope):
    feats, correct, groups = _synthetic(slope)
    cal = fit_calibrator(feats, correct, groups)
    assert cal.kind == "logistic"
    test_f, test_y, _ = _synthetic(slope, seed=1)
    raw = _sigmoid(test_f[:, 0])
    fixed = cal.predict(test_f)
    assert expected_calibration_error(fixed, test_y) < 0.04
    assert expected_calibration_error(raw, test_y) > 0.08
    # Its own held-out check saw the same: out-of-fold log loss below the raw one.
    assert cal.check["log_loss"] < cal.check["log_loss_uncalibrated"]


def test_calibrator_is_never_worse_than_uncalibrated_on_its_own_check():
    # Already calibrated scores plus features that are pure noise, and few clusters: a
    # fitted model can only lose; whatever is kept must not lose on the held-out check.
    kinds = set()
    for seed in range(6):
        feats, correct, groups = _synthetic(1.0, n_groups=6, per=8, seed=seed)
        cal = fit_calibrator(feats, correct, groups)
        kinds.add(cal.kind)
        if cal.kind == "logistic":
            assert cal.check["log_loss"] <= cal.check["log_loss_uncalibrated"]
            assert cal.check["log_loss"] <= cal.check["log_loss_constant"]
        if cal.kind == "identity":
            np.testing.assert_allclose(cal.predict(feats), _sigmoid(feats[:, 0]))
    # A model that extrapolates from clusters unlike the others loses to the raw score.
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(5), 20)
    z = rng.normal(0, 1, 100)
    spurious = np.repeat(np.array([-3.0, -1.0, 0.0, 1.0, 3.0]), 20)
    correct = rng.random(100) < _sigmoid(z)
    correct[spurious == 3.0] = ~correct[spurious == 3.0]  # one cluster breaks the pattern
    feats = np.column_stack([z, np.zeros(100), np.ones(100), spurious, spurious * 2])
    cal = fit_calibrator(feats, correct, groups, l2=1e-3)
    chosen = {"logistic": "log_loss", "identity": "log_loss_uncalibrated",
              "constant": "log_loss_constant"}[cal.kind]
    assert cal.check[chosen] <= min(cal.check["log_loss"], cal.check["log_loss_uncalibrated"],
                                    cal.check["log_loss_constant"]) + 1e-12


def test_few_labels_and_one_outcome_fall_back_to_a_shrunk_rate():
    feats, correct, groups = _synthetic(1.0, n_groups=3, per=10)
    cal = fit_calibrator(feats, correct, groups)  # 3 clusters: too few for a slope
    assert cal.kind == "constant"
    assert 0.0 < cal.predict(feats[:2])[0] < 1.0
    feats, _, groups = _synthetic(1.0, n_groups=10, per=10)
    right = fit_calibrator(feats, np.ones(100, bool), groups)
    wrong = fit_calibrator(feats, np.zeros(100, bool), groups)
    # All right in 10 clusters is not a certainty, all wrong is not an impossibility.
    assert right.kind == wrong.kind == "constant"
    assert 0.85 < right.rate < 1.0 and 0.0 < wrong.rate < 0.15
    empty = fit_calibrator(np.zeros((0, len(FEATURES))), np.zeros(0, bool), np.zeros(0))
    assert empty.rate == 0.5
    coin = fallback_calibrator()
    assert coin.predict(np.zeros((3, len(FEATURES)))).tolist() == [0.5] * 3
    assert np.ptp(coin.boot_sums(np.zeros((10, len(FEATURES))))) > 5  # a wide interval
    with pytest.raises(ValueError, match="must align"):
        fit_calibrator(feats, np.ones(3, bool), groups)


def test_ece_and_estimate_interval():
    assert expected_calibration_error(np.array([0.9, 0.9]), np.array([True, False])) == \
        pytest.approx(0.4)
    assert expected_calibration_error(np.zeros(0), np.zeros(0, bool)) == 0.0
    rng = np.random.default_rng(0)
    p = rng.uniform(0.3, 1.0, 2000)
    hits = 0
    for _ in range(200):
        right = rng.random(p.size) < p
        est = estimate_accuracy(p, None, 500)
        truth = (500 + right.sum()) / 2500
        hits += est["low"] <= truth <= est["high"]
    assert 0.85 <= hits / 200 <= 0.97  # a 90% interval
    wide = estimate_accuracy(p, np.array([1000.0, 1400.0, 1200.0]), 500)
    assert wide["high"] - wide["low"] > est["high"] - est["low"]
    assert estimate_accuracy(np.zeros(0), None, 0)["accuracy"] is None


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    x = x.astype(np.float32)
    g = build_knn_graph(x, k=15)
    clusters = np.zeros(y.size, np.int64)
    for i, grp in enumerate(kmeans_groups(x, n_clusters=30)):
        clusters[grp.members] = i
    return x, y.astype(np.int64), g, clusters


def test_hidden_class_gives_low_confidence(digits):
    x, y, g, clusters = digits
    # As in a session: one cluster labelled per digit 0-5 (its members of that digit);
    # digits 6-9 have no label at all.
    lab = np.full(y.size, -1, np.int64)
    for c in range(6):
        share = np.bincount(clusters, weights=(y == c).astype(float), minlength=30)
        best = int(share.argmax())
        lab[(clusters == best) & (y == c)] = c
    mixing = held_out_weights(lab, {"propagated": g}, None, vectors=x, groups=clusters)
    assert mixing is not None and mixing.calibrator is not None
    prop = propagate(g, lab)
    models = {"propagated": prop}
    combined = mix(models, mixing.weights, temperature=mixing.temperature)
    out, feats = calibrated(combined, models, mixing, log_mass=label_mass(prop.scores),
                            distance=nearest_labelled_distance(x, np.flatnonzero(lab >= 0),
                                                               radius=neighbour_radius(g)))
    assert feats.shape == (y.size, len(FEATURES))
    free = lab < 0
    new = free & (y >= 6)
    old = free & (y < 6)
    assert combined.confidence[new].mean() > 0.5  # uncalibrated: more sure than right (0)
    # Every labelled cluster is its class's only one, so the held-out check cannot tell
    # an unlabelled cluster of a named digit from one of a new digit: both come out
    # doubtful, the new digits far more so.
    assert out.confidence[new].mean() < 0.6
    assert out.confidence[old].mean() > out.confidence[new].mean() + 0.2
    assert out.unknown[new].mean() > 3 * out.unknown[old].mean()
    np.testing.assert_array_equal(out.label, combined.label)  # accuracy unchanged
    right = out.label[free] == y[free]
    assert expected_calibration_error(out.confidence[free], right) < \
        expected_calibration_error(combined.confidence[free], right)


@pytest.fixture(scope="module")
def six_clusters(tmp_path_factory):
    """The digits demo after labelling the cores of the first six proposed clusters (the
    state of issue 12, where every confidence used to lie in 0.169..0.179)."""
    from workbench.session import Workbench

    wb = Workbench.demo(tmp_path_factory.mktemp("demo") / "digits", background=False,
                        layout="quick")
    before = wb.estimate()
    y = wb.items["truth"].cast(pl.Int64).to_numpy()
    named = []
    for cluster in wb.clusters[:6]:
        core = cluster.core()
        digit = int(np.bincount(y[core]).argmax())
        named.append(digit)
        wb.label(core, f"digit {digit}")
    wb.wait()
    names = wb.labels.classes
    guess = np.array([int(names[c].split()[1]) for c in wb.predictions.label])
    free = wb.labels.state.human < 0
    yield wb, y, guess, free, np.array(named), before
    wb.close()


def test_demo_session_confidence_and_estimate(six_clusters):
    wb, y, guess, free, named, before = six_clusters
    assert before["accuracy"] is None and before["machine"]["count"] == 0  # before any fit
    conf = wb.predictions.confidence[free]
    assert np.ptp(conf) > 0.02 and conf.std() > 0.05, "all confidences alike: collapsed again"
    right = guess[free] == y[free]
    unnamed = ~np.isin(y[free], named)
    assert unnamed.any()
    assert conf[unnamed].mean() < conf[~unnamed].mean() - 0.2
    assert wb.predictions.unknown[free][unnamed].mean() > \
        3 * wb.predictions.unknown[free][~unnamed].mean()
    est = wb.estimate()
    truth = np.where(~free, True, guess == y).mean()
    assert est["low"] <= truth <= est["high"], (est, truth)
    assert est["n_items"] == wb.n and est["n_human"] == int((~free).sum())
    assert est["n_machine"] == int(free.sum())
    assert est["machine"]["min_confidence"] == 0.9
    assert wb.estimate(0.5)["machine"]["count"] >= est["machine"]["count"] > 0
    at = wb.predictions.confidence >= 0.9
    assert right[at[free]].mean() >= 0.9  # what an export at 0.9 would hold
    with pytest.raises(ValueError, match="min_confidence"):
        wb.estimate(1.5)


@pytest.mark.xfail(strict=True, reason="by design before any spot check: with every labelled "
                   "cluster its class's only one, held-out labels cannot tell a far cluster of "
                   "a named digit from one of a new digit (0.52 for new digits, mean 0.68 "
                   "against 0.48 right); the spot checks of the next pages fix it (test_spot_"
                   "checks::test_confidence_reads_as_accuracy_along_a_session_with_spot_checks)")
def test_demo_session_confidence_reads_as_accuracy(six_clusters):
    wb, y, guess, free, named, _ = six_clusters
    conf = wb.predictions.confidence[free]
    right = guess[free] == y[free]
    unnamed = ~np.isin(y[free], named)
    assert conf[unnamed].mean() < 0.4
    assert abs(conf.mean() - right.mean()) < 0.1


def test_logistic_fit_converges_where_nearly_every_item_is_right():
    """Nine wrong held-out items (singletons, weighing more) among 700 right ones: a full
    Newton step oscillated and sent the intercept to -4.5e6, a calibrator that called every
    item wrong (MNIST, 8 actions, one fold of its own check). Damped steps converge."""
    from workbench.learn._logistic import fit_logistic

    for seed in range(5):
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((700, 5))
        right = np.ones(700, bool)
        right[:9] = False
        z[:9] -= 1.5
        w = np.where(right, 46 / 691, 0.5)
        beta = fit_logistic(z, right, 3.0, w)
        assert np.isfinite(beta).all() and np.abs(beta).max() < 20
        p = 1 / (1 + np.exp(-(beta[0] + z @ beta[1:])))
        # the fitted mean matches the weighted share right (the intercept's score equation)
        assert abs(np.average(p, weights=w) - np.average(right, weights=w)) < 0.01
        assert p[9:].mean() > 0.9 and p[:9].mean() < p[9:].mean()

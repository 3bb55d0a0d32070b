"""Linear probe on real data (scikit-learn digits)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from workbench.learn import LinearProbe, NotEnoughLabels, best_device, probe_predictions


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    return x.astype(np.float32), y.astype(np.int64)


def some_labels(y: np.ndarray, per_class: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lab = np.full(y.size, -1, np.int64)
    for c in np.unique(y):
        lab[rng.choice(np.flatnonzero(y == c), per_class, replace=False)] = c
    return lab


@pytest.fixture(scope="module")
def fitted(digits):
    x, y = digits
    lab = some_labels(y, 10)
    return LinearProbe().fit(x, lab), lab


def test_probe_beats_chance_and_reports_cv_accuracy(digits, fitted):
    x, y = digits
    probe, lab = fitted
    rest = lab < 0
    acc = (probe.predict(x)[rest] == y[rest]).mean()
    assert acc > 0.85  # chance is 0.10
    # Cross-validated accuracy on the 100 human labels is an honest estimate of it.
    assert 0.6 < probe.cv_accuracy_ <= 1.0
    assert abs(probe.cv_accuracy_ - acc) < 0.15
    assert probe.l2_ in probe.l2_grid
    assert probe.device_ == best_device()
    np.testing.assert_array_equal(probe.classes_, np.arange(10))


def test_probabilities_are_calibrated_enough(digits, fitted):
    x, y = digits
    probe, lab = fitted
    p = probe.predict_proba(x)
    assert p.shape == (y.size, 10) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)
    assert probe.temperature_ > 0
    rest = lab < 0
    conf = p[rest].max(1)
    hit = probe.classes_[p[rest].argmax(1)] == y[rest]
    # Mean confidence tracks accuracy (expected calibration error, one bin).
    assert abs(conf.mean() - hit.mean()) < 0.1
    # Out-of-fold probabilities exist for every labelled item (k-fold with 100 labels).
    assert probe.oof_proba_.shape == (100, 10)
    assert np.isfinite(probe.oof_proba_).all()
    np.testing.assert_array_equal(probe.labelled_, np.flatnonzero(lab >= 0))


def test_class_balance(digits):
    x, y = digits
    lab = some_labels(y, 3)
    lab[np.flatnonzero(y == 0)[:150]] = 0  # class 0 is labelled 50 times more
    pred = probe_predictions(x, lab)
    rest = lab < 0
    # Balanced weights keep the flood of zeros from swallowing the other classes.
    assert (pred.label[rest] == 0).mean() < 0.2
    assert (pred.label[rest] == y[rest]).mean() > 0.7
    assert pred.source == "probe"


def test_single_split_above_kfold_limit(digits, monkeypatch):
    import workbench.learn.probe as probe_module

    x, y = digits
    monkeypatch.setattr(probe_module, "PROBE_KFOLD_MAX_LABELS", 50)
    probe = LinearProbe().fit(x, some_labels(y, 20))
    held = np.isfinite(probe.oof_proba_).all(1)
    assert 0.1 < held.mean() < 0.3  # one 20% held-out split
    assert probe.cv_accuracy_ > 0.7


@pytest.mark.parametrize(
    ("labelled", "message"),
    [([], "got 0 labelled item"), ([5], "got 1 labelled item"), ([0, 10, 20], "1 class")],
)
def test_too_few_labels_say_what_is_needed(digits, labelled, message):
    x, _ = digits
    lab = np.full(x.shape[0], -1, np.int64)
    lab[labelled] = 0
    with pytest.raises(NotEnoughLabels, match=message):
        LinearProbe().fit(x, lab)


def test_two_labels_fit_without_crash(digits):
    x, y = digits
    lab = np.full(y.size, -1, np.int64)
    lab[[0, 1]] = y[[0, 1]]
    probe = LinearProbe().fit(x, lab)
    assert np.isnan(probe.cv_accuracy_)  # nothing can be held out from two labels
    assert set(probe.predict(x)) <= set(y[[0, 1]])


def test_unfitted_and_bad_options(digits):
    x, _ = digits
    with pytest.raises(RuntimeError, match="not fitted"):
        LinearProbe().predict_proba(x)
    with pytest.raises(ValueError, match="cv"):
        LinearProbe(cv=1)
    with pytest.raises(ValueError, match="l2_grid"):
        LinearProbe(l2_grid=())


def test_many_labels_choose_l2_on_a_subsample(digits, monkeypatch):
    import workbench.learn.probe as probe_module

    x, y = digits
    monkeypatch.setattr(probe_module, "PROBE_KFOLD_MAX_LABELS", 50)
    monkeypatch.setattr(probe_module, "PROBE_SELECT_LABELS", 100)
    probe = LinearProbe().fit(x, some_labels(y, 20))  # 200 labels
    held = np.isfinite(probe.oof_proba_).all(1)
    assert held.sum() == 20  # a 20% split of the 100-label subsample
    assert any(np.isclose(probe.l2_, v * 0.5) for v in probe.l2_grid)  # rescaled to 200
    rest = np.ones(y.size, bool)
    rest[probe.labelled_] = False
    assert (probe.predict(x)[rest] == y[rest]).mean() > 0.85

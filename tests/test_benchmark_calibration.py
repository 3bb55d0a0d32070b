"""The calibration benchmark's split of an ECE into level and shape (benchmarks/calibration.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from calibration import shape_ece

from workbench.learn.calibrate import expected_calibration_error


def test_shape_ece_removes_a_level_error_and_keeps_a_shape_error():
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.5, 0.99, 200_000)
    right = rng.random(truth.size) < truth
    logit = np.log(truth / (1 - truth))
    # Off by one shift on the logit scale: a large ECE, all of it level.
    shifted = 1 / (1 + np.exp(-(logit - 1.0)))
    assert expected_calibration_error(shifted, right) > 0.08
    assert shape_ece(shifted, right) < 0.01
    # The right level, the wrong shape: half the items said .99, half .60, all .8 right.
    right = rng.random(20_000) < 0.8
    conf = np.where(np.arange(20_000) % 2 == 0, 0.99, 0.6)
    assert abs(conf.mean() - 0.795) < 1e-9
    assert shape_ece(conf, right) > 0.15
    assert abs(shape_ece(conf, right) - expected_calibration_error(conf, right)) < 0.02

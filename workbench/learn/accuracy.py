"""How right a set of machine labels is: the expected calibration error of confidences
against what was right, and the estimated share right with a 90% interval."""

from __future__ import annotations

import numpy as np

from .._config import CAL_INTERVAL_Z

__all__ = ["estimate_accuracy", "expected_calibration_error"]


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, *,
                               bins: int = 15) -> float:
    """ECE: the mean over equal-width confidence bins of |hit rate - mean confidence|,
    weighted by the share of items in the bin (Guo et al., 2017); 0 for no items."""
    c = np.asarray(confidence, np.float64)
    y = np.asarray(correct, bool)
    if c.size == 0:
        return 0.0
    b = np.minimum((c * bins).astype(np.int64), bins - 1)
    gap = np.abs(np.bincount(b, weights=y.astype(float), minlength=bins)
                 - np.bincount(b, weights=c, minlength=bins))
    return float(gap.sum() / c.size)


def estimate_accuracy(p: np.ndarray, boot_sums: np.ndarray | None, n_sure: int, *,
                      model_error: float = 0.0, z: float = CAL_INTERVAL_Z) -> dict:
    """Expected share right of ``n_sure`` items taken as right plus items right with
    probabilities ``p`` (R,), with an interval.

    The count right among the uncertain items is Poisson-binomial (variance sum p(1-p));
    ``boot_sums`` (B,) adds the calibrator's own uncertainty (the variance of the expected
    count across bootstrap refits, :meth:`Calibrator.boot_sums`); ``model_error`` the
    standard deviation of the calibrator's error in the mean over the uncertain items
    (:meth:`Calibrator.model_error`: held-out items are not the unlabelled ones, and the
    bootstrap only sees the former). Returns ``accuracy``, ``low``, ``high`` (None for no
    items) and ``count``.
    """
    p = np.asarray(p, np.float64)
    total = n_sure + p.size
    if total == 0:
        return {"accuracy": None, "low": None, "high": None, "count": 0}
    s = float(p.sum())
    var = float((p * (1 - p)).sum())
    if boot_sums is not None and np.size(boot_sums) > 1:
        # A robust spread (interquartile range): a refit on a lopsided resample of a few
        # clusters can be far off, and one such refit must not blow the interval open.
        q1, q3 = np.percentile(boot_sums, [25, 75])
        var += float((q3 - q1) / 1.349) ** 2
    var += (model_error * p.size) ** 2
    half = z * np.sqrt(var)
    acc = (n_sure + s) / total
    low = max((n_sure + s - half) / total, n_sure / total)
    high = min((n_sure + s + half) / total, 1.0)
    return {"accuracy": float(acc), "low": float(low), "high": float(high), "count": int(total)}

"""How right the labels are now: :meth:`~workbench.Workbench.estimate` and the function that
computes it from the label state and the last fit's calibrated confidence (no refit)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["Estimates", "compute_estimate"]


class Estimates:
    """``estimate()``; needs ``labels``, ``n``, ``_lock``, ``_calibration``,
    ``spot_checks()`` and ``_estimates`` (a cache the session clears at each published
    fit)."""

    def estimate(self, min_confidence: float | None = None) -> dict[str, Any]:
        """How right the labels are now, with a 90% interval; cheap (no refit), any thread.

        From the last published fit: each machine label (accepted, else the prediction)
        is right with its calibrated confidence; human labels are taken as right (their
        own error rate is not estimated). The interval adds the Poisson-binomial spread of
        the count right to the spread of that count across bootstrap refits of the
        calibrator over held-out clusters.

        Parameters
        ----------
        min_confidence : threshold of the ``"machine"`` figures (default
            ``CAL_EXPORT_MIN_CONFIDENCE`` = 0.9): the machine labels an export at this
            ``min_confidence`` would contain.

        Returns
        -------
        dict: ``accuracy``, ``low``, ``high`` (estimated share of all N items whose
        effective label is right), ``n_items``, ``n_human``, ``n_machine``,
        ``machine``: {``min_confidence``, ``count``, ``accuracy``, ``low``, ``high``}, and
        ``spot_checks``: {``labelled``, ``right``} (how many spot checks have a label, and
        the share whose machine label was right when served: a direct measure over items
        nobody chose; None before any). Figures are None before any fit.
        """
        from ._config import CAL_EXPORT_MIN_CONFIDENCE

        t = CAL_EXPORT_MIN_CONFIDENCE if min_confidence is None else float(min_confidence)
        if not 0.0 <= t <= 1.0:
            raise ValueError(f"min_confidence must be between 0 and 1, not {min_confidence}")
        with self._lock:
            record = self._calibration
            cache = self._estimates
        state = self.labels.state
        key = (t, int((state.human >= 0).sum()), int((state.machine >= 0).sum()))
        hit = cache.get(key)
        if hit is not None:
            return dict(hit, machine=dict(hit["machine"]), spot_checks=dict(hit["spot_checks"]))
        out = compute_estimate(state, record, t, self.n)
        checks = self.spot_checks()["right"].drop_nulls()
        out["spot_checks"] = {"labelled": int(checks.len()),
                              "right": float(checks.mean()) if checks.len() else None}
        cache[key] = out
        return dict(out, machine=dict(out["machine"]), spot_checks=dict(out["spot_checks"]))


def compute_estimate(state: Any, record: dict[str, Any] | None, t: float,
                      n: int) -> dict[str, Any]:
    """:meth:`Workbench.estimate` from a label state and the last fit's calibration."""
    from .labels.effective import ACCEPTED, HUMAN, effective_labels
    from .learn.calibrate import estimate_accuracy

    none = {"accuracy": None, "low": None, "high": None}
    is_h = state.human >= 0
    out: dict[str, Any] = {**none, "n_items": int(n), "n_human": int(is_h.sum()),
                           "n_machine": 0,
                           "machine": {"min_confidence": t, "count": 0, **none}}
    if record is None or record.get("calibrator") is None:
        return out
    pred, cal, feats = record["predictions"], record["calibrator"], record["features"]
    if pred.n != n:
        return out
    eff = effective_labels(state, pred)
    machine = eff.layer >= ACCEPTED
    # Chance right per machine label: the calibrated confidence where it is the predicted
    # label; an accepted label that differs gets its share of the remaining doubt.
    cols = np.searchsorted(pred.classes, np.clip(eff.label, 0, None))
    cols = np.minimum(cols, max(pred.classes.size - 1, 0))
    rows = np.arange(n)
    p_lab = pred.proba[rows, cols].astype(np.float64) if pred.classes.size else np.zeros(n)
    p_top = pred.proba.max(axis=1).astype(np.float64) if pred.classes.size else np.ones(n)
    same = (eff.label == pred.label) & (pred.classes.size > 0)
    scale = np.where(same, 1.0, np.divide(p_lab, np.maximum(1.0 - p_top, 1e-9)))
    conf = np.asarray(pred.confidence, np.float64)
    p_right = np.where(same, conf, (1.0 - conf) * np.clip(scale, 0.0, 1.0))
    weight = np.where(same, 1.0, -np.clip(scale, 0.0, 1.0))  # d(p_right)/d(conf)
    offset = np.where(same, 0.0, np.clip(scale, 0.0, 1.0))
    uncertain = ~(eff.layer == HUMAN)  # machine labels, and items with no label (wrong)
    w_all = np.where(machine, weight, 0.0)
    sums = cal.boot_sums(feats, np.where(uncertain, w_all, 0.0))
    base = float(np.where(machine & uncertain, offset, 0.0).sum())
    overall = estimate_accuracy(np.where(machine, p_right, 0.0)[uncertain],
                                sums + base if sums.size else None, int(is_h.sum()),
                                model_error=cal.model_error())
    out.update({k: overall[k] for k in ("accuracy", "low", "high")})
    out["n_machine"] = int(machine.sum())
    sel = machine & (np.nan_to_num(eff.confidence, nan=0.0) >= t)
    if sel.any():
        part = estimate_accuracy(p_right[sel], cal.boot_sums(feats, np.where(sel, weight, 0.0))
                                 + float(offset[sel].sum()), 0, model_error=cal.model_error())
        out["machine"] = {"min_confidence": t, "count": int(sel.sum()),
                          **{k: part[k] for k in ("accuracy", "low", "high")}}
    return out

"""Spot checks: random unlabelled items a person labelled, scored against what the machine
said of them just before.

The calibrator of :mod:`~workbench.learn.calibrate` learns P(right | features) from human
labels hidden from the models. Those labels are the ones a person chose to give: the
cores of proposed clusters and, mostly, pages of suggestions, the items the models were
least sure of. At equal features such items are right less often than a typical unlabelled
item, so the held-out calibrator reads low (MNIST, 50 actions: mean confidence 0.87 where
0.95 of the machine labels were right) and no held-out rearrangement removes the bias: it
is in which items have labels at all.

A spot check is the unbiased answer. Each page of suggestions holds a few items drawn
from the unlabelled ones, each with the same chance, stratified on the machine's
confidence (:func:`stratified_draw`; ``SPOT_CHECK_SHARE``, recorded when served beside the
label log). Once labelled, the retrain hides them on their own, in extra held-out folds that
hide nothing else (:func:`~workbench.learn.heldout.held_out_predictions`), so the models
that predict them have nearly every other label, as the models predicting the unlabelled
items do; their features and whether the mix got them right are draws from the very
population the confidences are about, computed by today's models (a check scored when it
was served would describe the models of then, which were weaker early in a session).
:func:`with_spot_checks` updates the held-out calibrator with them: a logistic model over
the same features whose prior is the held-out calibrator (a ridge towards its
coefficients, ``SPOT_CHECK_PRIOR``), so a handful of checks moves the confidences only a
little and a few dozen carry them. Its spread for
:func:`~workbench.learn.calibrate.estimate_accuracy` is the Laplace posterior of the
coefficients (``boot`` holds draws from it), so the interval narrows as checks accumulate.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit, logit

from .._config import (
    CAL_BOOTSTRAP,
    CAL_BOUNDS,
    SPOT_CHECK_APART,
    SPOT_CHECK_FOLDS,
    SPOT_CHECK_HALF_LIFE,
    SPOT_CHECK_PRIOR,
)
from .accuracy import expected_calibration_error
from .calibrate import Calibrator

__all__ = ["prior_coefficients", "recency_weights", "spot_check_folds",
           "spot_checked_calibrator", "spread_folds", "stratified_draw", "with_spot_checks"]


def prior_coefficients(cal: Calibrator) -> np.ndarray:
    """(F + 1,) the calibrator as a logistic model over its standardised features: its own
    coefficients; the top probability's logit for ``"identity"``; the rate for
    ``"constant"``."""
    nf = cal.mean.size
    if cal.kind == "logistic":
        return np.asarray(cal.coef, np.float64).copy()
    beta = np.zeros(nf + 1)
    if cal.kind == "identity":  # sigmoid(f0) with f0 = mean0 + scale0 * z0
        beta[0], beta[1] = float(cal.mean[0]), float(cal.scale[0])
    else:
        beta[0] = float(logit(np.clip(cal.rate, 0.01, 0.99)))
    return beta


def with_spot_checks(cal: Calibrator, features: np.ndarray, correct: np.ndarray,
                     weight: np.ndarray | None = None, *,
                     prior: tuple[float, float] = SPOT_CHECK_PRIOR,
                     n_boot: int = CAL_BOOTSTRAP, seed: int = 0) -> Calibrator:
    """``cal`` updated with A spot checks (see the module docstring).

    Parameters
    ----------
    cal : the held-out :class:`~workbench.learn.calibrate.Calibrator` (the prior).
    features : (A, F) :func:`~workbench.learn.calibrate.confidence_features` of each
        checked item when it was served.
    correct : (A,) bool, its machine label then equals the label the person gave.
    weight : (A,) weights (default 1; :func:`recency_weights`).
    prior : ridge precision towards the prior's (intercept, slopes), standardised features.
    n_boot : draws from the posterior of the coefficients, for the interval.

    Returns
    -------
    A ``"logistic"`` :class:`Calibrator` with ``check`` holding ``spot_checks`` (A),
    ``spot_weight`` (sum of weights), ``spot_hit_rate`` (weighted share right),
    ``spot_ece`` (the updated model on the checks) and ``prior_kind``; ``cal`` itself when
    there are no checks.
    """
    f = np.asarray(features, np.float64)
    y = np.asarray(correct, bool)
    w = np.ones(y.size) if weight is None else np.asarray(weight, np.float64)
    if f.ndim != 2 or f.shape[0] != y.size or w.shape != y.shape:
        raise ValueError(f"features (A, F), correct (A,) and weight (A,) must align; got "
                         f"{f.shape}, {y.shape}, {w.shape}")
    if y.size == 0 or float(w.sum()) <= 0:
        return cal
    if f.shape[1] != cal.mean.size:
        raise ValueError(f"{f.shape[1]} features per check; the calibrator has {cal.mean.size}")
    beta0 = prior_coefficients(cal)
    lo = np.minimum(cal.lo, f.min(0)) if cal.lo is not None else f.min(0) - 0.5 * cal.scale
    hi = np.maximum(cal.hi, f.max(0)) if cal.hi is not None else f.max(0) + 0.5 * cal.scale
    z = (np.clip(f, lo, hi) - cal.mean) / cal.scale
    a = np.column_stack([np.ones(y.size), z])
    pen = np.full(beta0.size, float(prior[1]))
    pen[0] = float(prior[0])
    beta, hess = _map_logistic(a, y.astype(np.float64), w, beta0, pen)
    cov = np.linalg.inv(hess)
    cov = (cov + cov.T) / 2
    rng = np.random.default_rng(seed)
    boot = rng.multivariate_normal(beta, cov, size=n_boot, method="eigh") if n_boot else \
        np.zeros((0, beta.size))
    p = np.clip(expit(a @ beta), *CAL_BOUNDS)  # as Calibrator.predict
    rate = float(np.average(y, weights=w))
    check = {**cal.check, "prior_kind": cal.kind, "spot_checks": int(y.size),
             "spot_weight": float(w.sum()), "spot_hit_rate": rate,
             "spot_ece": expected_calibration_error(p, y),
             # The error left in a mean confidence: what the checks still disagree by.
             "bias": float(np.average(p - y, weights=w))}
    return Calibrator("logistic", cal.mean, cal.scale, beta, rate, boot, check,
                      cal.unknown_mass, lo, hi)


def _map_logistic(a: np.ndarray, y: np.ndarray, w: np.ndarray, beta0: np.ndarray,
                  pen: np.ndarray, iters: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Weighted logistic regression with a Gaussian prior N(beta0, diag(1/pen)) by Newton's
    method: the posterior mode and the Hessian there."""
    beta = beta0.copy()
    hess = np.diag(pen)
    for _ in range(iters):
        p = expit(a @ beta)
        grad = a.T @ (w * (p - y)) + pen * (beta - beta0)
        hess = (a * (w * p * (1 - p))[:, None]).T @ a + np.diag(pen)
        step = np.linalg.solve(hess, grad)
        beta = beta - step
        if np.abs(step).max() < 1e-7:
            break
    return beta, hess


def recency_weights(order: np.ndarray, half_life: float = SPOT_CHECK_HALF_LIFE) -> np.ndarray:
    """(A,) weights of A checks from their serving order (larger = later): the newest
    weighs 1, a check ``half_life`` checks older weighs 1/2. Checks drawn long ago were
    drawn from a pool that still held the hard items labelled since; recent ones stand for
    the unlabelled items as they are now."""
    order = np.asarray(order, np.float64)
    if order.size == 0:
        return np.zeros(0)
    rank = np.argsort(np.argsort(-order, kind="stable"), kind="stable")  # 0 = newest
    return 0.5 ** (rank / float(half_life))


def stratified_draw(pool: np.ndarray, score: np.ndarray, k: int,
                    rng: np.random.Generator) -> np.ndarray:
    """(k,) sorted items of ``pool`` (P,), one from each of ``k`` equal stretches of the pool
    ranked by ``score`` (P,) (the machine's confidence): every item is drawn with the same
    chance k/P, as in a uniform draw, so the checks still stand for the unlabelled items
    without weights; but low- and high-confidence items come in their proportions, so a
    few dozen checks cannot all land where the machine is right.

    Why: drawn uniformly, the 33 checks of a subjectivity session at 10 actions were all
    right where 0.87 of the machine labels were (a 1-in-100 draw), and the confidence and
    the interval followed them up to 0.97. Stratified on the confidence the checks rank by,
    the spread of their hit rate shrinks by the share of it the ranking explains.

    Each stretch is P/k long on the ranked line; a point drawn uniformly in it picks the
    item under it, so an item's chance is its length in stretches over P/k = k/P. An item
    straddling two stretches can be picked by both; the rare repeat is replaced by a
    uniform draw from the rest.
    """
    pool = np.asarray(pool, np.int64)
    size = pool.size
    if k <= 0 or size == 0:
        return np.zeros(0, np.int64)
    if k >= size:
        return np.sort(pool)
    ranked = pool[np.argsort(np.asarray(score, np.float64), kind="stable")]
    step = size / k
    at = np.minimum(((np.arange(k) + rng.random(k)) * step).astype(np.int64), size - 1)
    got = np.unique(ranked[at])
    if got.size < k:
        rest = np.setdiff1d(pool, got)
        got = np.concatenate([got, rng.choice(rest, size=k - got.size, replace=False)])
    return np.sort(got)


def spot_check_folds(spot: np.ndarray | None, lab: np.ndarray, seed: int, *,
                     one: bool = False, vectors: np.ndarray | None = None) -> list[np.ndarray]:
    """Masks over ``lab`` of the spot-check folds: the labelled spot-checked items split into
    ``SPOT_CHECK_FOLDS`` folds (one per check with fewer checks); ``one``: a single fold,
    for collections so large or with so many classes that the other checks hide one split
    only (each fold costs about a retrain there).

    With ``vectors`` (N, D), checks near each other go to different folds
    (:func:`spread_folds`): an unlabelled item is predicted with every check present, so a
    check must not lose its nearest fellow checks with it. Two checks of a small group the
    other labels miss (MNIST, 10 actions: two 4s in a region of 9s) were each other's only
    support; hidden together, both read wrong at 0.99, and the checks' hit rate fell from
    0.93 to 0.78 between two retrains while 0.94 of the unlabelled items were right.
    Without ``vectors``, at random."""
    if spot is None:
        return []
    mine = np.flatnonzero(np.asarray(spot, np.float64)[lab] > 0)
    if mine.size == 0:
        return []
    parts = 1 if one else min(mine.size, SPOT_CHECK_FOLDS)
    rng = np.random.default_rng(seed + 2)
    if vectors is None or parts < 2:
        part = rng.permutation(mine.size) % parts
    else:
        part = spread_folds(np.asarray(vectors)[lab[mine]], parts, rng)
    out = []
    for j in range(parts):
        m = np.zeros(lab.size, bool)
        m[mine[part == j]] = True
        out.append(m)
    return out


def spread_folds(points: np.ndarray, parts: int, rng: np.random.Generator, *,
                 block: int = 1024) -> np.ndarray:
    """(A,) fold of each of A points: folds of equal size (within one), and each point's
    ``SPOT_CHECK_APART`` nearest points (Euclidean) in other folds as far as the sizes
    allow: a greedy colouring of that neighbour graph in random order, then swaps that
    remove what conflicts the sizes forced on the last points."""
    a = points.shape[0]
    k = min(SPOT_CHECK_APART, parts - 1, a - 1)
    x = np.asarray(points, np.float32)
    sq = np.einsum("ij,ij->i", x, x)
    near = np.empty((a, k), np.int64)
    for s in range(0, a, block):  # (block, A) distances at a time
        d = sq[s:s + block, None] + sq[None, :] - 2.0 * (x[s:s + block] @ x.T)
        d[np.arange(d.shape[0]), np.arange(s, s + d.shape[0])] = np.inf
        near[s:s + block] = np.argpartition(d, k - 1, axis=1)[:, :k]
    linked = [set() for _ in range(a)]
    for i in range(a):
        for j in near[i]:
            linked[i].add(int(j))
            linked[int(j)].add(i)
    cap = -(-a // parts)
    fold = np.full(a, -1, np.int64)
    size = np.zeros(parts, np.int64)

    def used(i: int) -> np.ndarray:
        out = np.zeros(parts, bool)
        for j in linked[i]:
            if fold[j] >= 0:
                out[fold[j]] = True
        return out

    for i in rng.permutation(a):
        free = (size < cap) & ~used(i)
        pick = np.flatnonzero(free if free.any() else size < cap)
        f = int(pick[np.argmin(size[pick])])
        fold[i] = f
        size[f] += 1
    for i in range(a):  # swap a conflicted point with one that fits where it is
        mine = used(i)
        if not mine[fold[i]]:
            continue
        for j in range(a):
            fi, fj = fold[i], fold[j]
            if fj == fi or mine[fj] or j in linked[i]:
                continue
            if any(fold[m] == fi for m in linked[j]):
                continue
            fold[i], fold[j] = fj, fi
            break
    return fold


def spot_checked_calibrator(calibrator: Calibrator, held: Any, rows: np.ndarray,
                            names: list[str], w: np.ndarray, temperature: float) -> Calibrator:
    """``calibrator`` updated (:func:`with_spot_checks`) with the ``rows`` of ``held`` (a
    :class:`~workbench.learn.heldout.HeldOut`) from spot-check folds, mixed by the weights
    ``w`` of the models ``names`` and ``temperature``."""
    from .calibrate import confidence_features
    from .mixing import sharpen

    models = [held.proba[k][rows] for k in names]
    mixed = sharpen(sum(wi * p for wi, p in zip(w, models, strict=True)) / max(w.sum(), 1e-12),
                    temperature)
    feats = confidence_features(mixed, models, w, held.log_mass[rows], held.distance[rows])
    right = (mixed.argmax(axis=1) == held.truth[rows]) & held.present[rows]
    return with_spot_checks(calibrator, feats, right, held.spot[rows])

"""Ridge logistic regression for the confidence calibrator, and its log loss."""

from __future__ import annotations

import numpy as np
from scipy.special import expit, logit


def fit_logistic(z: np.ndarray, y: np.ndarray, l2: float, wt: np.ndarray | None = None,
                 iters: int = 50) -> np.ndarray:
    """Ridge logistic regression by damped Newton steps: (F + 1,) intercept then weights.

    Each step is halved until the penalised loss goes down. A full Newton step diverged
    where the weighted items were almost all right: the probabilities saturate, the
    Hessian of the barely penalised intercept vanishes, and the step sent it to -5e6 (a
    held-out calibrator that called every item wrong, MNIST at 8 actions).
    """
    n, nf = z.shape
    wt = np.ones(n) if wt is None else np.asarray(wt, np.float64)
    a = np.column_stack([np.ones(n), z])
    beta = np.zeros(nf + 1)
    beta[0] = logit(np.clip(y.mean(), 0.01, 0.99))
    pen = np.full(nf + 1, l2)
    pen[0] = 1e-6
    t = y.astype(np.float64)

    def loss(b: np.ndarray) -> float:
        eta = a @ b
        return float(wt @ (np.logaddexp(0.0, eta) - t * eta) + 0.5 * pen @ (b * b))

    current = loss(beta)
    for _ in range(iters):
        p = expit(a @ beta)
        grad = a.T @ (wt * (p - t)) + pen * beta
        hess = (a * (wt * p * (1 - p))[:, None]).T @ a + np.diag(pen)
        step = np.linalg.solve(hess, grad)
        size = 1.0
        while size > 1e-6:
            trial = beta - size * step
            new = loss(trial)
            if new <= current:
                break
            size /= 2
        else:
            break  # no step lowers the loss: at the optimum up to rounding
        beta, moved, current = trial, np.abs(size * step).max(), new
        if moved < 1e-6:
            break
    return beta


def log_loss(p: np.ndarray, y: np.ndarray, wt: np.ndarray | None = None) -> float:
    p = np.clip(np.asarray(p, np.float64), 1e-4, 1 - 1e-4)
    if not y.size:
        return 0.0
    return float(-np.average(np.where(y, np.log(p), np.log(1 - p)), weights=wt))

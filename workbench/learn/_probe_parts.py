"""The probe's helpers that are not the fit itself: held-out fold masks, the scalar
temperature of held-out logits, and column statistics of memory-mapped vectors."""

from __future__ import annotations

import numpy as np

from .._config import PROBE_CV_FOLDS, PROBE_KFOLD_MAX_LABELS, PROBE_SCORE_BLOCK_ROWS

__all__ = ["column_mean_std", "fit_temperature_logits", "fold_masks"]


def fold_masks(y: np.ndarray, cv: int | str, seed: int, *, single: bool = False) -> np.ndarray:
    """(F, n) bool held-out masks; F = 0 when no item can be held out.

    ``single`` (or ``cv="auto"`` above ``PROBE_KFOLD_MAX_LABELS``) gives one 20% split.
    """
    from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

    n = y.size
    if n < 3:
        return np.zeros((0, n), bool)
    if single or (cv == "auto" and n > PROBE_KFOLD_MAX_LABELS):
        counts = np.bincount(y)
        present = int((counts > 0).sum())
        # Stratify when every class can be in both parts (train_test_split refuses a
        # held-out part smaller than the number of classes).
        strat = y if counts[counts > 0].min() >= 2 and 0.2 * n >= present else None
        _, test = train_test_split(np.arange(n), test_size=0.2, random_state=seed, stratify=strat)
        m = np.zeros((1, n), bool)
        m[0, test] = True
        return m
    k = PROBE_CV_FOLDS if cv == "auto" else int(cv)
    counts = np.bincount(y)
    min_count = counts[counts > 0].min()
    if min_count >= 2:
        splitter = StratifiedKFold(n_splits=int(min(k, min_count)), shuffle=True,
                                   random_state=seed)
        splits = splitter.split(np.zeros(n), y)
    else:
        splits = KFold(n_splits=int(min(k, n)), shuffle=True, random_state=seed).split(y)
    masks = []
    for _, test in splits:
        m = np.zeros(n, bool)
        m[test] = True
        masks.append(m)
    return np.stack(masks)


def fit_temperature_logits(torch, logits, y) -> float:
    """Scalar temperature minimising held-out log-loss (Guo et al., 2017)."""
    log_t = torch.zeros((), dtype=logits.dtype, device=logits.device, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=50, line_search_fn="strong_wolfe")
    z = logits.detach()

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(z / log_t.exp(), y)
        loss.backward()
        return loss

    opt.step(closure)
    t = float(log_t.exp().item())
    return float(np.clip(t, 0.05, 20.0)) if np.isfinite(t) else 1.0


def column_mean_std(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and standard deviation (float32), summed in float64 blocks so that a
    memory-mapped (N, D) array is never copied whole (deviations from the mean are taken
    in float32, in one reused buffer, and their squares summed in float64)."""
    total = np.zeros(x.shape[1], np.float64)
    for start in range(0, x.shape[0], PROBE_SCORE_BLOCK_ROWS):
        total += x[start:start + PROBE_SCORE_BLOCK_ROWS].sum(axis=0, dtype=np.float64)
    mean = total / x.shape[0]
    mean32 = mean.astype(np.float32)
    sq = np.zeros(x.shape[1], np.float64)
    buf = np.empty((min(PROBE_SCORE_BLOCK_ROWS, x.shape[0]), x.shape[1]), np.float32)
    for start in range(0, x.shape[0], PROBE_SCORE_BLOCK_ROWS):
        rows = x[start:start + PROBE_SCORE_BLOCK_ROWS]
        d = np.subtract(rows, mean32, out=buf[:rows.shape[0]])
        sq += np.einsum("ij,ij->j", d, d, dtype=np.float64)
    return mean32, np.sqrt(sq / x.shape[0]).astype(np.float32)

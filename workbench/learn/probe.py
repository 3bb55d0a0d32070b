"""Linear probe: torch softmax regression on the embeddings of human-labelled items.

Class-balanced, L2-regularised with the strength chosen on held-out human labels
(k-fold, or one held-out split when there are many labels), temperature-calibrated on the
same held-out predictions, and run on ``cuda`` (else ``mps``, else CPU). All folds and all
L2 strengths are fitted together as one batched problem, so choosing the regularisation
costs one L-BFGS run rather than one per (fold, strength). With hundreds of classes that
one run would move (labels x 25 x classes) logits per step until the slowest problem
converged (minutes at 1,000 classes): there the L2 strength is chosen on one held-out split
and the problems are fitted in bounded batches.
"""

from __future__ import annotations

import numpy as np

from .._arrays import as_vectors
from .._config import (
    PROBE_BATCH_CELLS,
    PROBE_CV_FOLDS,
    PROBE_FOLD_SEED,
    PROBE_KFOLD_MAX_LABELS,
    PROBE_L2_GRID,
    PROBE_MAX_ITER,
    PROBE_SCORE_BLOCK_ROWS,
    PROBE_SELECT_CELLS,
    PROBE_SELECT_LABELS,
)
from .._device import best_device, fit_threads
from ._common import Predictions, check_labels, labelled_classes, warn_if_many_classes
from ._probe_parts import column_mean_std, fit_temperature_logits, fold_masks

__all__ = ["LinearProbe", "best_device", "probe_predictions"]


class LinearProbe:
    """Softmax regression on embeddings, scikit-learn style.

    Parameters
    ----------
    l2_grid : L2 strengths tried (on standardised features, mean loss); the best on
        held-out human labels is kept. Default ``PROBE_L2_GRID``.
    cv : folds for choosing L2 and for out-of-fold probabilities; ``"auto"`` (default) uses
        ``PROBE_CV_FOLDS`` folds up to ``PROBE_KFOLD_MAX_LABELS`` labels, else one 20%
        held-out split of a ``PROBE_SELECT_LABELS`` subsample (L2 rescaled to the full
        count), so a retrain on 10k labels costs little more than one fit. Many classes
        (labels x classes x L2 values x folds above ``PROBE_SELECT_CELLS``) also get one
        split; the fits then run ``PROBE_BATCH_CELLS`` logits at a time.
    max_iter : L-BFGS iterations per fit (default ``PROBE_MAX_ITER``).
    device : torch device; default :func:`best_device`.
    seed : seed of the fold split.

    Fitted attributes
    -----------------
    classes_ : (C,) int64 class ids.
    l2_ : chosen L2 strength.
    temperature_ : softmax temperature fitted on held-out predictions (calibration).
    cv_accuracy_ : accuracy of the chosen model on held-out human labels.
    oof_proba_ : (n_labelled, C) float32 calibrated held-out probabilities of the labelled
        items (NaN rows for items never held out, with a single split).
    labelled_ : (n_labelled,) int64 positions of the labelled items, aligned with ``oof_proba_``.
    device_ : the device used.
    """

    def __init__(
        self,
        *,
        l2_grid: tuple[float, ...] = PROBE_L2_GRID,
        cv: int | str = "auto",
        max_iter: int = PROBE_MAX_ITER,
        device: str | None = None,
        seed: int = PROBE_FOLD_SEED,
    ) -> None:
        if not l2_grid or min(l2_grid) < 0:
            raise ValueError(f"l2_grid must be non-empty and >= 0, got {l2_grid}")
        if cv != "auto" and (not isinstance(cv, int) or cv < 2):
            raise ValueError(f"cv must be 'auto' or an integer >= 2, got {cv!r}")
        self.l2_grid = tuple(float(v) for v in l2_grid)
        self.cv = cv
        self.max_iter = max_iter
        self.device = device
        self.seed = seed

    # -- fitting -------------------------------------------------------------------------------

    def fit(self, vectors: np.ndarray, labels: np.ndarray) -> LinearProbe:
        """Fit on the labelled rows of ``vectors``.

        Parameters
        ----------
        vectors : (N, D) float32 embeddings of all items (the unlabelled ones set the
            feature standardisation, so scores of all items are on one scale).
        labels : (N,) int64 class ids, -1 = unlabelled.

        Raises
        ------
        NotEnoughLabels : fewer than 2 labelled items or 2 classes.
        """
        import torch

        x = as_vectors(vectors)
        labels = check_labels(labels, x.shape[0])
        self.classes_ = labelled_classes(labels, what="the linear probe")
        warn_if_many_classes(self.classes_.size, "the linear probe")
        self.device_ = self.device or best_device()
        self.mean_, std = column_mean_std(x)
        self.scale_ = np.where(std > 1e-8, 1.0 / np.maximum(std, 1e-8), 0.0).astype(np.float32)
        self.labelled_ = np.flatnonzero(labels >= 0)
        y = np.searchsorted(self.classes_, labels[self.labelled_])
        xl = self._standardise(x[self.labelled_])
        old_threads = torch.get_num_threads()
        torch.set_num_threads(fit_threads(xl.size * self.classes_.size * len(self.l2_grid)))
        try:
            self._compute_fit(torch, xl, y)
        finally:
            torch.set_num_threads(old_threads)
        return self

    def _compute_fit(self, torch, xl: np.ndarray, y: np.ndarray) -> None:
        dev = torch.device(self.device_)
        n, c = y.size, self.classes_.size
        grid = self.l2_grid
        xt_all = torch.as_tensor(xl, device=dev)
        yt_all = torch.as_tensor(y, device=dev)
        sel = np.arange(n)
        many = self.cv == "auto" and (
            n > PROBE_KFOLD_MAX_LABELS
            # k folds x the grid x the classes would cost many retrains: one split instead
            or n * c * len(grid) * PROBE_CV_FOLDS > PROBE_SELECT_CELLS
        )
        if many and n > PROBE_SELECT_LABELS:
            # Many labels: choose L2 on one held-out split of a subsample (the choice is
            # stable by then), rescaled to the full count (mean loss: L2 ∝ 1/n for the same
            # prior), so selection costs a fraction of the final fit, not five times it.
            sel = np.sort(np.random.default_rng(self.seed).choice(n, PROBE_SELECT_LABELS,
                                                                  replace=False))
        folds = fold_masks(y[sel], self.cv, self.seed, single=many)
        xt, yt = xt_all[sel], yt_all[sel]
        scale = sel.size / n
        init = None
        if folds.shape[0]:
            train = np.repeat(~folds, len(grid), axis=0)  # (F*G, n), fold-major
            l2 = np.tile(np.asarray(grid), folds.shape[0])
            w, b = _fit_in_batches(torch, xt, yt, c, train, l2, self.max_iter)
            with torch.no_grad():
                logits = torch.einsum("nd,pdc->pnc", xt, w) + b[:, None, :]  # (F*G, n, C)
            logits = logits.reshape(folds.shape[0], len(grid), sel.size, c)
            held = torch.as_tensor(folds, device=dev)
            # Each item's held-out logits under each L2 (the fold that held it out).
            oof = (logits * held[:, None, :, None]).sum(0)  # (G, n, C)
            seen = folds.any(axis=0)
            pred = oof.argmax(-1).cpu().numpy()
            acc = (pred[:, seen] == y[sel][seen]).mean(axis=1)
            nll = torch.nn.functional.cross_entropy(
                oof[:, seen].reshape(-1, c), yt[seen].repeat(len(grid)), reduction="none"
            ).reshape(len(grid), -1).mean(1).cpu().numpy()
            # Highest held-out accuracy; ties (common with few labels) go to lower log-loss.
            best = int(np.lexsort((nll, -acc))[0])
            self.l2_ = grid[best] * scale
            self.cv_accuracy_ = float(acc[best])
            oof_best = oof[best][seen]
            self.temperature_ = fit_temperature_logits(torch, oof_best, yt[seen])
            proba = np.full((n, c), np.nan, np.float32)
            proba[sel[seen]] = torch.softmax(oof_best / self.temperature_, -1).cpu().numpy()
            self.oof_proba_ = proba
            if sel.size < n:  # start the full fit from the chosen held-out model
                k = int(np.flatnonzero(folds.any(axis=1))[0]) * len(grid) + best
                init = (w[k:k + 1].clone(), b[k:k + 1].clone())
        else:  # too few labels to hold any out: strongest L2, no calibration
            self.l2_ = max(grid)
            self.cv_accuracy_ = float("nan")
            self.temperature_ = 1.0
            self.oof_proba_ = np.full((n, c), np.nan, np.float32)
        w, b = _fit_batched(torch, xt_all, yt_all, c, np.ones((1, n), bool),
                            np.array([self.l2_]), self.max_iter, init=init)
        self.coef_ = w[0].detach().cpu().numpy()
        self.intercept_ = b[0].detach().cpu().numpy()

    def refit(self, vectors: np.ndarray, labels: np.ndarray) -> LinearProbe:
        """A new probe fitted once on ``labels`` with this one's L2 strength, temperature and
        feature standardisation (``vectors`` must be the ones this probe was fitted on): no
        held-out selection, no second pass over the vectors. What a held-out fold with many
        classes needs (issue 13): ``LinearProbe(l2_grid=(l2_,), cv=2)`` fits three times.
        ``cv_accuracy_`` is NaN and ``oof_proba_`` is not set.
        """
        import torch

        self._check_fitted()
        x = as_vectors(vectors)
        labels = check_labels(labels, x.shape[0])
        new = LinearProbe(l2_grid=(self.l2_,), cv=self.cv, max_iter=self.max_iter,
                          device=self.device_, seed=self.seed)
        new.classes_ = labelled_classes(labels, what="the linear probe")
        new.device_, new.mean_, new.scale_ = self.device_, self.mean_, self.scale_
        new.labelled_ = np.flatnonzero(labels >= 0)
        new.l2_, new.temperature_, new.cv_accuracy_ = self.l2_, self.temperature_, float("nan")
        y = np.searchsorted(new.classes_, labels[new.labelled_])
        xl = new._standardise(x[new.labelled_])
        old_threads = torch.get_num_threads()
        torch.set_num_threads(fit_threads(xl.size * new.classes_.size))
        try:
            dev = torch.device(new.device_)
            w, b = _fit_batched(torch, torch.as_tensor(xl, device=dev),
                                torch.as_tensor(y, device=dev), new.classes_.size,
                                np.ones((1, y.size), bool), np.array([new.l2_]), self.max_iter)
        finally:
            torch.set_num_threads(old_threads)
        new.coef_ = w[0].detach().cpu().numpy()
        new.intercept_ = b[0].detach().cpu().numpy()
        return new

    # -- scoring -------------------------------------------------------------------------------

    def decision_function(self, vectors: np.ndarray) -> np.ndarray:
        """(N, C) float32 logits (before temperature)."""
        self._check_fitted()
        x = as_vectors(vectors)
        out = np.empty((x.shape[0], self.coef_.shape[1]), np.float32)
        # In blocks, so scoring a million memory-mapped vectors never copies them whole;
        # each block is standardised in one reused buffer.
        buf = np.empty((min(PROBE_SCORE_BLOCK_ROWS, x.shape[0]), x.shape[1]), np.float32)
        for start in range(0, x.shape[0], PROBE_SCORE_BLOCK_ROWS):
            rows = x[start:start + PROBE_SCORE_BLOCK_ROWS]
            block = buf[:rows.shape[0]]
            np.subtract(rows, self.mean_, out=block)
            block *= self.scale_
            dest = out[start:start + rows.shape[0]]
            np.matmul(block, self.coef_, out=dest)
            dest += self.intercept_
        return out

    def predict_proba(self, vectors: np.ndarray) -> np.ndarray:
        """(N, C) float32 calibrated class probabilities (columns = ``classes_``).

        Computed in place in the logits' array: the answer is the only (N, C) array made
        (at 100k items x 1,000 classes each copy would be 400 MB).
        """
        z = self.decision_function(vectors)
        z /= np.float32(self.temperature_)
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z

    def predict(self, vectors: np.ndarray) -> np.ndarray:
        """(N,) int64 predicted class ids."""
        return self.classes_[self.predict_proba(vectors).argmax(axis=1)]

    def predictions(self, vectors: np.ndarray) -> Predictions:
        """:class:`Predictions` for all ``vectors`` (``source="probe"``)."""
        return Predictions.from_proba(self.classes_, self.predict_proba(vectors), "probe")

    def _standardise(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean_) * self.scale_).astype(np.float32)

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise RuntimeError("this LinearProbe is not fitted yet; call fit(vectors, labels)")


def probe_predictions(vectors: np.ndarray, labels: np.ndarray, **options) -> Predictions:
    """Fit a :class:`LinearProbe` (``options`` are its parameters) and score every item."""
    return LinearProbe(**options).fit(vectors, labels).predictions(vectors)


def _fit_in_batches(torch, x, y, c: int, train: np.ndarray, l2: np.ndarray, max_iter: int):
    """:func:`_fit_batched` over as many problems at a time as ``PROBE_BATCH_CELLS`` allows.

    One L-BFGS run over P problems moves (n, P, C) logits at every step and stops only when
    all P have converged: with few classes that is cheap and fits the whole grid at once
    (one batch, as before); with hundreds of classes it is what made choosing the L2
    strength cost minutes (20k items, 1,000 classes, 2,000 labels: 180 s for the 25
    problems at once against ~1 s for one), so the problems go in smaller batches.
    Returns W (P, D, C) and b (P, C) tensors.
    """
    p, n = train.shape
    per = max(1, int(PROBE_BATCH_CELLS // max(n * c, 1)))
    if per >= p:
        return _fit_batched(torch, x, y, c, train, l2, max_iter)
    parts = []
    for i in range(0, p, per):
        mask = train[i:i + per]
        rows = mask.any(axis=0)  # rows no problem of this batch trains on weigh nothing
        if rows.all():
            parts.append(_fit_batched(torch, x, y, c, mask, l2[i:i + per], max_iter))
        else:
            keep = torch.as_tensor(np.flatnonzero(rows), device=x.device)
            parts.append(_fit_batched(torch, x[keep], y[keep], c, mask[:, rows],
                                      l2[i:i + per], max_iter))
    return torch.cat([w for w, _ in parts]), torch.cat([b for _, b in parts])


def _fit_batched(torch, x, y, c: int, train: np.ndarray, l2: np.ndarray, max_iter: int,
                 init=None):
    """Fit P independent softmax regressions at once; problem p sees rows ``train[p]``.

    ``init`` optionally gives starting (W, b). Returns W (P, D, C) and b (P, C) tensors.
    """
    dev = x.device
    p, _n = train.shape
    d = x.shape[1]
    mask = torch.as_tensor(train, dtype=x.dtype, device=dev)
    onehot = torch.nn.functional.one_hot(y, c).to(x.dtype)
    pick = y[:, None, None].expand(-1, p, 1)  # (n, P, 1) class of each row, per problem
    # Class-balanced weights per problem: each class's training rows weigh equally in total.
    counts = mask @ onehot  # (P, C)
    present = (counts > 0).to(x.dtype)
    per_class = torch.where(counts > 0, 1.0 / counts.clamp(min=1), torch.zeros_like(counts))
    per_class = per_class / present.sum(1, keepdim=True).clamp(min=1)
    weight = mask * (per_class @ onehot.T)  # (P, n), rows sum to 1
    lam = torch.as_tensor(l2, dtype=x.dtype, device=dev)
    # W is held as (P, C, D) so that all P problems are one (n, D) x (D, P*C) product whose
    # gradient is (P*C, n) x (n, D): layouts BLAS runs fast (3x the (P, D, C) einsum on one
    # CPU core, 10k labels). L-BFGS does not care how its parameters are laid out.
    weight_t = weight.T.contiguous()  # (n, P)
    if init is None:
        w = torch.zeros((p, c, d), dtype=x.dtype, device=dev, requires_grad=True)
        b = torch.zeros((p, c), dtype=x.dtype, device=dev, requires_grad=True)
    else:
        w = init[0].detach().transpose(1, 2).contiguous().requires_grad_(True)
        b = init[1].detach().clamp(min=-50.0).clone().requires_grad_(True)
    # Classes absent from a fold's training rows must not win by default: pin their bias low.
    absent = (1.0 - present) * -1e4
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, history_size=10,
                            tolerance_grad=1e-4, tolerance_change=1e-7,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        logits = torch.nn.functional.linear(x, w.reshape(p * c, d)).reshape(-1, p, c)
        logits = logits + (b + absent)[None]  # (n, P, C)
        # Each row's own class picked out (not a product with the one-hot rows and a sum:
        # the same numbers without two more (n, P, C) arrays per step).
        nll = -torch.log_softmax(logits, -1).gather(-1, pick).squeeze(-1)  # (n, P)
        loss = (weight_t * nll).sum() + (lam * (w * w).sum((1, 2))).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        b_out = b + absent
    return w.detach().transpose(1, 2).contiguous(), b_out

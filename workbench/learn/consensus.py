"""Several annotators: one consensus label per item, how sure it is, and how good each
annotator is, from all their labels plus the workbench's own model.

:func:`consensus` is Dawid and Skene's model (1979: each annotator has a confusion matrix,
the true class is hidden, fitted by EM) with the model's out-of-sample probabilities as each
item's prior over its true class, in the spirit of CROWDLAB (Goh, Tkachenko and Mueller,
2022), which weighs the model against the annotators. A per-annotator confusion matrix
learns who confuses which classes (CROWDLAB keeps one accuracy per annotator); the model
prior decides the items where annotators are few or split (plain Dawid-Skene has only a
class frequency there). The model's weight (an exponent on its probabilities) is chosen by
how well the fitted model predicts annotations it did not see (one annotation of each item
held out in turn).

Agreement figures over the raw labels: :func:`fleiss_kappa`, :func:`krippendorff_alpha`
(nominal) and :func:`cohen_kappa` per pair of annotators.

Labels are an (N, A) int array: annotator ``a``'s class column index for item ``i``, -1
where ``a`` did not label ``i``. Arrays in, arrays out. An adjudicator's decisions (``final``)
are known true classes: the fit holds them fixed (so they also teach it who is right), and
they are the consensus of their items, with quality 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._config import (
    CONSENSUS_ADJUDICATE_BELOW,
    CONSENSUS_MAX_ITER,
    CONSENSUS_MODEL_WEIGHTS,
    CONSENSUS_SMOOTHING,
)

__all__ = [
    "Consensus",
    "cohen_kappa",
    "consensus",
    "fleiss_kappa",
    "krippendorff_alpha",
    "majority_vote",
]


@dataclass(frozen=True)
class Consensus:
    """The team's answer.

    Attributes
    ----------
    label : (N,) int64 consensus class column (-1: no annotation and no model).
    quality : (N,) float64 the chance the consensus label is right (its posterior).
    proba : (N, C) float64 posterior over the true class.
    n_annotations : (N,) int64 labels per item.
    agreement : (N,) float64 share of the item's annotators who gave the consensus label
        (NaN for an item nobody labelled).
    annotator_quality : (A,) float64 each annotator's estimated accuracy: the mean chance
        that their labels are right (NaN for an annotator with no labels).
    confusion : (A, C, C) float64 each annotator's estimated P(says column | true row).
    model_weight : the exponent chosen for the model's probabilities (0: not used).
    flagged : (N,) bool, worth an adjudicator's look: labelled, not adjudicated, and consensus
        quality below ``CONSENSUS_ADJUDICATE_BELOW``.
    """

    label: np.ndarray
    quality: np.ndarray
    proba: np.ndarray
    n_annotations: np.ndarray
    agreement: np.ndarray
    annotator_quality: np.ndarray
    confusion: np.ndarray
    model_weight: float
    flagged: np.ndarray


def _check(labels: np.ndarray, n_classes: int | None,
           model_proba: np.ndarray | None) -> tuple[np.ndarray, int]:
    lab = np.asarray(labels)
    if lab.ndim != 2:
        raise ValueError(f"labels must be (N items, A annotators), got shape {lab.shape}")
    if not np.issubdtype(lab.dtype, np.integer):
        raise ValueError(f"labels must be integer class columns (-1: none), got {lab.dtype}")
    lab = lab.astype(np.int64)
    top = int(lab.max(initial=-1)) + 1
    c = n_classes if n_classes is not None else (
        model_proba.shape[1] if model_proba is not None else top)
    if lab.min(initial=0) < -1 or top > c:
        raise ValueError(f"labels must be -1 or class columns 0..{c - 1}")
    if model_proba is not None and np.shape(model_proba) != (lab.shape[0], c):
        raise ValueError(f"model_proba must be ({lab.shape[0]}, {c}), got "
                         f"{np.shape(model_proba)}")
    if c < 2:
        raise ValueError("consensus needs at least 2 classes")
    return lab, c


def majority_vote(labels: np.ndarray, n_classes: int | None = None, *,
                  model_proba: np.ndarray | None = None) -> np.ndarray:
    """(N,) int64 the most frequent label per item (-1: none); ties go to the model's more
    probable class when ``model_proba`` is given, else to the lower column."""
    lab, c = _check(labels, n_classes, model_proba)
    counts = _counts(lab, c)
    score = counts + (1e-3 * np.asarray(model_proba, np.float64) if model_proba is not None
                      else 0.0)
    out = score.argmax(axis=1)
    return np.where(counts.sum(axis=1) > 0, out, -1).astype(np.int64)


def _counts(lab: np.ndarray, c: int) -> np.ndarray:
    counts = np.zeros((lab.shape[0], c))
    for a in range(lab.shape[1]):
        seen = lab[:, a] >= 0
        np.add.at(counts, (np.flatnonzero(seen), lab[seen, a]), 1.0)
    return counts


def consensus(labels: np.ndarray, model_proba: np.ndarray | None = None, *,
              n_classes: int | None = None, final: np.ndarray | None = None,
              model_weights: tuple[float, ...] = CONSENSUS_MODEL_WEIGHTS,
              max_iter: int = CONSENSUS_MAX_ITER) -> Consensus:
    """Consensus labels and annotator quality (see the module docstring).

    Parameters
    ----------
    labels : (N, A) int class columns, -1 where an annotator did not label an item.
    model_proba : (N, C) the model's out-of-sample probabilities (for labelled items they
        must come from a model that did not see that item's labels, e.g. cross-fitted),
        or None for annotators alone.
    n_classes : C when there is no ``model_proba`` (default: the largest label + 1).
    final : (N,) int adjudicated class columns, -1 where an item has none: those items'
        true class is known (posterior one-hot, quality 1, never flagged).
    model_weights : exponents tried on the model's probabilities; the one whose fit best
        predicts held-out annotations wins (0 means the model is ignored).
    max_iter : EM iterations.
    """
    lab, c = _check(labels, n_classes, model_proba)
    n, n_ann = lab.shape
    fin = _check_final(final, n, c)
    log_prior = (np.log(np.clip(np.asarray(model_proba, np.float64), 1e-6, 1.0))
                 if model_proba is not None else None)
    weights = tuple(model_weights) if log_prior is not None else (0.0,)
    best = None
    for w in weights:
        post, conf = _em(lab, c, None if log_prior is None else w * log_prior, max_iter, fin)
        score = _held_out_loglik(lab, c, post, conf, None if log_prior is None
                                 else w * log_prior, fin)
        if best is None or score > best[0] + 1e-9:
            best = (score, w, post, conf)
    _, w, post, conf = best
    label = post.argmax(axis=1)
    n_lab = (lab >= 0).sum(axis=1)
    anything = (n_lab > 0) | (log_prior is not None and w > 0) | (fin >= 0)
    label = np.where(anything, label, -1)
    quality = np.where(anything, post.max(axis=1), 0.0)
    agree = np.full(n, np.nan)
    has = n_lab > 0
    same = ((lab == label[:, None]) & (lab >= 0)).sum(axis=1)
    agree[has] = same[has] / n_lab[has]
    ann_q = np.full(n_ann, np.nan)
    for a in range(n_ann):
        seen = np.flatnonzero(lab[:, a] >= 0)
        if seen.size:
            ann_q[a] = float(post[seen, lab[seen, a]].mean())
    flagged = has & (quality < CONSENSUS_ADJUDICATE_BELOW)
    return Consensus(label.astype(np.int64), quality, post, n_lab.astype(np.int64), agree,
                     ann_q, conf, float(w), flagged)


def _check_final(final: np.ndarray | None, n: int, c: int) -> np.ndarray:
    """(N,) int64 adjudicated class columns (-1: none), checked."""
    if final is None:
        return np.full(n, -1, np.int64)
    fin = np.asarray(final)
    if fin.shape != (n,) or not np.issubdtype(fin.dtype, np.integer):
        raise ValueError(f"final must be ({n},) integer class columns (-1: none), got "
                         f"{fin.dtype} {fin.shape}")
    if fin.size and (fin.min() < -1 or fin.max() >= c):
        raise ValueError(f"final must be -1 or class columns 0..{c - 1}")
    return fin.astype(np.int64)


def _fix(post: np.ndarray, fin: np.ndarray) -> np.ndarray:
    """``post`` with the adjudicated items' rows one-hot on their final class."""
    known = np.flatnonzero(fin >= 0)
    if known.size:
        post[known] = 0.0
        post[known, fin[known]] = 1.0
    return post


def _em(lab: np.ndarray, c: int, log_prior: np.ndarray | None,
        max_iter: int, fin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dawid-Skene EM from a majority-vote start, the adjudicated items held at their final
    class; returns the posterior (N, C) and the confusion matrices (A, C, C)."""
    n_ann = lab.shape[1]
    counts = _counts(lab, c)
    post = counts + 1e-3 * (np.exp(log_prior) if log_prior is not None else 1.0)
    post = _fix(post / post.sum(axis=1, keepdims=True), fin)
    conf = np.zeros((n_ann, c, c))
    for _ in range(max_iter):
        conf = _confusions(lab, c, post)
        new = _fix(_posterior(lab, c, conf, log_prior, _class_prior(post, log_prior)), fin)
        if np.abs(new - post).max() < 1e-6:
            post = new
            break
        post = new
    return post, conf


def _class_prior(post: np.ndarray, log_prior: np.ndarray | None) -> np.ndarray | None:
    """The class frequencies, when there is no model prior per item."""
    return None if log_prior is not None else post.mean(axis=0)


def _confusions(lab: np.ndarray, c: int, post: np.ndarray) -> np.ndarray:
    """(A, C, C) P(annotator says column | true row), smoothed towards the diagonal."""
    n_ann = lab.shape[1]
    conf = np.empty((n_ann, c, c))
    for a in range(n_ann):
        seen = lab[:, a] >= 0
        m = np.full((c, c), CONSENSUS_SMOOTHING / c) + np.eye(c) * CONSENSUS_SMOOTHING
        # m[k, l] += sum over items a labelled l of P(true = k)
        np.add.at(m.T, lab[seen, a], post[seen])
        conf[a] = m / m.sum(axis=1, keepdims=True)
    return conf


def _posterior(lab: np.ndarray, c: int, conf: np.ndarray, log_prior: np.ndarray | None,
               class_prior: np.ndarray | None, skip: np.ndarray | None = None) -> np.ndarray:
    """(N, C) P(true class | labels), leaving out the annotation ``skip[i]`` of item ``i``
    (an annotator index, -1: none)."""
    n, n_ann = lab.shape
    logp = (log_prior.copy() if log_prior is not None
            else np.tile(np.log(np.clip(class_prior, 1e-12, None)), (n, 1)))
    log_conf = np.log(conf)
    for a in range(n_ann):
        seen = lab[:, a] >= 0
        if skip is not None:
            seen &= skip != a
        logp[seen] += log_conf[a][:, lab[seen, a]].T
    logp -= logp.max(axis=1, keepdims=True)
    p = np.exp(logp)
    return p / p.sum(axis=1, keepdims=True)


def _held_out_loglik(lab: np.ndarray, c: int, post: np.ndarray, conf: np.ndarray,
                     log_prior: np.ndarray | None, fin: np.ndarray) -> float:
    """Mean log-probability of one annotation per item (the first annotator, in a rotating
    order) predicted from the item's other annotations and the prior: how well a model
    weight explains labels it was not shown."""
    n = lab.shape[0]
    has = np.flatnonzero((lab >= 0).sum(axis=1) >= 1)
    if has.size == 0:
        return 0.0
    # the held-out annotator of each item: its labelled annotators in turn
    order = np.argsort(lab[has] < 0, axis=1, kind="stable")  # labelled annotators first
    n_lab = (lab[has] >= 0).sum(axis=1)
    pick = order[np.arange(has.size), has % np.maximum(n_lab, 1)]
    skip = np.full(n, -1)
    skip[has] = pick
    loo = _fix(_posterior(lab, c, conf, log_prior, _class_prior(post, log_prior), skip), fin)
    said = lab[has, pick]
    p_said = (loo[has] * conf[pick, :, said]).sum(axis=1)  # sum_k P(k) P(says | k)
    return float(np.log(np.clip(p_said, 1e-12, None)).mean())


def _shared_units(labels: np.ndarray, n_classes: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(U, C) label counts and (U,) label totals of the items with 2+ labels."""
    lab, c = _check(labels, n_classes, None)
    counts = _counts(lab, c)
    m = counts.sum(axis=1)
    keep = m >= 2
    return counts[keep], m[keep]


def fleiss_kappa(labels: np.ndarray, n_classes: int | None = None) -> float:
    """Fleiss' kappa over the items with 2+ labels (any number of raters per item, as in
    Fleiss 1971 generalised to unequal counts)."""
    counts, m = _shared_units(labels, n_classes)
    if m.size == 0:
        return float("nan")
    p_i = ((counts * (counts - 1)).sum(axis=1)) / (m * (m - 1))
    p_bar = float(p_i.mean())
    p_j = counts.sum(axis=0) / m.sum()
    p_e = float((p_j ** 2).sum())
    return float((p_bar - p_e) / (1 - p_e)) if p_e < 1 else float("nan")


def krippendorff_alpha(labels: np.ndarray, n_classes: int | None = None) -> float:
    """Krippendorff's alpha for nominal data (units with 2+ labels)."""
    counts, m = _shared_units(labels, n_classes)
    if m.size == 0:
        return float("nan")
    c = counts.shape[1]
    # coincidence matrix o[k, l] = sum_u n_uk (n_ul - [k = l]) / (m_u - 1)
    o = (counts[:, :, None] * counts[:, None, :]
         - np.einsum("uk,kl->ukl", counts, np.eye(c))) / (m - 1)[:, None, None]
    o = o.sum(axis=0)
    n_k = o.sum(axis=1)
    total = n_k.sum()
    d_o = total - np.trace(o)
    d_e = (total ** 2 - (n_k ** 2).sum()) / (total - 1)
    return float(1 - d_o / d_e) if d_e > 0 else float("nan")


def cohen_kappa(labels: np.ndarray, n_classes: int | None = None) -> np.ndarray:
    """(A, A) Cohen's kappa of each pair of annotators over the items both labelled (NaN
    where they share fewer than 2 items; 1 on the diagonal)."""
    lab, c = _check(labels, n_classes, None)
    n_ann = lab.shape[1]
    out = np.eye(n_ann)
    for a in range(n_ann):
        for b in range(a + 1, n_ann):
            both = (lab[:, a] >= 0) & (lab[:, b] >= 0)
            if both.sum() < 2:
                out[a, b] = out[b, a] = np.nan
                continue
            x, y = lab[both, a], lab[both, b]
            p_o = float((x == y).mean())
            p_e = float((np.bincount(x, minlength=c) * np.bincount(y, minlength=c)).sum()
                        / both.sum() ** 2)
            out[a, b] = out[b, a] = (p_o - p_e) / (1 - p_e) if p_e < 1 else np.nan
    return out

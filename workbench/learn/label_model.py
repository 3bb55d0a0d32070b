"""Rules as labellers: a label model that turns the votes of rules (keyword, regex, prompt,
... each voting a class or abstaining) into probabilistic labels, without ground truth.

:func:`fit_label_model` is Dawid and Skene's model (1979) in the form data programming uses
for labelling functions (Ratner et al., 2016): the true class is hidden, and each rule has a
confusion matrix over its C votes *and abstaining*, given the true class, fitted by EM from
the rules' agreements. Abstaining is an outcome because most rules name one class only: a
rule that votes "subjective" is informative through how much more often it fires on
subjective items than on objective ones, which a model of its accuracy when it votes cannot
see. Human labels, where they exist, are held as known classes: they decide their items and
teach the rules' confusions. Details the model takes care of:

* class balance: the class frequencies are estimated with the confusions (a Dirichlet
  pseudo-count per class), not assumed even;
* rules that rarely fire: their confusions are smoothed towards "mostly right when voting"
  with :data:`LABEL_MODEL_SMOOTHING` pseudo-counts, so a rule with ten votes cannot swing
  anything by itself;
* duplicated or near-duplicated rules (votes agreeing on :data:`LABEL_MODEL_DUPLICATE` of
  the items either voted on): each counts 1/(size of its duplicate set) in the posterior,
  so writing a rule twice does not double its say;
* a rule that votes at random: its estimated confusion rows come out equal across true
  classes, so its votes move no posterior (and :func:`check_rules` flags it);
* items no rule votes on: no information, uniform probabilities and ``covered`` False
  (unless a human labelled them);
* classes only rules name: the columns are the union of the rules' and the humans' classes.

:func:`check_rules` asks, for each rule, whether it helps on held-out human labels: the
label model is fitted without the human labels of one fold, and each hidden item's
probability of its human label is compared with and without the rule's term. It flags a
rule by the same rule as the session's ``rule_analysis`` table
(:func:`workbench.rules.analysis.rule_flags`: its accuracy on the human labels is not shown
to beat its class's share of them), so what a person reads and what the benchmark reports
agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._config import (
    LABEL_MODEL_DUPLICATE,
    LABEL_MODEL_MAX_ITER,
    LABEL_MODEL_SMOOTHING,
    LABEL_MODEL_TOL,
    RULE_CHECK_FOLDS,
)
from ._common import Predictions, check_labels

__all__ = ["LabelModel", "RuleCheck", "check_rules", "fit_label_model", "rule_weights",
           "weak_labels"]


@dataclass(frozen=True)
class LabelModel:
    """The rules' votes combined (see the module docstring).

    Attributes
    ----------
    classes : (C,) int64 class ids (columns of ``proba``): every class a rule or a human named.
    proba : (N, C) float64 P(true class | votes, human labels); uniform where ``covered`` is
        False and no human label; one-hot on a human label.
    covered : (N,) bool, at least one rule voted on the item.
    accuracy : (R,) the model's estimate of each rule's accuracy where it votes,
        P(true = vote | it votes) from its confusion and the class prior (NaN for a rule
        that never votes).
    coverage : (R,) share of the items each rule votes on.
    confusion : (R, C, C + 1) P(the rule votes column | true row); the last column abstains.
    class_prior : (C,) the estimated class frequencies.
    weight : (R,) each rule's weight in the posterior (1 / the size of its duplicate set).
    n_iter : EM iterations run.
    """

    classes: np.ndarray
    proba: np.ndarray
    covered: np.ndarray
    accuracy: np.ndarray
    coverage: np.ndarray
    confusion: np.ndarray
    class_prior: np.ndarray
    weight: np.ndarray
    n_iter: int

    @property
    def label(self) -> np.ndarray:
        """(N,) int64 the most probable class id; -1 where nothing is known."""
        known = self.covered | (self.proba.max(axis=1) >= 1.0 - 1e-12)
        return np.where(known, self.classes[self.proba.argmax(axis=1)], -1).astype(np.int64)

    def predictions(self, source: str = "rules") -> Predictions:
        """The model as :class:`~workbench.learn.Predictions` (label -1 where no rule voted
        and no human labelled)."""
        return Predictions.from_proba(self.classes, self.proba.astype(np.float32), source,
                                      known=self.label >= 0)


def rule_weights(votes: np.ndarray, threshold: float = LABEL_MODEL_DUPLICATE) -> np.ndarray:
    """(R,) weight of each rule: 1 / the number of rules (itself included) whose votes agree
    with its own on at least ``threshold`` of the items either of the two votes on."""
    v = np.asarray(votes)
    r = v.shape[1]
    fired = v >= 0
    dup = np.eye(r, dtype=bool)
    for a in range(r):
        for b in range(a + 1, r):
            either = int((fired[:, a] | fired[:, b]).sum())
            same = int((fired[:, a] & (v[:, a] == v[:, b])).sum())
            dup[a, b] = dup[b, a] = either > 0 and same >= threshold * either
    return 1.0 / dup.sum(axis=1)


def fit_label_model(votes: np.ndarray, human: np.ndarray | None = None, *,
                    classes: np.ndarray | None = None, max_iter: int = LABEL_MODEL_MAX_ITER,
                    weights: np.ndarray | None = None) -> LabelModel:
    """Fit the label model on the rules' ``votes`` (see the module docstring).

    Parameters
    ----------
    votes : (N, R) int class ids, one column per rule, -1 where the rule abstains.
    human : optional (N,) int class ids of human labels (-1: none), held as known classes.
    classes : optional class ids to lay the columns out on (must include every class voted
        or labelled); default the union of both.
    max_iter : EM iterations at most (it stops when no posterior moves by more than
        ``LABEL_MODEL_TOL``).
    weights : optional (R,) rule weights (default :func:`rule_weights`).

    Returns
    -------
    :class:`LabelModel`
    """
    v = _check_votes(votes)
    n, r = v.shape
    human = np.full(n, -1, np.int64) if human is None else check_labels(human, n)
    cls = np.unique(np.concatenate([v[v >= 0], human[human >= 0]]))
    if classes is not None:
        given = np.unique(np.asarray(classes, np.int64))
        missing = np.setdiff1d(cls, given)
        if missing.size:
            raise ValueError(f"classes {missing.tolist()} are voted or labelled but not in "
                             "`classes`; pass every class id")
        cls = given
    if cls.size < 2:  # fewer than 2 classes named: unnamed columns keep the model defined
        cls = np.array([0, 1]) if cls.size == 0 else np.array([cls[0], cls[0] + 1])
    c = cls.size
    out = np.where(v >= 0, np.searchsorted(cls, np.maximum(v, 0)), c)  # outcome; c abstains
    fixed = np.where(human >= 0, np.searchsorted(cls, np.maximum(human, 0)), -1)
    w = rule_weights(v) if weights is None else np.asarray(weights, np.float64)
    covered = (v >= 0).any(axis=1)
    # Start: each item's weighted votes (uniform where none), humans fixed.
    post = np.full((n, c), 1e-3)
    for j in range(r):
        fired = out[:, j] < c
        post[np.flatnonzero(fired), out[fired, j]] += w[j]
    post = _fix(post / post.sum(axis=1, keepdims=True), fixed)
    conf = np.zeros((r, c, c + 1))
    prior = np.full(c, 1.0 / c)
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - the count is reported
        conf, prior = _m_step(out, post, c)
        new = _fix(_posterior(out, conf, prior, w), fixed)
        moved = float(np.abs(new - post).max())
        post = new
        if moved < LABEL_MODEL_TOL:
            break
    # What the model says is read from the votes alone: EM fits the full model (an abstain
    # is evidence of the class a rule does not fire on), but rules abstain together (a
    # short sentence has none of the keywords), and their abstains multiplied as if
    # independent made confident labels of items no rule voted on, or that only a rule
    # voting at random voted on. Counted against abstaining, a vote weighs by how much more
    # often the rule fires on one class than on another; abstains add nothing.
    post = _fix(_posterior(out, conf, prior, w, votes_only=True), fixed)
    post[~covered & (fixed < 0)] = 1.0 / c
    fires = 1.0 - conf[:, :, c]  # (R, C) P(the rule votes | true class)
    right = conf[:, np.arange(c), np.arange(c)]  # (R, C) P(it votes the true class | class)
    n_fired = (out < c).sum(axis=0)
    acc = np.divide(right @ prior, fires @ prior, out=np.full(r, np.nan),
                    where=n_fired > 0)
    return LabelModel(cls.astype(np.int64), post, covered, acc, n_fired / max(n, 1), conf,
                      prior, w, it)


def weak_labels(model: LabelModel, human: np.ndarray, min_confidence: float) -> np.ndarray:
    """(N,) int64 training labels: the human label where there is one, else the label
    model's class where a rule voted and its probability is at least ``min_confidence``,
    else -1. A human label is never replaced."""
    human = check_labels(human, model.proba.shape[0])
    top = model.proba.max(axis=1)
    sure = (human < 0) & model.covered & (top >= min_confidence)
    return np.where(sure, model.classes[model.proba.argmax(axis=1)], human).astype(np.int64)


def _check_votes(votes: np.ndarray) -> np.ndarray:
    v = np.asarray(votes)
    if v.ndim != 2:
        raise ValueError(f"votes must be (N items, R rules), got shape {v.shape}")
    if v.size and not np.issubdtype(v.dtype, np.integer):
        raise TypeError(f"votes must be integer class ids (-1: abstain), got {v.dtype}")
    v = v.astype(np.int64, copy=False)
    if v.size and v.min() < -1:
        bad = int(np.argwhere(v < -1)[0][1])
        raise ValueError(f"rule {bad} votes {int(v.min())}: votes are class ids or -1")
    return v


def _fix(post: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    known = np.flatnonzero(fixed >= 0)
    post[known] = 0.0
    post[known, fixed[known]] = 1.0
    return post


def _m_step(out: np.ndarray, post: np.ndarray, c: int) -> tuple[np.ndarray, np.ndarray]:
    """Confusions (R, C, C + 1) and class prior (C,) from the posterior, smoothed: per row,
    pseudo-counts spread like the rule's overall outcomes plus extra on "votes right"."""
    r = out.shape[1]
    s = LABEL_MODEL_SMOOTHING
    conf = np.empty((r, c, c + 1))
    for j in range(r):
        # m[k, o] = sum of P(true = k) over the items with outcome o
        m = np.stack([np.bincount(out[:, j], weights=post[:, k], minlength=c + 1)
                      for k in range(c)])
        rate = (m.sum(axis=0) + 1.0) / (m.sum() + c + 1.0)  # the rule's outcome frequencies
        m += s * rate[None, :]
        fired = 1.0 - rate[c]
        m[np.arange(c), np.arange(c)] += s * fired  # mostly right when it votes
        conf[j] = m / m.sum(axis=1, keepdims=True)
    prior = post.sum(axis=0) + 1.0
    return conf, prior / prior.sum()


def _posterior(out: np.ndarray, conf: np.ndarray, prior: np.ndarray, w: np.ndarray,
               drop: int | None = None, *, votes_only: bool = False) -> np.ndarray:
    """(N, C) P(true class | outcomes), rule ``drop`` left out. ``votes_only``: each outcome
    counted against abstaining (an abstain adds nothing), see :func:`fit_label_model`."""
    n, r = out.shape
    c = conf.shape[1]
    logp = np.tile(np.log(prior), (n, 1))
    log_conf = np.log(conf)
    if votes_only:
        log_conf = log_conf - log_conf[:, :, c:]
    for j in range(r):
        if j != drop and w[j] > 0:
            logp += w[j] * log_conf[j][:, out[:, j]].T
    logp -= logp.max(axis=1, keepdims=True)
    p = np.exp(logp)
    return p / p.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class RuleCheck:
    """Does each rule help on held-out human labels? (:func:`check_rules`)

    Attributes
    ----------
    gain : (R,) mean, over held-out covered human-labelled items, of log P(human label)
        with the rule minus without it (nats per item; > 0 helps).
    t : (R,) ``gain`` over its standard error (0 where nothing was measured).
    accuracy_with, accuracy_without : (R,) the label model's accuracy on the held-out
        covered human-labelled items with and without the rule.
    precision : (R,) share of the rule's votes on human-labelled items that match the label
        (NaN: it voted on none).
    lift_z : (R,) how many standard errors the rule's hits on human-labelled items exceed
        those of votes drawn at the labelled classes' frequencies (0: no votes there).
    votes_on_labelled : (R,) how many human-labelled items the rule voted on.
    flagged : (R,) bool: the human labels do not show the rule beats chance, by the one
        rule of :func:`workbench.rules.analysis.rule_flags` (the session's ``rule_analysis`` flag):
        with ``RULE_CHECK_MIN_VOTES`` labelled votes, ``lift_z`` at or below the z of the
        90% Wilson interval (its lower end at or below the chance hit rate); with fewer,
        the interval's upper end below it. ``t`` is reported, not flagged on: the held-out
        labels are the items a person chose, and a good rule's held-out gain swung below
        -2 standard errors there (subjectivity: 3 of 14 genre rules flagged).
    n_held_out : held-out covered human-labelled items scored.
    """

    gain: np.ndarray
    t: np.ndarray
    accuracy_with: np.ndarray
    accuracy_without: np.ndarray
    precision: np.ndarray
    lift_z: np.ndarray
    votes_on_labelled: np.ndarray
    flagged: np.ndarray
    n_held_out: int


def check_rules(votes: np.ndarray, human: np.ndarray, *, folds: int = RULE_CHECK_FOLDS,
                seed: int = 0, groups: np.ndarray | None = None) -> RuleCheck:
    """Each rule's effect on held-out human labels, cross-fitted, and whether its votes beat
    chance on the human labels (see :class:`RuleCheck`).

    The human-labelled items are split into ``folds`` folds (whole ``groups`` together when
    given: a cluster labelled in one action is one unit). For each fold the label model is
    fitted with that fold's human labels hidden; each hidden item's probability of its human
    label is then read with every rule, and with each rule's term left out in turn (the
    fold's fitted confusions kept).
    """
    from ..rules.analysis import chance_rates, rule_flags

    v = _check_votes(votes)
    n, r = v.shape
    human = check_labels(human, n)
    lab = np.flatnonzero(human >= 0)
    gains: list[list[np.ndarray]] = [[] for _ in range(r)]
    right_with = np.zeros(r)
    right_without = np.zeros(r)
    n_cov = 0
    block = lab if groups is None else np.asarray(groups, np.int64)[lab]
    units = np.unique(block)
    if units.size >= 2 and r:
        parts = min(folds, units.size)
        fold = (np.random.default_rng(seed).permutation(units.size) % parts)[
            np.searchsorted(units, block)]
        classes = np.unique(np.concatenate([v[v >= 0], human[lab]]))
        for f in range(parts):
            hide = lab[fold == f]
            train = human.copy()
            train[hide] = -1
            lm = fit_label_model(v, train, classes=classes)
            c = lm.classes.size
            cov = (v[hide] >= 0).any(axis=1)
            hide = hide[cov]
            out = np.where(v >= 0, np.searchsorted(lm.classes, np.maximum(v, 0)), c)[hide]
            truth = np.searchsorted(lm.classes, human[hide])
            rows = np.arange(hide.size)
            full = _posterior(out, lm.confusion, lm.class_prior, lm.weight, votes_only=True)
            ll_full = np.log(np.clip(full[rows, truth], 1e-9, None))
            ok_full = int((full.argmax(axis=1) == truth).sum())
            n_cov += hide.size
            for j in range(r):
                less = _posterior(out, lm.confusion, lm.class_prior, lm.weight, drop=j,
                                  votes_only=True)
                gains[j].append(ll_full - np.log(np.clip(less[rows, truth], 1e-9, None)))
                right_with[j] += ok_full
                right_without[j] += int((less.argmax(axis=1) == truth).sum())
    gain, t = np.zeros(r), np.zeros(r)
    for j in range(r):
        d = np.concatenate(gains[j]) if gains[j] else np.zeros(0)
        if d.size:
            gain[j] = d.mean()
        se = d.std(ddof=1) / np.sqrt(d.size) if d.size >= 2 else 0.0
        t[j] = gain[j] / se if se > 0 else 0.0
    # Chance: votes drawn at the labelled classes' frequencies hit with probability b.
    freq = {k: m / max(lab.size, 1) for k, m in zip(*np.unique(human[lab], return_counts=True),
                                                    strict=True)}
    precision, lift_z = np.full(r, np.nan), np.zeros(r)
    on_lab = np.zeros(r, np.int64)
    hits = np.zeros(r)
    for j in range(r):
        at = lab[v[lab, j] >= 0]
        on_lab[j] = at.size
        if not at.size:
            continue
        hits[j] = float((v[at, j] == human[at]).sum())
        b = np.array([freq.get(int(k), 0.0) for k in v[at, j]])
        precision[j] = hits[j] / at.size
        sd = float(np.sqrt((b * (1 - b)).sum()))
        lift_z[j] = (hits[j] - b.sum()) / sd if sd > 0 else 0.0
    # The chance the flag compares with is the rules table's (one function for both).
    flagged = rule_flags(hits, on_lab, chance_rates(v, human, np.full(r, -1)))
    denom = max(n_cov, 1)
    return RuleCheck(gain, t, right_with / denom, right_without / denom, precision, lift_z,
                     on_lab, flagged, n_cov)

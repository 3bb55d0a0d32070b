"""How good each rule is, from its votes and the human labels (like Snorkel's LFAnalysis):
coverage, overlaps, conflicts, accuracy with a Wilson interval and a flag for rules the human
labels do not show to beat guessing (:func:`rule_stats`, :func:`rule_flags`), and how well
rules cover each class (:func:`class_coverage`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from .._config import RULE_ACCURACY_Z, RULE_CHECK_MIN_VOTES

__all__ = ["chance_rates", "class_coverage", "rule_flags", "rule_stats", "wilson_interval"]


def wilson_interval(correct: np.ndarray, total: np.ndarray, z: float = RULE_ACCURACY_Z
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of ``correct / total`` (float arrays; NaN where total is 0).

    Better than the normal interval at the small counts and the rates near 0 or 1 that
    rules have: it never leaves [0, 1] and is not zero-width at 0/n or n/n.
    """
    c = np.asarray(correct, np.float64)
    n = np.asarray(total, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = c / n
        denom = 1.0 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = np.where(n > 0, np.clip(centre - half, 0.0, 1.0), np.nan)
    high = np.where(n > 0, np.clip(centre + half, 0.0, 1.0), np.nan)
    return low, high


def rule_flags(correct: np.ndarray, labelled: np.ndarray, base_rate: np.ndarray, *,
               min_votes: int = RULE_CHECK_MIN_VOTES) -> np.ndarray:
    """(R,) bool: the rules whose votes the human labels do not show to beat guessing.

    The one rule behind ``rule_analysis()["flagged"]`` and
    :func:`workbench.learn.label_model.check_rules`: with ``correct`` of its ``labelled``
    votes on human-labelled items right, and ``base_rate`` the share its class has among
    the human labels (what votes drawn at random would hit), a rule is flagged when

    * it voted on at least ``min_votes`` (``RULE_CHECK_MIN_VOTES``) labelled items and the
      lower end of its 90% Wilson interval is at or below ``base_rate``: its accuracy is
      not shown better than chance (one-sided 5%; a rule voting at random is flagged 95
      times in 100, a keyword rule right 65% of the time on a class of half the labels
      passes from about 30 labelled votes); or
    * with fewer votes, even the upper end is below ``base_rate``: it clearly points away
      from its class.

    Rules never judged (no labelled votes, or a class without human labels) are not
    flagged. The human labels a person gives are not a random sample (a suggestions page
    shows the items the model is least sure of, where rules are less often right too), so
    a flag says "not shown useful on the items you labelled"; turn the rule off or look at
    its conflicts (``rule_conflicts``).
    """
    labelled = np.asarray(labelled, np.float64)
    base = np.asarray(base_rate, np.float64)
    low, high = wilson_interval(np.asarray(correct, np.float64), labelled)
    judged = (labelled > 0) & np.isfinite(base)
    low, high, base = (np.nan_to_num(a, nan=0.0) for a in (low, high, base))
    return judged & ((high < base) | ((labelled >= min_votes) & (low <= base)))


def chance_rates(votes: np.ndarray, human: np.ndarray, rule_class: np.ndarray) -> np.ndarray:
    """(R,) what each rule's votes on the human-labelled items would hit at random: the mean,
    over those votes, of the share its voted class has among the human labels. For a rule
    voting one class that is its class's share; a rule voting several classes (a Python
    rule, votes at random) is judged against the classes it actually voted (scored against
    its first class's share alone, a random two-class rule read as better than chance when
    that class was the rarer one). Without labelled votes, the share of ``rule_class``
    (NaN: no human labels, or the class is gone)."""
    votes = np.asarray(votes, np.int64)
    human = np.asarray(human, np.int64)
    lab = np.flatnonzero(human >= 0)
    names, counts = np.unique(human[lab], return_counts=True)
    freq = dict(zip(names.tolist(), (counts / max(lab.size, 1)).tolist(), strict=True))
    out = np.full(votes.shape[1], np.nan)
    for j, c in enumerate(np.asarray(rule_class, np.int64).tolist()):
        said = votes[lab, j]
        said = said[said >= 0]
        if said.size:
            out[j] = float(np.mean([freq.get(k, 0.0) for k in said.tolist()]))
        elif lab.size and c >= 0:
            out[j] = freq.get(c, 0.0)
    return out


def rule_stats(votes: np.ndarray, enabled: np.ndarray, rule_class: np.ndarray,
               human: np.ndarray) -> pl.DataFrame:
    """One row per rule (the columns of ``votes``) with its statistics.

    Parameters
    ----------
    votes : (N, R) int64 class ids, -1 where a rule abstains.
    enabled : (R,) bool; "another rule" in ``overlaps`` and ``conflicts`` is another
        *enabled* rule (a disabled rule's figures say what enabling it would add).
    rule_class : (R,) int64 the class each rule votes for (-1: its class is gone).
    human : (N,) int64 the human labels (-1: none).

    Returns
    -------
    DataFrame with ``coverage`` (share of items it votes on), ``overlaps`` (share of items
    it and another rule vote on), ``conflicts`` (share where another rule votes another
    class), ``labelled`` (human-labelled items it votes on), ``correct`` (of those, where
    its class is the human label), ``accuracy`` with its 90% Wilson interval
    ``accuracy_low``/``accuracy_high`` (null when ``labelled`` is 0), ``base_rate`` (what its
    votes would hit at random: its class's share of the human labels, for a rule of
    several classes the mean share of those it voted; :func:`chance_rates`) and
    ``flagged``: the human labels do not show the rule beats that share (see
    :func:`rule_flags`: with ``RULE_CHECK_MIN_VOTES`` labelled votes, ``accuracy_low`` at or
    below ``base_rate``; with fewer, ``accuracy_high`` below it). A rule for a rare class is
    not flagged for a low accuracy that is still clearly above its class's share.
    """
    votes = np.asarray(votes, np.int64)
    n, r = votes.shape
    on = votes >= 0
    live = on & np.asarray(enabled, bool)[None, :]
    others = live.sum(axis=1, keepdims=True) - live  # (N, R) other enabled rules voting
    # another enabled rule voting a class other than mine: count enabled votes per class
    conflict = np.zeros((n, r), bool)
    if r:
        classes = np.unique(votes[live]) if live.any() else np.zeros(0, np.int64)
        for c in classes:
            of_c = (live & (votes == c)).sum(axis=1, keepdims=True) - (live & (votes == c))
            conflict |= on & (votes != c) & (of_c > 0)
    labelled_mask = on & (human[:, None] >= 0)
    labelled = labelled_mask.sum(axis=0)
    correct = (labelled_mask & (votes == human[:, None])).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(labelled > 0, correct / np.maximum(labelled, 1), np.nan)
    low, high = wilson_interval(correct, labelled)
    base = chance_rates(votes, human, rule_class)
    flagged = rule_flags(correct, labelled, base)
    share = 1.0 / max(n, 1)
    return pl.DataFrame({
        "coverage": on.sum(axis=0) * share,
        "overlaps": (on & (others > 0)).sum(axis=0) * share,
        "conflicts": conflict.sum(axis=0) * share,
        "labelled": labelled.astype(np.int64),
        "correct": correct.astype(np.int64),
        "accuracy": pl.Series(accuracy, dtype=pl.Float64).fill_nan(None),
        "accuracy_low": pl.Series(low, dtype=pl.Float64).fill_nan(None),
        "accuracy_high": pl.Series(high, dtype=pl.Float64).fill_nan(None),
        "base_rate": pl.Series(base, dtype=pl.Float64).fill_nan(None),
        "flagged": flagged,
    }, schema_overrides={"coverage": pl.Float64, "overlaps": pl.Float64,
                         "conflicts": pl.Float64})


def class_coverage(votes: np.ndarray, human: np.ndarray, classes: dict[int, str],
                   rule_class: Sequence[int]) -> pl.DataFrame:
    """One row per live class: ``class``, ``rules`` (rules voting for it), ``voted`` (items
    any of them votes for it), ``rules_only`` (of those, items without a human label: what
    rules add) and ``human`` (items with that human label)."""
    votes = np.asarray(votes, np.int64)
    rule_class = np.asarray(rule_class, np.int64)
    rows = []
    for cid, name in classes.items():
        voted = (votes == cid).any(axis=1) if votes.size else np.zeros(human.size, bool)
        rows.append((name, int((rule_class == cid).sum()), int(voted.sum()),
                     int((voted & (human < 0)).sum()), int((human == cid).sum())))
    return pl.DataFrame(rows, schema={"class": pl.String, "rules": pl.Int64,
                                      "voted": pl.Int64, "rules_only": pl.Int64,
                                      "human": pl.Int64}, orient="row")

"""How good each rule is, from its votes and the human labels (like Snorkel's LFAnalysis):
coverage, overlaps, conflicts, accuracy with a Wilson interval and a flag for rules that
point away from their class (:func:`rule_stats`), and how well rules cover each class
(:func:`class_coverage`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from .._config import RULE_ACCURACY_Z

__all__ = ["class_coverage", "rule_stats", "wilson_interval"]


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
    ``accuracy_low``/``accuracy_high`` (null when ``labelled`` is 0), ``base_rate`` (the
    share of its class among the human labels) and ``flagged``: True when the interval's
    upper end is below ``base_rate``. Then, where it votes, its class is rarer than among
    the labelled items in general: its vote points away from its class. With balanced
    classes the base rate is chance (1/K); a rule for a rare class is not flagged for a
    low accuracy that is still well above its class's share.
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
    known = human[human >= 0]
    base = np.array([(known == c).mean() if known.size and c >= 0 else np.nan
                     for c in np.asarray(rule_class)], np.float64)
    flagged = (labelled > 0) & ~np.isnan(base) & (np.nan_to_num(high, nan=1.0) < base)
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

"""Label-issue ranking on real data (digits) with seeded flipped labels."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from workbench.learn import NotEnoughLabels, neighbour_vote, rank_label_issues


def noisy(y: np.ndarray, seed: int = 0):
    rng = np.random.default_rng(seed)
    pos = rng.choice(y.size, size=y.size // 5, replace=False)
    flipped = rng.choice(pos, size=pos.size // 20, replace=False)
    lab = np.full(y.size, -1, np.int64)
    lab[pos] = y[pos]
    lab[flipped] = (y[flipped] + rng.integers(1, 10, flipped.size)) % 10
    return lab, flipped


def test_flipped_labels_rank_first():
    x, y = load_digits(return_X_y=True)
    x = x.astype(np.float32)
    lab, flipped = noisy(y.astype(np.int64))
    res = rank_label_issues(x, lab)
    k = flipped.size
    precision = np.isin(res.ranked[:k], flipped).mean()
    assert precision > 0.6  # chance: 5%
    assert set(res.ranked) == set(np.flatnonzero(lab >= 0))
    assert np.all(np.diff(res.score) <= 1e-6)  # most suspicious first
    # Flags: most flips are flagged, few clean labels are.
    flagged = res.issues
    assert np.isin(flipped, flagged).mean() > 0.6
    assert (~np.isin(flagged, flipped)).sum() < 2 * k
    # The suggested class of a caught flip is usually the truth.
    caught = np.isin(res.ranked, flipped) & res.is_issue
    assert (res.suggested[caught] == y[res.ranked[caught]]).mean() > 0.8


def test_neighbour_vote_alone_finds_flips():
    x, y = load_digits(return_X_y=True)
    lab, flipped = noisy(y.astype(np.int64), seed=1)
    pos = np.flatnonzero(lab >= 0)
    vote = neighbour_vote(x.astype(np.float32), lab, k=10)
    assert vote.shape == (pos.size, 10)
    np.testing.assert_allclose(vote.sum(1), 1.0)
    own = vote[np.arange(pos.size), lab[pos]]
    top = pos[np.argsort(own)[: flipped.size]]
    assert np.isin(top, flipped).mean() > 0.5


def test_given_out_of_fold_probabilities_are_used_and_checked():
    x, y = load_digits(return_X_y=True)
    x = x.astype(np.float32)
    lab, _ = noisy(y.astype(np.int64))
    m = int((lab >= 0).sum())
    flat = np.full((m, 10), 0.1)
    res = rank_label_issues(x, lab, oof_proba=flat, probe_weight=1.0)
    assert np.allclose(res.score, 0.9)  # a flat model suspects everyone equally
    with pytest.raises(ValueError, match="oof_proba must be"):
        rank_label_issues(x, lab, oof_proba=np.ones((3, 10)))
    one = np.full(y.size, -1, np.int64)
    one[:5] = 3
    with pytest.raises(NotEnoughLabels, match="1 class"):
        rank_label_issues(x, one)

"""Zero-shot pre-labels with a small deterministic text encoder built on real digit vectors."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from workbench.labels import LabelStore
from workbench.learn import accept_zero_shot, zero_shot

NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@pytest.fixture(scope="module")
def data():
    x, y = load_digits(return_X_y=True)
    x = x.astype(np.float32)
    x -= x.mean(0)  # centred, so cosine similarity separates the classes
    # The "text tower": each class name maps to the mean image vector of that digit on the
    # first half; each template nudges it differently, so averaging templates matters.
    half = x.shape[0] // 2
    centres = {n: x[:half][y[:half] == i].mean(0) for i, n in enumerate(NAMES)}

    def encode_text(prompts: list[str]) -> np.ndarray:
        out = []
        for p in prompts:
            name = next(n for n in NAMES if f" {n}." in p)
            rng = np.random.default_rng(sum(map(ord, p)))
            noise = rng.standard_normal(x.shape[1]).astype(np.float32)
            out.append(centres[name] + 0.5 * np.linalg.norm(centres[name]) * noise / 8)
        return np.stack(out)

    return x[half:], y[half:], encode_text


def test_zero_shot_labels_beat_chance(data):
    x, y, enc = data
    res = zero_shot(x, NAMES, enc)
    assert res.proba.shape == (y.size, 10)
    np.testing.assert_allclose(res.proba.sum(1), 1.0, atol=1e-5)
    assert (res.label == y).mean() > 0.7  # chance: 0.10
    # Higher scores are more often right.
    order = np.argsort(-res.score)
    hit = res.label[order] == y[order]
    assert hit[: hit.size // 4].mean() > hit.mean()


def test_accept_in_bulk_as_zeroshot_labels(data, tmp_path):
    x, y, enc = data
    res = zero_shot(x, NAMES, enc, templates=("a photo of a {}.", "a drawing of a {}."))
    ids = [f"img{i}" for i in range(y.size)]
    store = LabelStore(tmp_path / "labels.sqlite", ids)
    store.assign([0], "seven")  # a human label that zero-shot must not replace
    counts = accept_zero_shot(store, res, min_score=0.5)
    assert sum(counts.values()) == int((res.score >= 0.5).sum())
    table = store.table()
    src = dict(zip(table["id"].to_list(), table["label_source"].to_list(), strict=True))
    assert src["img0"] == "human"
    accepted = np.flatnonzero(res.score >= 0.5)
    others = [i for i in accepted if i != 0]
    assert all(src[ids[i]] == "zeroshot" for i in others)
    names = store.classes
    machine = store.state.machine
    assert all(names[int(machine[i])] == NAMES[res.label[i]] for i in others)
    store.close()
    # Reopening the log restores the accepted pre-labels.
    again = LabelStore(tmp_path / "labels.sqlite", ids)
    np.testing.assert_array_equal(again.state.machine, machine)
    again.close()


def test_clear_errors(data):
    x, _, enc = data
    with pytest.raises(ValueError, match="at least 2 class names"):
        zero_shot(x, ["zero"], enc)
    with pytest.raises(ValueError, match="distinct"):
        zero_shot(x, ["one", "one"], enc)
    with pytest.raises(ValueError, match="text tower"):
        zero_shot(x, NAMES[:2], lambda p: np.ones((len(p), 3)))
    with pytest.raises(ValueError, match="prompts"):
        zero_shot(x, NAMES[:2], lambda p: np.ones((1, x.shape[1])))

"""One user action is one undo: accepting predictions or zero-shot labels (every class at
once), naming a class while labelling, merge and delete, on the real digits demo."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from workbench.learn import accept_zero_shot, zero_shot
from workbench.session import Workbench


@pytest.fixture
def wb(tmp_path):
    w = Workbench.demo(tmp_path / "digits", layout="quick", background=False)
    yield w
    w.close()


def _truth(wb: Workbench) -> np.ndarray:
    return wb.items["truth"].cast(pl.Int64).to_numpy()


def _label_some(wb: Workbench, digits=(0, 1, 2), per=8) -> None:
    y = _truth(wb)
    for d in digits:
        wb.label(np.flatnonzero(y == d)[:per], f"digit {d}")


def test_one_undo_takes_back_a_whole_accept_predictions(wb):
    _label_some(wb)
    before = wb.labels.state.machine.copy()
    accepted = wb.accept_predictions()
    machine = wb.labels.state.machine
    assert accepted > 100 and np.unique(machine[machine >= 0]).size == 3
    assert wb.undo()
    np.testing.assert_array_equal(wb.labels.state.machine, before)
    assert wb.redo()
    assert int((wb.labels.state.machine >= 0).sum()) == accepted
    # The human labels were never part of it.
    assert int((wb.labels.state.human >= 0).sum()) == 24


def test_one_undo_takes_back_a_whole_zero_shot_accept(wb):
    names = ["zero", "one", "two"]
    rng = np.random.default_rng(0)

    def encode_text(prompts):
        return rng.standard_normal((len(prompts), wb.vectors.shape[1])).astype(np.float32)

    res = zero_shot(wb.vectors, names, encode_text)
    counts = accept_zero_shot(wb.labels, res)
    assert len(counts) >= 2 and set(wb.labels.class_names) == set(counts)
    assert wb.undo()
    # Classes created by the accept go too: one undo, nothing left behind.
    assert wb.labels.class_names == []
    assert int((wb.labels.state.machine >= 0).sum()) == 0


def test_naming_a_class_by_labelling_is_one_undo(wb):
    wb.label([0, 1, 2], "brand new")
    assert wb.labels.class_names == ["brand new"]
    assert wb.undo()
    assert wb.labels.class_names == []  # no empty class left behind
    assert int((wb.labels.state.human >= 0).sum()) == 0
    assert not wb.labels.can_undo


def test_merge_and_delete_are_one_undo_each(wb):
    _label_some(wb)
    wb.merge_classes(["digit 1", "digit 2"], "digit 0")
    assert wb.labels.class_names == ["digit 0"]
    assert wb.undo()
    assert sorted(wb.labels.class_names) == ["digit 0", "digit 1", "digit 2"]
    wb.delete_class("digit 1")
    assert wb.undo()
    assert int((wb.labels.state.human >= 0).sum()) == 24

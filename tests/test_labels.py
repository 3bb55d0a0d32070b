"""The label log: derived state, undo/redo, restarts, machine vs human layers."""

from __future__ import annotations

import sqlite3
import time

import numpy as np
import pytest
from _labels import IDS, current

from workbench.labels import LabelStore


def test_assign_by_ids_and_positions_and_create_on_first_use(store):
    store.assign(["item0", "item1"], "cat")
    store.assign(np.array([2, 3]), "dog")
    assert current(store)[:5] == ["cat", "cat", "dog", "dog", None]
    assert store.class_names == ["cat", "dog"]


def test_undo_redo_any_depth_and_new_action_clears_redo(store):
    store.assign([0], "a")
    store.assign([1], "b")
    store.rename_class("a", "A")
    # Naming a new class is one action (create + assign): one undo takes back both.
    assert store.undo() and store.undo()
    assert current(store)[:2] == ["a", None]
    assert store.class_names == ["a"]  # no empty class "b" left behind
    assert store.undo()
    assert current(store)[:2] == [None, None] and store.class_names == []
    assert not store.undo()
    for _ in range(3):
        assert store.redo()
    assert current(store)[:2] == ["A", "b"]
    store.assign([2], "c")
    assert not store.redo()  # a new action ends the redo chain
    assert store.redo() is False


def test_state_survives_reopen_including_undo_stack(log_at):
    path = log_at
    with_store = LabelStore(path, IDS)
    with_store.assign([0, 1, 2], "x")
    with_store.assign([3], "y")
    with_store.undo()
    with_store.close()
    again = LabelStore(path, IDS)
    assert current(again)[:4] == ["x", "x", "x", None]
    assert again.redo()
    assert current(again)[3] == "y"
    again.close()


def test_machine_labels_never_overwrite_human(store):
    store.assign([0, 1], "cat")
    store.assign([0, 1, 2], "dog", source="probe", confidence=[0.9, 0.8, 0.7])
    assert current(store)[:3] == ["cat", "cat", "dog"]
    cat, dog = store.class_id("cat"), store.class_id("dog")
    assert store.state.human[:3].tolist() == [cat, cat, -1]
    assert store.state.machine[:3].tolist() == [dog, dog, dog]
    np.testing.assert_allclose(store.state.machine_confidence[:3], [0.9, 0.8, 0.7], rtol=1e-6)
    store.remove([0])
    assert current(store)[0] == "dog"  # the machine label shows once the human one is gone
    with pytest.raises(ValueError, match="confidence"):
        store.assign([3], "dog", source="propagated")
    with pytest.raises(ValueError, match="human labels carry no confidence"):
        store.assign([3], "dog", confidence=[1.0])


def test_class_operations(store):
    store.assign([0, 1], "a")
    store.assign([2], "b")
    store.assign([3], "c")
    store.merge_classes(["b", "c"], into="a")
    assert current(store)[:4] == ["a"] * 4
    assert store.class_names == ["a"]
    store.undo()
    assert current(store)[:4] == ["a", "a", "b", "c"]
    store.delete_class("b")
    assert current(store)[2] is None
    store.undo()
    assert current(store)[2] == "b"
    with pytest.raises(ValueError, match="already exists"):
        store.create_class("a")
    with pytest.raises(ValueError, match="empty"):
        store.create_class("  ")
    with pytest.raises(KeyError, match="no class named 'zzz'"):
        store.rename_class("zzz", "q")


@pytest.mark.parametrize(
    "name",
    ["<img src=x onerror=alert(1)>", "../../etc", "a/b", "猫 🐈", "x\x00y", "'; DROP TABLE actions;--",
     "L" * 5000],
)
def test_label_names_are_data(store, name, log_at):
    if "\x00" in name and isinstance(log_at, str):  # PostgreSQL text cannot hold NUL
        with pytest.raises(ValueError, match="NUL character"):
            store.assign([0], name)
        assert store.log.last_id() == 0 and store.class_names == []
        return
    store.assign([0], name)
    assert store.class_names == [name]
    store.close()
    again = LabelStore(log_at, IDS)
    assert again.class_names == [name]
    assert current(again)[0] == name
    again.close()


def test_bad_items_name_the_item(store):
    with pytest.raises(KeyError, match="unknown item id 'nope'"):
        store.assign(["nope"], "a")
    with pytest.raises(IndexError, match="position 99 is out of range"):
        store.assign([99], "a")
    with pytest.raises(ValueError, match="no items"):
        store.assign([], "a")
    assert store.log.last_id() == 0  # nothing half-written


def test_every_action_is_one_row_with_time_annotator_source(store, log_at):
    store.assign([0], "a")
    store.assign([1], "a", source="zeroshot", confidence=[0.5])
    rows = [(a.kind, a.annotator, a.source, a.time) for a in store.log.read()]
    assert [r[:3] for r in rows] == [
        ("create_class", "ann", "human"), ("assign", "ann", "human"), ("assign", "ann", "zeroshot"),
    ]
    assert all(abs(r[3] - time.time()) < 60 for r in rows)
    if not isinstance(log_at, str):  # the SQLite file itself, read by SQLite
        con = sqlite3.connect(store.log.path)
        assert con.execute("SELECT COUNT(*) FROM actions").fetchone()[0] == 3
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    table = store.table()
    assert table.columns[:6] == ["id", "label", "label_source", "confidence", "annotator", "time"]
    assert table.row(0)[:5] == ("item0", "a", "human", 1.0, "ann")
    assert table.row(1)[:5] == ("item1", "a", "zeroshot", 0.5, "ann")


def test_two_stores_see_each_others_labels(log_at):
    a = LabelStore(log_at, IDS, annotator="a")
    b = LabelStore(log_at, IDS, annotator="b")
    a.assign([0], "x")
    b.assign([1], "x")  # b refreshes before writing: the class exists, no duplicate
    a.refresh()
    assert current(a)[:2] == ["x", "x"] == current(b)[:2]
    assert a.class_names == ["x"]
    a.close()
    b.close()


def test_current_labels_of_100k_items_well_under_a_second(log_at):
    ids = [f"i{i}" for i in range(100_000)]
    s = LabelStore(log_at, ids)
    rng = np.random.default_rng(0)
    for c in range(10):
        s.assign(rng.choice(100_000, 10_000, replace=False), f"class{c}")
    s.close()
    t0 = time.perf_counter()
    again = LabelStore(log_at, ids)
    cur = again.state.current
    elapsed = time.perf_counter() - t0
    assert (cur >= 0).sum() > 60_000
    assert elapsed < 1.0, f"deriving 100k labels took {elapsed:.2f}s"
    again.close()

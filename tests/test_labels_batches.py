"""One user action = one transaction = one undo; undo and redo per annotator, replayed by
their recorded target; old logs (before batches) still open and replay as before."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from _labels import IDS, current

from workbench.labels import LabelStore


def batches(log) -> list[tuple[str, int]]:
    """(kind, batch id) of every row as stored (SQLite: a NULL batch read as the row's own
    id), read back from the log (an SQLite file, or PostgreSQL)."""
    if isinstance(log.path, str):
        return [(a.kind, a.batch) for a in log.read()]
    con = sqlite3.connect(log.path)
    rows = con.execute("SELECT kind, COALESCE(batch, id) FROM actions ORDER BY id").fetchall()
    con.close()
    return rows


def test_naming_a_new_class_is_one_action_and_one_undo(store):
    store.assign([0, 1], "cat")
    assert batches(store.log) == [("create_class", 1), ("assign", 1)]
    assert store.undo()
    assert store.class_names == [] and current(store)[:2] == [None, None]  # no empty "cat"
    assert not store.undo()
    assert store.redo()
    assert store.class_names == ["cat"] and current(store)[:2] == ["cat", "cat"]


def test_assign_many_is_one_action_and_one_undo(store):
    store.assign([9], "dog")
    batch = store.assign_many(
        [([0, 1], "cat", [0.9, 0.8]), (np.array([2]), "dog", [0.7]), ([], "skipped", []),
         (["item3", "item4"], "bird", [0.6, 0.5])],
        source="zeroshot",
    )
    kinds = batches(store.log)[2:]
    assert [k for k, _ in kinds] == ["create_class", "assign", "assign", "create_class",
                                     "assign"]
    assert {b for _, b in kinds} == {batch}
    assert current(store)[:5] == ["cat", "cat", "dog", "bird", "bird"]
    np.testing.assert_allclose(store.state.machine_confidence[:5], [0.9, 0.8, 0.7, 0.6, 0.5],
                               rtol=1e-6)
    assert store.undo()  # one undo takes back every group and both new classes
    assert store.class_names == ["dog"] and current(store)[:5] == [None] * 5
    assert store.redo()
    assert current(store)[:5] == ["cat", "cat", "dog", "bird", "bird"]
    assert store.assign_many([([], "x")]) is None


def test_a_failed_group_writes_nothing(store):
    store.assign([9], "dog")
    last, classes = store.log.last_id(), store.classes
    with pytest.raises(KeyError, match="no class named 'cat'"):
        store.assign_many([([0], "dog"), ([1], "cat")], create=False)
    with pytest.raises(KeyError, match="no class with id 7"):
        store.assign_many([([0], "new"), ([1], 7)])
    with pytest.raises(ValueError, match="2 finite numbers"):
        store.assign_many([([0], "dog", [0.5]), ([1, 2], "dog", [0.5])], source="probe")
    assert store.log.last_id() == last and store.classes == classes
    assert current(store)[:2] == [None, None]


def test_merge_and_delete_are_one_action_each(store):
    store.assign_many([([0, 1], "a"), ([2], "b"), ([3], "c")])
    store.merge_classes(["b", "c"], into="a")
    assert [k for k, _ in batches(store.log)][-1] == "merge_classes"
    assert store.undo()
    assert current(store)[:4] == ["a", "a", "b", "c"]
    store.delete_class("b")
    assert [k for k, _ in batches(store.log)][-1] == "delete_class"
    assert store.undo()
    assert current(store)[:4] == ["a", "a", "b", "c"] and store.class_names == ["a", "b", "c"]


def test_batch_block_is_one_action_and_cancels_on_error(store):
    with store.batch():
        store.assign([0], "a")
        store.create_class("b")
        store.assign([1], "b")
        store.remove([0])
    assert current(store)[:2] == [None, "b"]
    assert store.undo()
    assert store.class_names == [] and not store.can_undo
    last = store.log.last_id()

    def interrupted() -> None:
        with store.batch():
            store.assign([0], "c")
            assert store.class_names == ["c"]  # checks inside see the batch's own steps
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    assert store.log.last_id() == last and store.class_names == []
    with store.batch(), pytest.raises(RuntimeError, match="inside a batch"):
        store.undo()


def test_confidences_follow_the_items_in_the_order_given(store):
    store.assign([3, 1, 2, 1], "x", source="probe", confidence=[0.3, 0.1, 0.2, 0.1])
    np.testing.assert_allclose(store.state.machine_confidence[1:4], [0.1, 0.2, 0.3], rtol=1e-6)


def test_undo_is_per_annotator_and_keeps_others_later_work(log_at):
    path = log_at
    a = LabelStore(path, IDS, annotator="a")
    b = LabelStore(path, IDS, annotator="b")
    a.create_class("x")
    a.assign([0, 1], "x")
    b.assign([1, 2], "x")
    assert a.undo()  # a's assign goes; b's later label of item 1 stays
    for s in (a, b):
        s.refresh()
        assert current(s)[:3] == [None, "x", "x"]
    assert b.can_undo and a.can_redo and not b.can_redo
    b.assign([5], "x")  # b's new action leaves a's redo alone
    assert a.redo()
    b.refresh()
    assert current(b)[:3] == ["x", "x", "x"]
    assert b.undo() and b.undo()  # b's two actions, never a's
    assert current(b)[:3] == ["x", "x", None]
    assert not b.undo()
    a.close()
    b.close()
    again = LabelStore(path, IDS, annotator="c")  # reopening replays the recorded targets
    assert current(again)[:6] == ["x", "x", None, None, None, None]
    assert not again.can_undo
    again.close()


def test_undo_that_would_repeat_a_class_name_is_refused(log_at):
    path = log_at
    a = LabelStore(path, IDS, annotator="a")
    b = LabelStore(path, IDS, annotator="b")
    a.assign([0], "x")
    b.delete_class("x")
    a.assign([1], "x")  # a new class takes the freed name
    with pytest.raises(ValueError, match="second class named 'x'"):
        b.undo()
    a.rename_class("x", "y")
    assert b.undo()
    assert sorted(b.class_names) == ["x", "y"]
    a.close()
    b.close()


def _old_log(path):
    """A log as written before batches existed: no batch column; undo targets rows."""
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.executescript(
        """
        CREATE TABLE actions (id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL,
            annotator TEXT NOT NULL, kind TEXT NOT NULL, source TEXT NOT NULL DEFAULT 'human',
            class_id INTEGER, name TEXT, target INTEGER);
        CREATE TABLE items (action_id INTEGER NOT NULL REFERENCES actions(id),
            item_id TEXT NOT NULL, confidence REAL);
        CREATE INDEX items_by_action ON items(action_id);
        CREATE TABLE merged (action_id INTEGER NOT NULL REFERENCES actions(id),
            class_id INTEGER NOT NULL);
        INSERT INTO actions VALUES (1, 1.0, 'ann', 'create_class', 'human', 0, 'a', NULL);
        INSERT INTO actions VALUES (2, 2.0, 'ann', 'assign', 'human', 0, NULL, NULL);
        INSERT INTO items VALUES (2, 'item0', NULL), (2, 'item1', NULL);
        INSERT INTO actions VALUES (3, 3.0, 'ann', 'create_class', 'human', 1, 'b', NULL);
        INSERT INTO actions VALUES (4, 4.0, 'ann', 'assign', 'human', 1, NULL, NULL);
        INSERT INTO items VALUES (4, 'item2', NULL);
        INSERT INTO actions VALUES (5, 5.0, 'ann', 'undo', 'human', NULL, NULL, 4);
        INSERT INTO actions VALUES (6, 6.0, 'ann', 'undo', 'human', NULL, NULL, 3);
        INSERT INTO actions VALUES (7, 7.0, 'ann', 'redo', 'human', NULL, NULL, 3);
        """
    )
    con.close()


def test_old_log_opens_replays_as_before_and_upgrades(tmp_path):
    path = tmp_path / "labels.sqlite"
    _old_log(path)
    ro = LabelStore(path, IDS, read_only=True)  # read-only: no upgrade, still replays
    assert current(ro)[:3] == ["a", "a", None] and ro.class_names == ["a", "b"]
    ro.close()
    store = LabelStore(path, IDS, annotator="ann")
    assert current(store)[:3] == ["a", "a", None] and store.class_names == ["a", "b"]
    assert store.redo()  # the old redo stack: the assign of item2
    assert current(store)[2] == "b"
    store.assign([3], "c")
    assert store.undo() and store.class_names == ["a", "b"]  # new: one undo per action
    assert store.undo() and current(store)[2] is None  # old rows: one undo per row
    assert store.undo() and store.class_names == ["a"]
    store.close()
    con = sqlite3.connect(path)
    assert "batch" in [r[1] for r in con.execute("PRAGMA table_info(actions)")]
    con.close()

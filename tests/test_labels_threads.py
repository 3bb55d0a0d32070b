"""One LabelStore shared by threads (a notebook kernel's UI callbacks and a background
retrainer): no spurious errors, nothing half-written, and the state equals a replay."""

from __future__ import annotations

import random
import sqlite3
import threading

import numpy as np

from workbench.labels import LabelStore

IDS = [f"i{k}" for k in range(30)]
NAMES = ["a", "b", "c", "d"]


def _hammer(store: LabelStore, seed: int, barrier: threading.Barrier, errors: list) -> None:
    rng = random.Random(seed)
    barrier.wait()
    for _ in range(30):
        op = rng.choice(["assign", "assign", "machine", "many", "remove", "undo", "redo",
                         "create", "read"])
        items = rng.sample(range(len(IDS)), rng.randint(1, 3))
        try:
            if op == "assign":
                store.assign(items, rng.choice(NAMES))
            elif op == "machine":
                store.assign(items, rng.choice(NAMES), source="probe",
                             confidence=[rng.random() for _ in items])
            elif op == "many":
                store.assign_many([(items[:1], rng.choice(NAMES)), (items[1:], "e")])
            elif op == "remove":
                store.remove(items)
            elif op == "undo":
                store.undo()
            elif op == "redo":
                store.redo()
            elif op == "create":
                store.create_class(rng.choice(NAMES))
            else:
                store.refresh()
                assert len(store.table()) == len(IDS)
                assert store.can_undo in (True, False)
        except ValueError as exc:  # deliberate: the name exists, or an undo is refused
            if "already exists" not in str(exc) and "second class" not in str(exc):
                errors.append(exc)
        except Exception as exc:
            errors.append(exc)


def test_threads_sharing_one_store(tmp_path):
    path = tmp_path / "labels.sqlite"
    store = LabelStore(path, IDS, annotator="ann")
    barrier = threading.Barrier(6)
    errors: list[Exception] = []
    threads = [threading.Thread(target=_hammer, args=(store, seed, barrier, errors))
               for seed in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[:3]
    replay = LabelStore(path, IDS, annotator="ann")
    for layer in ("human", "machine", "human_action", "machine_action", "machine_source"):
        np.testing.assert_array_equal(getattr(store.state, layer), getattr(replay.state, layer))
    np.testing.assert_array_equal(store.state.machine_confidence, replay.state.machine_confidence)
    assert store.classes == replay.classes
    assert (store.can_undo, store.can_redo) == (replay.can_undo, replay.can_redo)
    con = sqlite3.connect(path)
    empty = con.execute(
        "SELECT COUNT(*) FROM actions a WHERE kind IN ('assign', 'remove')"
        " AND NOT EXISTS (SELECT 1 FROM items WHERE action_id = a.id)"
    ).fetchone()[0]
    assert empty == 0  # no assign committed without its items
    con.close()
    store.close()
    replay.close()

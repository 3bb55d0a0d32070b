"""Label log across real processes: undo per annotator, class names unique under the write
lock, and a consistent backup while another process holds un-checkpointed WAL frames."""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import textwrap

from workbench.labels import EventLog, LabelStore

IDS = [f"i{k}" for k in range(20)]

# A labeller in its own process, driven line by line over stdin so that the order of
# events between two of them is exact: "assign 3 x", "undo", "redo", "state", "quit".
LABELLER = textwrap.dedent(
    """
    import json, sys
    from workbench.labels import LabelStore
    store = LabelStore(sys.argv[1], [f"i{k}" for k in range(20)], annotator=sys.argv[2])
    for line in sys.stdin:
        cmd, *args = line.split()
        if cmd == "assign":
            out = store.assign([int(args[0])], args[1])
        elif cmd == "undo":
            out = store.undo()
        elif cmd == "redo":
            out = store.redo()
        elif cmd == "state":
            store.refresh()
            names = store.classes
            out = [names.get(int(c)) for c in store.state.current]
        elif cmd == "quit":
            break
        print(json.dumps(out), flush=True)
    store.close()
    """
)


class Labeller:
    def __init__(self, db, who: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", LABELLER, str(db), who], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=os.getcwd()),
        )

    def __call__(self, line: str):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline()
        assert reply, f"labeller died on {line!r}"
        return json.loads(reply)

    def close(self) -> None:
        self.proc.stdin.write("quit\n")
        self.proc.stdin.close()
        assert self.proc.wait(timeout=60) == 0


def test_undo_in_one_process_takes_back_only_its_own_label(tmp_path):
    db = tmp_path / "labels.sqlite"
    seed = LabelStore(db, IDS, annotator="seed")
    seed.create_class("x")
    seed.close()
    a, b = Labeller(db, "alice"), Labeller(db, "bob")
    try:
        a("assign 0 x")
        b("assign 1 x")
        assert a("undo") is True
        for who in (a, b):
            assert who("state")[:2] == [None, "x"]  # alice's label gone, bob's stays
        b("assign 2 x")
        assert a("redo") is True  # bob's new action does not end alice's redo chain
        assert b("undo") is True
        assert b("state")[:3] == ["x", "x", None]
    finally:
        a.close()
        b.close()
    again = LabelStore(db, IDS, annotator="carol")  # the log replays as it was lived
    names = again.classes
    assert [names.get(int(c)) for c in again.state.current][:3] == ["x", "x", None]
    again.close()


ROUNDS = 20


def _race(db: str, who: str, barrier, results) -> None:
    store = LabelStore(db, IDS, annotator=who)
    for r in range(ROUNDS):
        barrier.wait()
        try:
            store.create_class(f"class{r}")
            results.put((r, who, "created"))
        except ValueError as exc:
            results.put((r, who, str(exc)))
    store.close()


def test_two_processes_creating_one_name_make_one_class(tmp_path):
    db = tmp_path / "labels.sqlite"
    LabelStore(db, IDS).close()
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(str(db), who, barrier, results))
             for who in ("alice", "bob")]
    for p in procs:
        p.start()
    got = [results.get(timeout=120) for _ in range(2 * ROUNDS)]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    for r in range(ROUNDS):
        outcomes = sorted(o for rr, _, o in got if rr == r)
        assert outcomes == [f"a class named 'class{r}' already exists", "created"], outcomes
    con = sqlite3.connect(db)
    names = [n for (n,) in con.execute("SELECT name FROM actions WHERE kind='create_class'")]
    assert sorted(names) == sorted(f"class{r}" for r in range(ROUNDS))
    con.close()


# Writes, then keeps its connection open without checkpointing, so the acknowledged
# actions live only in the -wal file while the parent takes a backup.
WAL_WRITER = textwrap.dedent(
    """
    import sys
    from workbench.labels import LabelStore
    store = LabelStore(sys.argv[1], [f"i{k}" for k in range(20)], annotator="w")
    store.log._con.execute("PRAGMA wal_autocheckpoint=0")
    for k in range(int(sys.argv[2])):
        store.assign([k % 20], f"c{k % 3}")
    print("acked", flush=True)
    sys.stdin.readline()
    k = 0
    while True:  # keep writing while the parent takes a second backup
        store.assign([k % 20], "busy")
        k += 1
        if k == 5:
            print("writing", flush=True)
    """
)


def test_backup_holds_every_acknowledged_action_in_the_wal(tmp_path):
    db = tmp_path / "labels.sqlite"
    writer = subprocess.Popen(
        [sys.executable, "-c", WAL_WRITER, str(db), "30"], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=os.getcwd()),
    )
    try:
        assert writer.stdout.readline() == "acked\n"
        assert os.path.getsize(f"{db}-wal") > 0  # the actions are not checkpointed
        log = EventLog(db, read_only=True)
        (tmp_path / "backups").mkdir()
        copy = log.backup(tmp_path / "backups")  # a folder: the copy takes the log's name
        assert copy == tmp_path / "backups" / "labels.sqlite"
        writer.stdin.write("go\n")
        writer.stdin.flush()
        assert writer.stdout.readline() == "writing\n"
        second = log.backup(tmp_path / "second.sqlite")  # while the writer commits
        log.close()
    finally:
        writer.kill()
        writer.wait()
    assert not os.path.exists(f"{copy}-wal")  # one self-contained file
    restored = LabelStore(copy, IDS, create=False)
    assert restored.log.last_id() == 30 + 3  # 30 assigns, 3 of them with their new class
    names = restored.classes
    assert sorted(names.values()) == ["c0", "c1", "c2"]
    want = {k % 20: f"c{k % 3}" for k in range(30)}
    assert [names.get(int(c)) for c in restored.state.current] == [want[k] for k in range(20)]
    restored.close()
    con = sqlite3.connect(second)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("SELECT COUNT(*) FROM actions").fetchone()[0] >= 33 + 5
    con.close()

"""Two processes label one project at once: no event is lost, nothing is corrupted, and
each sees the other's labels when it refreshes. On both stores: one SQLite file, and a real
PostgreSQL server."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from collections import Counter

from workbench.labels import LabelStore

N = 200
WRITER = textwrap.dedent(
    """
    import sys
    from workbench.labels import LabelStore
    ids = [f"i{k}" for k in range(200)]
    store = LabelStore(sys.argv[1], ids, annotator=sys.argv[2])
    offset = int(sys.argv[3])
    for k in range(100):
        store.assign([offset + k], "shared" if k % 2 else sys.argv[2])
    print("done", flush=True)
    """
)


def test_two_processes_lose_nothing(log_at):
    db = log_at
    LabelStore(db, [f"i{k}" for k in range(N)]).close()  # schema exists before the race
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(db), who, str(off)],
                         stdout=subprocess.PIPE, text=True, env=env)
        for who, off in (("alice", 0), ("bob", 100))
    ]
    outs = [p.communicate(timeout=240)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    if not isinstance(db, str):
        con = sqlite3.connect(db)
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        con.close()
    store = LabelStore(db, [f"i{k}" for k in range(N)])
    actions = store.log.read()
    assert Counter(a.annotator for a in actions if a.kind == "assign") == {"alice": 100,
                                                                          "bob": 100}
    names = store.classes
    labels = [names.get(int(c)) for c in store.state.current]
    assert None not in labels
    assert labels[1] == "shared" and labels[0] == "alice" and labels[100] == "bob"
    # Both may have created "shared" at the same moment: ids never collide.
    ids = [a.class_id for a in actions if a.kind == "create_class"]
    assert len(ids) == len(set(ids)) >= 3
    store.close()

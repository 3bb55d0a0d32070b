"""SIGKILL a writer in the middle of a stream of actions: every action that returned is kept.

The writer is a real child process writing to a real SQLite file, or to a real PostgreSQL
server (its open transaction dies with it); the parent reads its acknowledgements and kills
it with SIGKILL (no cleanup, no atexit, no flush).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap

import pytest

from workbench.labels import LabelStore

N_ITEMS = 40

WRITER = textwrap.dedent(
    f"""
    import sys
    N_ITEMS = {N_ITEMS}
    from workbench.labels import LabelStore
    ids = [f"item{{i}}" for i in range(N_ITEMS)]
    store = LabelStore(sys.argv[1], ids, annotator="writer")
    ops = sys.argv[2].split(",")
    i = 0
    while True:
        op = ops[i % len(ops)]
        if op == "assign":
            store.assign([i % len(ids), (i * 7) % len(ids)], f"class{{i % 3}}")
        elif op == "remove":
            store.remove([(i * 3) % len(ids)])
        elif op == "undo":
            store.undo()
        elif op == "redo":
            store.redo()
        print(i, flush=True)
        i += 1
    """
)


def _prefix_states(ops: list[str], upto: int, tmp_path):
    """Replay the same stream in-process (the reference), yielding (n, state) after n actions."""
    ids = [f"item{i}" for i in range(N_ITEMS)]
    ref = LabelStore(tmp_path / "reference.sqlite", ids)
    try:
        for i in range(upto):
            op = ops[i % len(ops)]
            if op == "assign":
                ref.assign([i % N_ITEMS, (i * 7) % N_ITEMS], f"class{i % 3}")
            elif op == "remove":
                ref.remove([(i * 3) % N_ITEMS])
            elif op == "undo":
                ref.undo()
            elif op == "redo":
                ref.redo()
            names = ref.classes
            yield i + 1, [names.get(int(c)) for c in ref.state.current]
    finally:
        ref.close()


def _random_case(seed: int) -> tuple[list[str], int]:
    """A seeded random mix of actions and a random point to kill the writer at."""
    rng = random.Random(seed)
    ops = [rng.choice(["assign", "assign", "remove", "undo", "redo"]) for _ in range(11)]
    return ops, rng.randint(3, 90)


@pytest.mark.parametrize(
    ("ops", "kill_after"),
    [(["assign", "assign", "remove"], 60),
     (["assign", "assign", "undo", "assign", "undo", "undo", "redo"], 60),
     *(_random_case(seed) for seed in range(4))],
    ids=["labels", "undo-redo", *(f"random-{seed}" for seed in range(4))],
)
def test_sigkill_mid_stream_keeps_every_returned_action(tmp_path, log_at, ops, kill_after):
    db = log_at
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db), ",".join(ops)],
        stdout=subprocess.PIPE, text=True, env=env,
    )
    acked = -1
    try:
        for line in child.stdout:
            acked = int(line)
            if acked >= kill_after:
                break
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert acked >= kill_after, "writer never got going"

    ids = [f"item{i}" for i in range(N_ITEMS)]
    reopened = LabelStore(db, ids)
    names = reopened.classes
    got = [names.get(int(c)) for c in reopened.state.current]
    reopened.close()
    # Every acknowledged action (0..acked) is there; the one in flight may or may not be,
    # and the kill may land after a few more unread acknowledgements were written.
    matches = [n for n, state in _prefix_states(ops, acked + 40, tmp_path)
               if n > acked and state == got]
    assert matches, "state after SIGKILL matches no prefix that includes all acked actions"

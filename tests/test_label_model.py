"""Model-based tests of the label log (hypothesis): random sequences of assign, remove,
create/rename/merge/delete class, undo and redo against a plain in-memory model of the same
rules. The derived state must match after every step and after a reopen."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from workbench.labels import LabelStore

N = 6
IDS = [f"i{k}" for k in range(N)]
NAMES = st.sampled_from(["a", "b", "c", "<b>x</b>", "../d", "é"])
ITEMS = st.lists(st.integers(0, N - 1), min_size=1, max_size=4, unique=True)


class Model:
    """The rules, written plainly: snapshots for undo/redo, dicts for labels."""

    def __init__(self) -> None:
        self.classes: list[str] = []          # live class names, creation order
        self.human: dict[int, str] = {}        # item -> class name
        self.machine: dict[int, str] = {}
        self.undo_stack: list[tuple] = []
        self.redo_stack: list[tuple] = []

    def snapshot(self) -> tuple:
        return (list(self.classes), dict(self.human), dict(self.machine))

    def restore(self, snap: tuple) -> None:
        self.classes, self.human, self.machine = list(snap[0]), dict(snap[1]), dict(snap[2])

    def act(self, fn) -> None:
        before = self.snapshot()
        fn()
        self.undo_stack.append(before)
        self.redo_stack.clear()

    def undo(self) -> None:
        if self.undo_stack:
            self.redo_stack.append(self.snapshot())
            self.restore(self.undo_stack.pop())

    def redo(self) -> None:
        if self.redo_stack:
            self.undo_stack.append(self.snapshot())
            self.restore(self.redo_stack.pop())

    def current(self) -> list[str | None]:
        return [self.human.get(i, self.machine.get(i)) for i in range(N)]


class LabelLogMachine(RuleBasedStateMachine):
    @initialize()
    def setup(self) -> None:
        self.dir = Path(tempfile.mkdtemp())
        self.store = LabelStore(self.dir / "l.sqlite", IDS)
        self.model = Model()

    def teardown(self) -> None:
        self.store.close()

    @rule(items=ITEMS, name=NAMES)
    def assign(self, items, name):
        m = self.model
        if name not in m.classes:
            m.act(lambda: m.classes.append(name))
        m.act(lambda: m.human.update(dict.fromkeys(items, name)))
        self.store.assign(items, name)

    @precondition(lambda self: self.model.classes)
    @rule(items=ITEMS, pick=st.integers(0, 10), conf=st.floats(0, 1))
    def assign_machine(self, items, pick, conf):
        m = self.model
        name = m.classes[pick % len(m.classes)]
        m.act(lambda: m.machine.update(dict.fromkeys(items, name)))
        self.store.assign(items, name, source="probe", confidence=[conf] * len(items))

    @rule(items=ITEMS)
    def remove(self, items):
        m = self.model
        m.act(lambda: [m.human.pop(i, None) for i in items])
        self.store.remove(items)

    @precondition(lambda self: self.model.classes)
    @rule(pick=st.integers(0, 10), new=NAMES)
    def rename(self, pick, new):
        m = self.model
        old = m.classes[pick % len(m.classes)]
        if new in m.classes:
            return  # refused by both (merge is the way)

        def do():
            m.classes[m.classes.index(old)] = new
            for layer in (m.human, m.machine):
                for i, v in layer.items():
                    if v == old:
                        layer[i] = new

        m.act(do)
        self.store.rename_class(old, new)

    @precondition(lambda self: len(self.model.classes) >= 2)
    @rule(a=st.integers(0, 10), b=st.integers(0, 10))
    def merge(self, a, b):
        m = self.model
        src, dst = m.classes[a % len(m.classes)], m.classes[b % len(m.classes)]
        if src == dst:
            return

        def do():
            m.classes.remove(src)
            for layer in (m.human, m.machine):
                for i, v in layer.items():
                    if v == src:
                        layer[i] = dst

        m.act(do)
        self.store.merge_classes([src], into=dst)

    @precondition(lambda self: self.model.classes)
    @rule(pick=st.integers(0, 10))
    def delete(self, pick):
        m = self.model
        name = m.classes[pick % len(m.classes)]

        def do():
            m.classes.remove(name)
            for layer in (m.human, m.machine):
                for i in [i for i, v in layer.items() if v == name]:
                    del layer[i]

        m.act(do)
        self.store.delete_class(name)

    @rule()
    def undo(self):
        self.model.undo()
        self.store.undo()

    @rule()
    def redo(self):
        self.model.redo()
        self.store.redo()

    @rule()
    def reopen(self):
        self.store.close()
        self.store = LabelStore(self.dir / "l.sqlite", IDS)

    @invariant()
    def same_state(self):
        if not hasattr(self, "store"):
            return
        names = self.store.classes
        got = [names.get(int(c)) for c in self.store.state.current]
        assert got == self.model.current()
        assert self.store.class_names == self.model.classes


LabelLogMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_label_log_matches_model = LabelLogMachine.TestCase

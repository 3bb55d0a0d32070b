"""Model-based tests of the label log (hypothesis): random sequences of assign, remove,
create/rename/merge/delete class, undo and redo against a plain in-memory model of the same
rules. The derived state must match after every step and after a reopen.

Two models: one annotator, where undo/redo restore snapshots (what a user expects), and
several annotators sharing one file, where the state is the fold of the applied batches in
log order and each annotator undoes and redoes only its own batches."""

from __future__ import annotations

import bisect
import tempfile
from pathlib import Path

import pytest
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


def log_target(folder: Path, kind: str):
    """An SQLite file in ``folder``, or a fresh schema on the tests' PostgreSQL server."""
    if kind == "sqlite":
        return folder / "l.sqlite"
    import _postgres

    return _postgres.fresh_url()


class LabelLogMachine(RuleBasedStateMachine):
    store_kind = "sqlite"

    @initialize()
    def setup(self) -> None:
        self.dir = Path(tempfile.mkdtemp())
        self.target = log_target(self.dir, self.store_kind)
        self.store = LabelStore(self.target, IDS)
        self.model = Model()

    def teardown(self) -> None:
        self.store.close()

    @rule(items=ITEMS, name=NAMES)
    def assign(self, items, name):
        m = self.model

        def do():  # naming a new class and labelling with it is one action, one undo
            if name not in m.classes:
                m.classes.append(name)
            m.human.update(dict.fromkeys(items, name))

        m.act(do)
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
        self.store = LabelStore(self.target, IDS)

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


class PostgresLabelLogMachine(LabelLogMachine):
    """The same rules on the PostgreSQL store."""
    store_kind = "postgresql"


PostgresLabelLogMachine.TestCase.settings = settings(
    max_examples=30, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_label_log_matches_model_on_postgresql = PostgresLabelLogMachine.TestCase


# -- several annotators on one file --------------------------------------------------------

WHO = st.sampled_from(["A", "B", "C"])


class FoldModel:
    """The multi-annotator rule, written plainly: a list of batches, each a list of steps
    on class ids; the state is the fold of the applied batches in log order."""

    def __init__(self) -> None:
        self.batches: list[tuple[str, list[tuple]]] = []   # (owner, steps)
        self.undone: set[int] = set()
        self.done: dict[str, list[int]] = {}
        self.redo_stack: dict[str, list[int]] = {}
        self.next_cid = 0

    def new_class(self) -> int:
        self.next_cid += 1
        return self.next_cid - 1

    def act(self, who: str, steps: list[tuple]) -> None:
        self.batches.append((who, steps))
        self.done.setdefault(who, []).append(len(self.batches) - 1)
        self.redo_stack[who] = []

    def undo(self, who: str) -> str:
        """"done", "nothing", or "refused" (it would make two live classes of one name)."""
        if not self.done.get(who):
            return "nothing"
        b = self.done[who][-1]
        if self.would_repeat_a_name(self.undone | {b}):
            return "refused"
        self.done[who].pop()
        self.undone.add(b)
        self.redo_stack.setdefault(who, []).append(b)
        return "done"

    def redo(self, who: str) -> str:
        if not self.redo_stack.get(who):
            return "nothing"
        b = self.redo_stack[who][-1]
        if self.would_repeat_a_name(self.undone - {b}):
            return "refused"
        self.redo_stack[who].pop()
        self.undone.discard(b)
        bisect.insort(self.done.setdefault(self.batches[b][0], []), b)
        return "done"

    def would_repeat_a_name(self, undone: set[int]) -> bool:
        keep, self.undone = self.undone, undone
        names = list(self.fold()[0].values())
        self.undone = keep
        return len(set(names)) < len(names)

    def fold(self) -> tuple[dict[int, str], dict[int, int], dict[int, int]]:
        classes: dict[int, str] = {}
        layers: dict[str, dict[int, int]] = {"human": {}, "machine": {}}
        for b, (_, steps) in enumerate(self.batches):
            if b in self.undone:
                continue
            for step in steps:
                kind = step[0]
                if kind == "create" or (kind == "rename" and step[1] in classes):
                    classes[step[1]] = step[2]
                elif kind in ("merge", "delete"):
                    srcs, dst = (step[1], step[2]) if kind == "merge" else ([step[1]], None)
                    if kind == "merge" and dst not in classes:
                        continue
                    for src in srcs:
                        if src == dst or src not in classes:
                            continue
                        for layer in layers.values():
                            for i in [i for i, c in layer.items() if c == src]:
                                if dst is None:
                                    del layer[i]
                                else:
                                    layer[i] = dst
                        del classes[src]
                elif kind == "assign" and step[1] in classes:
                    layers[step[2]].update(dict.fromkeys(step[3], step[1]))
                elif kind == "remove":
                    for i in step[2]:
                        layers[step[1]].pop(i, None)
        return classes, layers["human"], layers["machine"]

    def names(self) -> dict[str, int]:
        return {n: c for c, n in self.fold()[0].items()}

    def current(self) -> list[str | None]:
        classes, human, machine = self.fold()
        return [classes[human[i]] if i in human else
                classes[machine[i]] if i in machine else None for i in range(N)]


class SeveralAnnotatorsMachine(RuleBasedStateMachine):
    store_kind = "sqlite"

    @initialize()
    def setup(self) -> None:
        self.dir = Path(tempfile.mkdtemp())
        self.target = log_target(self.dir, self.store_kind)
        self.stores = {w: LabelStore(self.target, IDS, annotator=w) for w in "ABC"}
        self.model = FoldModel()

    def teardown(self) -> None:
        for s in self.stores.values():
            s.close()

    @rule(who=WHO, items=ITEMS, name=NAMES)
    def assign(self, who, items, name):
        m = self.model
        cid = m.names().get(name)
        steps = []
        if cid is None:
            cid = m.new_class()
            steps.append(("create", cid, name))
        m.act(who, [*steps, ("assign", cid, "human", items)])
        self.stores[who].assign(items, name)

    @rule(who=WHO, groups=st.lists(st.tuples(ITEMS, NAMES), min_size=1, max_size=3),
          conf=st.floats(0, 1))
    def assign_many_machine(self, who, groups, conf):
        m = self.model
        names = m.names()
        steps = []
        for items, name in groups:
            if name not in names:
                names[name] = m.new_class()
                steps.append(("create", names[name], name))
            steps.append(("assign", names[name], "machine", items))
        m.act(who, steps)
        self.stores[who].assign_many(
            [(items, name, [conf] * len(items)) for items, name in groups], source="probe"
        )

    @rule(who=WHO, items=ITEMS)
    def remove(self, who, items):
        self.model.act(who, [("remove", "human", items)])
        self.stores[who].remove(items)

    @precondition(lambda self: self.model.names())
    @rule(who=WHO, pick=st.integers(0, 10), new=NAMES)
    def rename(self, who, pick, new):
        names = self.model.names()
        old = sorted(names)[pick % len(names)]
        if new in names and new != old:
            with pytest.raises(ValueError, match="already exists"):
                self.stores[who].rename_class(old, new)
            return
        self.model.act(who, [("rename", names[old], new)])
        self.stores[who].rename_class(old, new)

    @precondition(lambda self: len(self.model.names()) >= 2)
    @rule(who=WHO, a=st.integers(0, 10), b=st.integers(0, 10))
    def merge(self, who, a, b):
        names = self.model.names()
        order = sorted(names)
        src, dst = order[a % len(order)], order[b % len(order)]
        if src == dst:
            return
        self.model.act(who, [("merge", [names[src]], names[dst])])
        self.stores[who].merge_classes([src], into=dst)

    @precondition(lambda self: self.model.names())
    @rule(who=WHO, pick=st.integers(0, 10))
    def delete(self, who, pick):
        names = self.model.names()
        name = sorted(names)[pick % len(names)]
        self.model.act(who, [("delete", names[name])])
        self.stores[who].delete_class(name)

    @rule(who=WHO)
    def undo(self, who):
        self._undo_redo(who, "undo")

    @rule(who=WHO)
    def redo(self, who):
        self._undo_redo(who, "redo")

    def _undo_redo(self, who, kind):
        outcome = getattr(self.model, kind)(who)
        if outcome == "refused":
            with pytest.raises(ValueError, match="second class named"):
                getattr(self.stores[who], kind)()
        else:
            assert getattr(self.stores[who], kind)() is (outcome == "done")

    @rule(who=WHO)
    def reopen(self, who):
        self.stores[who].close()
        self.stores[who] = LabelStore(self.target, IDS, annotator=who)

    @invariant()
    def every_store_sees_the_model(self):
        if not hasattr(self, "stores"):
            return
        want = self.model.current()
        classes = self.model.fold()[0]
        for who, store in self.stores.items():
            store.refresh()
            names = store.classes
            assert [names.get(int(c)) for c in store.state.current] == want, who
            assert names == classes, who
            assert store.can_undo == bool(self.model.done.get(who)), who
            assert store.can_redo == bool(self.model.redo_stack.get(who)), who


SeveralAnnotatorsMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# ~20 s: every step writes with fsync and refreshes three stores.
test_several_annotators_match_fold_model = pytest.mark.slow(SeveralAnnotatorsMachine.TestCase)


class PostgresSeveralAnnotatorsMachine(SeveralAnnotatorsMachine):
    """Three annotators on one PostgreSQL store."""
    store_kind = "postgresql"


PostgresSeveralAnnotatorsMachine.TestCase.settings = settings(
    max_examples=30, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_several_annotators_on_postgresql = pytest.mark.slow(
    PostgresSeveralAnnotatorsMachine.TestCase)

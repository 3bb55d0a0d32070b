"""Creating a project is all or nothing: a create killed at any point leaves a folder that a
second create turns into exactly the project asked for (no label imported twice, nothing
inherited by another dataset); vectors a project cannot use are refused up front; the demo
is one project for the command line and for Python."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from workbench.items import ItemError, from_vectors
from workbench.project import Project, ProjectError

N = 200

# Forks one child per kill point: the child counts the file-system and label-log steps of
# Project.create and SIGKILLs itself at step k (k = 1, 2, ... until a create completes).
# Forking from one process that has imported everything keeps each round to milliseconds.
_DRIVER = textwrap.dedent(
    """
    import json, os, shutil, signal, sys
    import numpy as np
    import workbench.project as wp
    from workbench.labels.store import EventLog

    def dataset():
        from workbench.items import from_vectors
        rng = np.random.default_rng(0)
        x = rng.normal(size=(%(n)d, 8)).astype(np.float32)
        labels = ["a" if i %% 3 == 0 else "b" if i %% 3 == 1 else None for i in range(%(n)d)]
        return from_vectors(x, labels=labels, ids=[f"a{i}" for i in range(%(n)d)])

    base, copies = sys.argv[1], int(sys.argv[2])
    k = 1
    while k < 200:
        done = False
        for c in range(copies):
            folder = os.path.join(base, f"k{k}-{c}")
            pid = os.fork()
            if pid == 0:
                count = [0]
                def step(f):
                    def g(*a, **kw):
                        count[0] += 1
                        if count[0] == k:
                            os.kill(os.getpid(), signal.SIGKILL)
                        return f(*a, **kw)
                    return g
                os.replace, os.rename, os.mkdir = map(step, (os.replace, os.rename, os.mkdir))
                os.unlink, shutil.rmtree = step(os.unlink), step(shutil.rmtree)
                EventLog.append = step(EventLog.append)
                items, x = dataset()
                wp.Project.create(folder, items, vectors=x).close()
                os._exit(0)
            _, status = os.waitpid(pid, 0)
            killed = os.WIFSIGNALED(status)
            print(json.dumps({"folder": folder, "k": k, "killed": killed,
                              "status": -os.WTERMSIG(status) if killed else os.WEXITSTATUS(status)}),
                  flush=True)
            done = not killed
        if done:
            break
        k += 1
    """
) % {"n": N}


def dataset_a():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, 8)).astype(np.float32)
    labels = ["a" if i % 3 == 0 else "b" if i % 3 == 1 else None for i in range(N)]
    return from_vectors(x, labels=labels, ids=[f"a{i}" for i in range(N)])


def dataset_b():
    rng = np.random.default_rng(1)
    return from_vectors(rng.normal(size=(50, 4)), ids=[f"b{i}" for i in range(50)])


def assert_is_dataset_a(project: Project) -> None:
    assert project.n == N
    assert sorted(project.labels.classes.values()) == ["a", "b"]  # each class once
    counts = np.bincount(project.labels.state.human[project.labels.state.human >= 0])
    assert counts.tolist() == [67, 67]  # each label once
    assert project.labels.log.last_id() == 4  # two classes, two assigns: nothing twice


@pytest.mark.slow
def test_create_killed_at_every_step_then_created_again(tmp_path):
    base = tmp_path / "kills"
    base.mkdir()
    out = subprocess.run([sys.executable, "-c", _DRIVER, str(base), "2"],
                         capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr
    runs = [json.loads(line) for line in out.stdout.splitlines()]
    killed = [r for r in runs if r["killed"]]
    assert len({r["k"] for r in killed}) >= 10, "too few steps to test"
    assert all(r["status"] == -9 for r in killed)
    assert runs[-1]["status"] == 0  # the last round ran to the end

    for r in killed:
        folder = Path(r["folder"])
        if (folder / "workbench.json").exists():
            # Killed after workbench.json was written: the project is complete.
            items, x = dataset_b()
            with pytest.raises(ProjectError, match="already holds a project"):
                Project.create(folder, items, vectors=x)
            with Project.open(folder) as p:
                assert_is_dataset_a(p)
            assert not list(folder.glob(".workbench-creating-*"))  # cleared on opening
        elif folder.name.endswith("-0"):  # the same create, run again
            items, x = dataset_a()
            with Project.create(folder, items, vectors=x) as p:
                assert_is_dataset_a(p)
        else:  # another dataset in the same folder inherits nothing
            items, x = dataset_b()
            with Project.create(folder, items, vectors=x) as p:
                assert p.n == 50 and p.labels.classes == {}
                assert p.labels.log.last_id() == 0
                assert np.array_equal(np.asarray(p.vectors()), x)


def test_leftover_project_files_without_a_create_are_refused(tmp_path):
    # A partial copy (the label log but no workbench.json): never silently overwritten.
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "labels.sqlite").write_bytes(b"precious")
    items, x = dataset_b()
    with pytest.raises(ProjectError, match=r"labels\.sqlite but no workbench\.json.*safe to del"):
        Project.create(folder, items, vectors=x)
    assert (folder / "labels.sqlite").read_bytes() == b"precious"


def test_failed_create_leaves_nothing_behind(tmp_path):
    items, x = dataset_b()
    bad = items.with_columns(pl.Series("unserialisable", [object()] * 50, dtype=pl.Object))
    with pytest.raises(pl.exceptions.PolarsError):  # polars cannot write an Object column
        Project.create(tmp_path / "p", bad, vectors=x)
    assert [f.name for f in (tmp_path / "p").iterdir()] == []
    with Project.create(tmp_path / "p", items, vectors=x) as p:
        assert p.n == 50


# -- vectors a project cannot use ------------------------------------------------------------


def test_zero_vectors_are_refused_naming_the_item(tmp_path):
    x = np.random.default_rng(0).normal(size=(20, 5)).astype(np.float32)
    x[[7, 12]] = 0.0
    ids = [f"item-{i}" for i in range(20)]
    with pytest.raises(ItemError, match=r"'item-7' is all zeros \(2 such"):
        from_vectors(x, ids=ids)
    items = pl.DataFrame({"id": ids, "source": ids, "kind": ["vector"] * 20})
    with pytest.raises(ItemError, match=r"'item-7' is all zeros.*drop those items or embed"):
        Project.create(tmp_path / "p", items, vectors=x)
    assert not (tmp_path / "p" / "workbench.json").exists()


# -- the demo --------------------------------------------------------------------------------


def _cli_demo(folder) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench", "demo", str(folder)],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("cli_first", [True, False])
def test_cli_demo_and_workbench_demo_make_the_same_project(tmp_path, cli_first):
    from workbench.session import Workbench

    folder = tmp_path / "demo"
    if cli_first:
        r = _cli_demo(folder)
        assert r.returncode == 0, r.stderr
    wb = Workbench.demo(folder, background=False, layout="quick")
    try:
        assert wb.n == 1797 and wb.vectors.shape == (1797, 64)
        wb.label([0, 1], "zero")
    finally:
        wb.close()
    if not cli_first:
        r = _cli_demo(folder)
        assert r.returncode == 0, r.stderr
        assert "items=1797, classes=1" in r.stdout
    wb = Workbench.demo(folder, background=False, layout="quick")  # and once more
    try:
        assert wb.labels.class_names == ["zero"]
    finally:
        wb.close()


@pytest.mark.slow
def test_a_demo_made_without_vectors_gets_them(tmp_path):
    # What `workbench demo` made before it agreed with Workbench.demo: no vectors.npy.
    from workbench.items import demo_digits
    from workbench.session import Workbench

    folder = tmp_path / "demo"
    Project.create(folder, demo_digits(folder / "data"), check=False).close()
    wb = Workbench.demo(folder, background=False, layout="quick")
    try:
        assert wb.vectors.shape == (1797, 64)
    finally:
        wb.close()

"""Opening a project: a missing or damaged file is a ProjectError naming the file and what
to do, never a silently emptied label log or a bare traceback; read-only opening never
creates or changes a file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from workbench.items import from_vectors
from workbench.project import Project, ProjectError


@pytest.fixture
def project_dir(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    items, x = from_vectors(rng.normal(size=(40, 6)), ids=[f"i{i}" for i in range(40)])
    folder = tmp_path / "proj"
    with Project.create(folder, items, vectors=x) as p:
        p.labels.assign(["i0", "i1", "i2"], "cat")
    return folder


#: SQLite's own side files of a WAL database: a reader may have to add them (SQLite needs
#: the shared-memory index to read safely beside a writer); they hold no data of ours.
SQLITE_SIDE_FILES = {"labels.sqlite-wal", "labels.sqlite-shm"}


def listing(folder: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``folder`` with its size and modification time, SQLite's side
    files left out."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*")) if p.name not in SQLITE_SIDE_FILES
    }


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True,
                          text=True, timeout=120)


# -- the label log ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("missing", "is missing"),
        ("empty", r"is empty \(zero bytes\)"),
        ("garbage", "is not an SQLite database"),
    ],
)
def test_a_missing_or_damaged_label_log_is_never_replaced_by_an_empty_one(
    project_dir, damage, message
):
    log_file = project_dir / "labels.sqlite"
    if damage == "missing":
        log_file.unlink()
    elif damage == "empty":
        log_file.write_bytes(b"")
    else:
        log_file.write_bytes(b"this is not a database, it was cut off in a copy" * 100)
    before = listing(project_dir)
    with pytest.raises(ProjectError, match=rf"labels\.sqlite {message}.*workbench backup"):
        Project.open(project_dir)
    # The read-only command says so in one line and creates nothing either.
    r = cli("info", str(project_dir))
    assert r.returncode == 2
    assert "labels.sqlite" in r.stderr and "Traceback" not in r.stderr
    assert listing(project_dir) == before


def test_a_corrupt_workbench_json_names_the_file_and_the_fix(project_dir):
    (project_dir / "workbench.json").write_text('{"format_version": 1, "kinds": ["vec')
    with pytest.raises(ProjectError, match=r"workbench\.json is damaged.*format_version"):
        Project.open(project_dir)
    r = cli("info", str(project_dir))
    assert r.returncode == 2 and "workbench.json is damaged" in r.stderr


def test_a_damaged_item_table_names_the_file(project_dir):
    f = project_dir / "items.parquet"
    f.write_bytes(f.read_bytes()[:50])
    with pytest.raises(ProjectError, match=r"items\.parquet is missing or damaged"):
        Project.open(project_dir)


def test_truncated_vectors_say_how_to_get_them_back(project_dir):
    f = project_dir / "vectors.npy"
    f.write_bytes(f.read_bytes()[:300])
    with Project.open(project_dir) as p:
        assert p.labels.class_names == ["cat"]  # everything else still opens
        with pytest.raises(ProjectError, match=r"vectors\.npy is damaged.*vectors=\.\.\."):
            p.vectors()
        with pytest.raises(ProjectError, match=r"vectors\.npy is damaged"):
            p.vectors(mmap=False)
        p.meta = {**p.meta, "kinds": ["image"], "embedder": {"spec": "clip"}}
        with pytest.raises(ProjectError, match=r"workbench embed .* --model clip"):
            p.vectors()


# -- read-only -------------------------------------------------------------------------------


def test_read_only_open_creates_nothing_and_refuses_writes(project_dir, tmp_path):
    from workbench.export import export_table

    shutil.rmtree(project_dir / "cache")
    before = listing(project_dir)
    with Project.open(project_dir, read_only=True) as p:
        assert p.read_only
        assert p.labels.class_names == ["cat"]
        assert p.vectors().shape == (40, 6)
        assert project_dir not in p.cache_dir.parents  # a private folder, gone on close
        out = export_table(p, tmp_path / "out.csv")
        assert out.exists()
        with pytest.raises(RuntimeError, match=r"read.only"):
            p.labels.assign(["i3"], "cat")
    assert listing(project_dir) == before
    r = cli("info", str(project_dir))
    assert r.returncode == 0 and "'cat': 3" in r.stdout, r.stderr
    assert listing(project_dir) == before
    with Project.open(project_dir) as p:  # writable folder: read-write by default
        assert not p.read_only


_INSPECT = textwrap.dedent(
    """
    import os, sys
    from workbench.project import Project
    from workbench.export import export_table
    print("writable", os.access(sys.argv[1], os.W_OK))
    p = Project.open(sys.argv[1])
    print("read_only", p.read_only, p.labels.class_names)
    export_table(p, os.path.join(sys.argv[2], "out.csv"))
    try:
        p.labels.assign(["i3"], "cat")
    except RuntimeError as e:
        print("refused:", e)
    p.close()
    """
)


def on_read_only_mount(folder: Path, out: Path) -> subprocess.CompletedProcess:
    """Run _INSPECT with ``folder`` mounted read-only, in a private mount namespace (root
    ignores permission bits, but not a read-only mount); skip where that is not possible."""
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("mount") is None:
        pytest.skip("needs root and unshare(1) to mount a folder read-only for one process")
    script = (
        'mount --make-rprivate / && mount --bind "$1" "$1" && '
        'mount -o remount,bind,ro "$1" && exec "$3" -c "$4" "$1" "$2"'
    )
    probe = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", str(folder), str(out),
                            sys.executable, "pass"], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount read-only here: {probe.stderr.strip()}")
    return subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", str(folder), str(out),
                           sys.executable, _INSPECT], capture_output=True, text=True, timeout=120)


def test_a_project_on_a_read_only_folder_opens_read_only_by_itself(project_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    before = listing(project_dir)
    r = on_read_only_mount(project_dir, out)
    assert r.returncode == 0, r.stderr
    assert "writable False" in r.stdout
    assert "read_only True ['cat']" in r.stdout
    assert "refused:" in r.stdout and "read" in r.stdout.split("refused:")[1]
    assert (out / "out.csv").exists()
    assert listing(project_dir) == before


def test_a_read_only_session_computes_in_a_private_cache(project_dir):
    from workbench.session import Workbench

    def session(**kw):
        return Workbench.open(project_dir, background=False, layout="quick", **kw)

    shutil.rmtree(project_dir / "cache")
    before = listing(project_dir)
    wb = session(read_only=True)  # no cache yet: computed in a private folder
    graph, shadow = wb.graph, wb.project.cache_dir
    assert wb.project.read_only and any(shadow.glob("knn-*.json"))
    wb.close()
    assert not shadow.exists() and listing(project_dir) == before
    session().close()  # writable: fills the project's cache
    before = listing(project_dir)
    assert any((project_dir / "cache").glob("knn-*.json"))
    wb = session(read_only=True)  # reads the cache through links, writes nothing there
    assert np.array_equal(wb.graph.indices, graph.indices)
    wb.close()
    assert listing(project_dir) == before

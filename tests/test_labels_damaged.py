"""A missing, damaged or read-only label log, and a full disk: clear LabelLogErrors that name
the file and say what to do; nothing created behind the user's back; state = replay."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest

from workbench.labels import EventLog, LabelLogError, LabelStore

IDS = [f"item{i}" for i in range(10)]


def current(store: LabelStore) -> list[str | None]:
    names = store.classes
    return [names.get(int(c)) for c in store.state.current]


@pytest.mark.parametrize("opener", [EventLog, lambda p, **kw: LabelStore(p, IDS, **kw)])
@pytest.mark.parametrize("option", [{"create": False}, {"read_only": True}])
def test_missing_log_is_an_error_and_is_not_created(tmp_path, opener, option):
    path = tmp_path / "labels.sqlite"
    with pytest.raises(LabelLogError, match=r"labels\.sqlite is missing.*backup"):
        opener(path, **option)
    assert not path.exists()


@pytest.mark.parametrize("content", [b"", b"this is not a database, just text " * 200])
@pytest.mark.parametrize("option", [{"create": False}, {"read_only": True}])
def test_empty_or_damaged_log_is_an_error(tmp_path, content, option):
    path = tmp_path / "labels.sqlite"
    path.write_bytes(content)
    with pytest.raises(LabelLogError) as err:
        LabelStore(path, IDS, **option)
    message = str(err.value)
    assert str(path) in message and "workbench backup" in message
    assert "do not delete the project" in message
    assert ("empty" if not content else "damaged") in message
    assert path.read_bytes() == content  # left as it was, for recovery


def test_a_database_without_label_tables_is_an_error(tmp_path):
    path = tmp_path / "labels.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE other (x)")
    con.close()
    with pytest.raises(LabelLogError, match="without label tables"):
        EventLog(path, create=False)


def test_damaged_log_is_an_error_even_by_default(tmp_path):
    path = tmp_path / "labels.sqlite"
    path.write_bytes(b"garbage " * 1000)
    with pytest.raises(LabelLogError, match="damaged"):
        LabelStore(path, IDS)


def test_read_only_reads_and_never_writes(tmp_path):
    path = tmp_path / "labels.sqlite"
    writer = LabelStore(path, IDS, annotator="w")
    writer.assign([0, 1], "cat")
    ro = LabelStore(path, IDS, read_only=True)
    assert current(ro)[:2] == ["cat", "cat"] and ro.read_only
    for attempt in (lambda: ro.assign([2], "cat"), lambda: ro.create_class("dog"),
                    ro.undo, lambda: ro.assign_many([([3], "cat")])):
        with pytest.raises(LabelLogError, match=r"opened read-only.*labels\.sqlite"):
            attempt()
    writer.assign([2], "dog")  # another process's writes still show after a refresh
    assert ro.refresh() and current(ro)[:3] == ["cat", "cat", "dog"]
    assert ro.log.last_id() == writer.log.last_id() == 4
    copy = ro.backup(tmp_path / "copy.sqlite")  # backing up needs no write access
    assert LabelStore(copy, IDS, create=False).class_names == ["cat", "dog"]
    ro.close()
    writer.close()


def test_create_false_opens_an_existing_log(tmp_path):
    path = tmp_path / "labels.sqlite"
    LabelStore(path, IDS).assign([0], "x")
    store = LabelStore(path, IDS, create=False)
    store.assign([1], "x")
    assert current(store)[:2] == ["x", "x"]
    store.close()


# -- a full disk -----------------------------------------------------------------------------

def _assert_disk_full(exc: LabelLogError, path: Path) -> None:
    message = str(exc)
    assert str(path) in message, message
    assert "disk is full" in message and "free space" in message.lower(), message
    assert "nothing after the last completed action was lost" in message, message
    assert "cannot rollback" not in message


def _assert_same_as_replay(store: LabelStore, path: Path) -> None:
    replay = LabelStore(path, store.item_ids, annotator=store.annotator, read_only=True)
    np.testing.assert_array_equal(store.state.current, replay.state.current)
    np.testing.assert_array_equal(store.state.machine_confidence,
                                  replay.state.machine_confidence)
    assert store.classes == replay.classes
    assert (store.can_undo, store.can_redo) == (replay.can_undo, replay.can_redo)
    replay.close()


@contextlib.contextmanager
def _small_tmpfs(size: str):
    root = Path(tempfile.mkdtemp())
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(root)],
                          capture_output=True)
    if done.returncode != 0:
        root.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield root
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False)
        root.rmdir()


def test_full_disk_names_the_cause_and_keeps_state_equal_to_replay():
    ids = [f"item-{i:06d}" for i in range(20_000)]
    with _small_tmpfs("1m") as root:
        path = root / "labels.sqlite"
        store = LabelStore(path, ids, annotator="a")
        store.assign([0, 1], "x")
        # Fill everything left, then give back a few pages.
        with open(root / "filler", "wb", buffering=0) as f, contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * 4096)
        os.truncate(root / "filler", max(0, os.path.getsize(root / "filler") - 64 * 1024))
        failed = None
        for k in range(50):  # batches that create classes: the rollback must undo those too
            try:
                store.assign(np.arange(2000 * (k % 10), 2000 * (k % 10) + 2000), f"class{k}")
            except LabelLogError as exc:
                failed = exc
                break
        assert failed is not None, "the disk never filled up"
        _assert_disk_full(failed, path)
        _assert_same_as_replay(store, path)
        (root / "filler").unlink()  # free space: the same action now goes through
        store.assign([5], "after")
        assert current(store)[5] == "after"
        _assert_same_as_replay(store, path)
        store.close()


# A file-size limit makes the -wal append fail at COMMIT time, the case that used to end in
# "cannot rollback - no transaction is active".
FSIZE_CHILD = textwrap.dedent(
    """
    import os, resource, signal, sys
    import numpy as np
    from workbench.labels import LabelLogError, LabelStore
    ids = [f"item-{i:06d}-padding-to-make-rows-bigger" for i in range(20000)]
    path = sys.argv[1]
    store = LabelStore(path, ids, annotator="a")
    store.assign([0, 1], "x")
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    limit = max(os.path.getsize(path), os.path.getsize(path + "-wal")) + 32 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    try:
        store.assign(np.arange(2, 20000), "big")
        print("NO ERROR")
    except LabelLogError as exc:
        print("LabelLogError", exc)
    except Exception as exc:
        print(type(exc).__name__, exc)
    names = store.classes
    print("STATE", [names.get(int(c)) for c in store.state.current[:3]],
          store.can_undo, store.log.last_id())
    """
)


def test_file_size_limit_at_commit_surfaces_the_real_cause(tmp_path):
    path = tmp_path / "labels.sqlite"
    out = subprocess.run(
        [sys.executable, "-c", FSIZE_CHILD, str(path)], capture_output=True, text=True,
        env=dict(os.environ, PYTHONPATH=os.getcwd()), timeout=120,
    )
    assert out.returncode == 0, out.stderr
    first, state = out.stdout.splitlines()[:2]
    assert first.startswith("LabelLogError"), out.stdout
    _assert_disk_full(LabelLogError(first), path)
    assert state == "STATE ['x', 'x', None] True 2", state  # as before the failed action
    store = LabelStore(path, [f"item-{i:06d}-padding-to-make-rows-bigger" for i in range(20000)])
    assert current(store)[:3] == ["x", "x", None] and store.log.last_id() == 2
    store.close()


def test_a_label_log_on_a_network_file_system_is_warned_about(tmp_path, monkeypatch):
    # SQLite's locks are unreliable over NFS/SMB: opening a label log there says so.
    from workbench import _files
    from workbench.labels import EventLog

    mounts = tmp_path / "mounts"
    mounts.write_text(f"/dev/sda1 / ext4 rw 0 0\nserver:/export {tmp_path} nfs4 rw 0 0\n")
    assert _files.filesystem_type(tmp_path / "p" / "labels.sqlite", str(mounts)) == "nfs4"
    assert _files.filesystem_type("/usr", str(mounts)) == "ext4"
    assert _files.on_network_filesystem(tmp_path, str(mounts))
    assert not _files.on_network_filesystem("/usr", str(mounts))
    assert _files.filesystem_type(tmp_path, str(tmp_path / "missing")) is None
    real = _files.on_network_filesystem
    monkeypatch.setattr("workbench.labels.store.on_network_filesystem",
                        lambda p: real(p, str(mounts)))
    with pytest.warns(UserWarning, match="network file system"):
        EventLog(tmp_path / "labels.sqlite").close()

"""The label log on a real PostgreSQL server (started by ``_postgres``): connections that
drop mid-stream or a server that restarts lose no acknowledged action and reconnect; other
kernels hear of new labels by LISTEN/NOTIFY; a project moves its labels there with one URL
(remembered without its password), and a backup of it is a self-contained SQLite copy.

The log's own suites (``test_labels``, ``test_labels_batches``, ``test_label_model``,
``test_crash_safety``, ``test_two_writers``) run on both stores through ``log_at``.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
import time

import numpy as np
import pytest
from _labels import IDS, current
from _postgres import base_url, fresh_url, server, wait_for

from workbench.labels import LabelLogError, LabelStore

psycopg = pytest.importorskip("psycopg")


def _terminate_others() -> int:
    """Kill every other client backend of the server (as an admin would, or a network
    cut): ``pg_terminate_backend``. Returns how many."""
    with psycopg.connect(base_url(), autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> "
            "pg_backend_pid() AND backend_type = 'client backend'").fetchall()
    return len(rows)


def test_connection_dropped_mid_stream_loses_no_acknowledged_action(tmp_path):
    url = fresh_url()
    ids = [f"i{k}" for k in range(400)]
    store = LabelStore(url, ids, annotator="w")
    acked, refused, stop = [], [], threading.Event()

    def write() -> None:
        for k in range(400):
            try:
                store.assign([k], f"c{k % 3}")
                acked.append(k)
            except LabelLogError as e:  # the one action in flight when the link dropped
                refused.append((k, str(e)))
        stop.set()

    writer = threading.Thread(target=write)
    writer.start()
    kills = 0
    while not stop.is_set() and kills < 25:
        time.sleep(0.03)
        kills += _terminate_others() > 0
    writer.join(timeout=120)
    assert not writer.is_alive()
    assert kills >= 5, "the stream ended before the connection was dropped often enough"
    assert all("NOT saved" in why for _, why in refused), refused
    refused = [k for k, _ in refused]
    assert len(acked) + len(refused) == 400 and len(refused) <= kills
    # Every action that returned is in the log, and nothing that was refused.
    again = LabelStore(url, ids, annotator="r")
    labelled = {k for k in range(400) if current(again)[k] is not None}
    assert labelled == set(acked)
    assert all(current(again)[k] == f"c{k % 3}" for k in acked)
    assert sum(a.kind == "assign" for a in again.log.read()) == len(acked)
    # ... and the writer's store works on, on a new connection.
    store.assign([refused[0] if refused else 0], "after")
    again.refresh()
    assert "after" in again.class_names
    store.close()
    again.close()


def test_a_server_restart_is_waited_for_not_an_error():
    url = fresh_url()
    store = LabelStore(url, IDS, annotator="w")
    store.assign([0], "before")
    s = server()
    subprocess.run([s["pg_ctl"], "-D", str(s["data"]), "-m", "fast", "-w", "stop"],
                   check=True, capture_output=True, preexec_fn=s["drop"])
    restart = threading.Timer(1.0, lambda: subprocess.run(
        [s["pg_ctl"], "-D", str(s["data"]), "-o", s["opts"], "-l", str(s["dir"] / "log"), "-w",
         "start"],
        check=True, capture_output=True, preexec_fn=s["drop"]))
    restart.start()
    try:
        t0 = time.monotonic()
        store.assign([1], "during")  # waits for the server (up to POSTGRES_RECONNECT_S)
        assert time.monotonic() - t0 >= 0.5
    finally:
        restart.join()
    reopened = LabelStore(url, IDS)
    assert current(reopened)[:2] == ["before", "during"]
    store.close()
    reopened.close()


def test_other_kernels_hear_of_new_labels_by_notify():
    url = fresh_url()
    a = LabelStore(url, IDS, annotator="a")
    b = LabelStore(url, IDS, annotator="b")
    assert b.log.wait_for_change(0.1)  # the first look starts listening: look once
    assert not b.log.wait_for_change(0.3)  # nothing committed: no wake-up
    heard = []
    waiter = threading.Thread(target=lambda: heard.append(
        (b.log.wait_for_change(5.0), time.monotonic())))
    waiter.start()
    time.sleep(0.2)
    t0 = time.monotonic()
    a.assign([0, 1], "x")
    waiter.join()
    assert heard[0][0] and heard[0][1] - t0 < 0.5, heard
    b.refresh()
    assert current(b)[:2] == ["x", "x"]
    a.close()
    b.close()


def test_bad_urls_say_what_to_fix():
    with pytest.raises(ValueError, match=r"names no schema: add \?schema=NAME"):
        LabelStore(base_url(), IDS)
    with pytest.raises(ValueError, match="not a plain name"):
        LabelStore(f"{base_url()}?schema=Robert');DROP", IDS)
    with pytest.raises(LabelLogError, match="cannot reach the PostgreSQL label store") as e:
        LabelStore("postgresql://workbench:secret@127.0.0.1:1/postgres?schema=x", IDS)
    assert "secret" not in str(e.value)  # the password is never shown
    with pytest.raises(LabelLogError, match="no label log in schema"):
        LabelStore(fresh_url(), IDS, create=False)


def _project(tmp_path):
    from workbench.project import Project
    from workbench.session import Workbench

    folder = tmp_path / "digits"
    Workbench.demo(folder, background=False, layout="quick").close()
    with Project.open(folder, annotator="solo") as p:
        p.labels.assign([0, 1, 2], "digit 0")  # labelled before the team moved
    return folder


def test_a_project_moves_its_labels_to_postgresql_and_remembers_it(tmp_path):
    from workbench.cli.project import backup_project
    from workbench.project import Project
    from workbench.session import Workbench

    folder = _project(tmp_path)
    url = base_url().replace("workbench@", "workbench:pw@")  # trust auth ignores it
    wb = Workbench.open(folder, labels=url, annotator="ann", layout="quick", background=False)
    try:
        assert wb.labels.log.schema.startswith("workbench_")
        assert current(wb.labels)[:4] == ["digit 0"] * 3 + [None]  # moved with the project
        wb.label([3], "digit 0")
    finally:
        wb.close()
    meta = json.loads((folder / "workbench.json").read_text())
    assert meta["labels"].startswith("postgresql://workbench@127.0.0.1") and "pw" not in meta[
        "labels"]
    # Reopened without a URL (the notebook, the CLI, another machine): the same store.
    copy = tmp_path / "on-another-machine"
    backup_project(folder, copy)
    with Project.open(folder, annotator="bob") as p:
        assert p.labels.log.path == meta["labels"]
        assert current(p.labels)[:5] == ["digit 0"] * 4 + [None]
        p.labels.assign([4], "digit 1")
    # The backup is a self-contained SQLite copy of every label, as they were.
    assert "labels" not in json.loads((copy / "workbench.json").read_text())
    with Project.open(copy) as p:
        assert not isinstance(p.labels.log.path, str)
        assert current(p.labels)[:5] == ["digit 0"] * 4 + [None]


def test_two_sessions_on_postgresql_see_each_others_labels_live(tmp_path):
    from workbench.session import Workbench

    folder = _project(tmp_path)
    url = base_url()
    here = Workbench.open(folder, labels=url, annotator="ann", layout="quick")
    there = Workbench.open(folder, annotator="bob", layout="quick", background=False)
    try:
        there.labels.assign([10, 11], "digit 5")
        t0 = time.monotonic()
        assert wait_for(lambda: (here.labels.state.human[10:12] >= 0).all(), 5.0)
        assert time.monotonic() - t0 < 2.0
        assert here.labels.undo() is False  # ann did nothing: bob's label stays
        assert there.labels.undo() and wait_for(lambda: here.labels.state.human[10] < 0)
    finally:
        here.close()
        there.close()


def test_cli_moves_a_project_to_postgresql(tmp_path, capsys):
    from workbench.cli import main
    from workbench.project import Project

    folder = _project(tmp_path)
    assert main(["labels", str(folder)]) == 0
    assert "labels.sqlite" in capsys.readouterr().out
    assert main(["labels", str(folder), f"{base_url()}?schema=cli_team"]) == 0
    out = capsys.readouterr().out
    assert "cli_team" in out and "3 labelled items" in out
    with Project.open(folder) as p:
        assert p.labels.log.schema == "cli_team"
        assert int((p.labels.state.human >= 0).sum()) == 3
    assert main(["labels", str(folder)]) == 0
    assert "cli_team" in capsys.readouterr().out
    np.testing.assert_equal(main(["labels", str(folder), "mysql://x"]), 2)


class _CutAfterCommit:
    """A TCP relay between the store and the server that, when asked, lets a ``COMMIT`` reach
    the server and then cuts the connection before the answer comes back: the one case where
    the client cannot know whether its action was saved (a real network fault, not a mock)."""

    def __init__(self, port: int) -> None:
        import socket

        self.port, self.cut = port, threading.Event()
        self.cuts = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url_port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket

        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server_side = socket.create_connection(("127.0.0.1", self.port))
            dropping = threading.Event()  # this connection's answers are being lost
            threading.Thread(target=self._pipe, args=(client, server_side, True, dropping),
                             daemon=True).start()
            threading.Thread(target=self._pipe, args=(server_side, client, False, dropping),
                             daemon=True).start()

    def _pipe(self, src, dst, upstream: bool, dropping: threading.Event) -> None:
        try:
            while data := src.recv(65536):
                if not upstream and dropping.is_set():
                    return  # the server's answer to COMMIT: lost with the connection
                if upstream and self.cut.is_set() and b"COMMIT" in data:
                    self.cut.clear()
                    dropping.set()
                    dst.sendall(data)
                    self.cuts += 1
                    time.sleep(0.3)  # the server commits meanwhile
                    return
                dst.sendall(data)
        except OSError:  # the other direction closed the sockets
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.close()


def test_an_action_whose_commit_answer_was_lost_counts_once():
    relay = _CutAfterCommit(server()["port"])
    url = fresh_url().replace(f":{server()['port']}/", f":{relay.url_port}/")
    store = LabelStore(url, IDS, annotator="w")
    store.assign([0], "x")
    relay.cut.set()
    store.assign([1], "x")  # COMMIT reached the server, the answer did not: still returns
    assert relay.cuts == 1
    store.assign([2], "y")  # and the store goes on, on a new connection
    reopened = LabelStore(url, IDS)
    assert current(reopened)[:4] == ["x", "x", "y", None]
    assigns = [a.items for a in reopened.log.read() if a.kind == "assign"]
    assert assigns == [("item0",), ("item1",), ("item2",)]  # the lost answer: saved once
    store.close()
    reopened.close()
    relay.listener.close()

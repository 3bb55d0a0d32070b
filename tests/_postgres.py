"""A real, throw-away PostgreSQL server for the tests: Debian's ``postgresql`` package
(``initdb`` and ``pg_ctl`` from its versioned bin folder), a temporary data folder, a free port
on 127.0.0.1, trust authentication, stopped when the test run ends.

As root (CI), the server runs as the ``postgres`` user that the package creates (PostgreSQL
refuses to run as root). :func:`fresh_url` gives each test its own schema, so tests never see
each other's labels.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

_SERVER: dict | None = None


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres():
    """preexec_fn dropping root to the package's postgres user."""
    if os.getuid() != 0:
        return None
    user = pwd.getpwnam("postgres")

    def drop() -> None:
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)
    return drop


def server() -> dict:
    """Start the server once per test run; ``{"port": ..., "dir": ...}``. Skips (with what to
    install) only where Debian's postgresql package is missing: ``make test`` installs it."""
    global _SERVER
    if _SERVER is not None:
        return _SERVER
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL is not installed: apt-get install postgresql (make test does)")
    root = Path(tempfile.mkdtemp(prefix="workbench-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    drop = _as_postgres()
    if drop is not None:
        user = pwd.getpwnam("postgres")
        for p in (root, sock):
            os.chown(p, user.pw_uid, user.pw_gid)
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    subprocess.run([initdb, "-D", str(data), "-U", "workbench", "-A", "trust", "-E", "UTF8",
                    "--no-sync"], check=True, capture_output=True, preexec_fn=drop, env=env)
    port = _free_port()
    opts = (f"-c listen_addresses=127.0.0.1 -p {port} -k {sock} -c fsync=on "
            "-c max_connections=200")
    subprocess.run([pg_ctl, "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w",
                    "-t", "60", "start"], check=True, capture_output=True, preexec_fn=drop,
                   env=env)
    _SERVER = {"port": port, "dir": root, "pg_ctl": pg_ctl, "data": data, "drop": drop,
               "opts": opts}
    atexit.register(stop)
    return _SERVER


def stop() -> None:
    global _SERVER
    if _SERVER is None:
        return
    s, _SERVER = _SERVER, None
    subprocess.run([s["pg_ctl"], "-D", str(s["data"]), "-m", "immediate", "-w", "stop"],
                   capture_output=True, preexec_fn=s["drop"])
    shutil.rmtree(s["dir"], ignore_errors=True)


def base_url() -> str:
    """The server's URL without a schema (the ``postgres`` database, user ``workbench``)."""
    return f"postgresql://workbench@127.0.0.1:{server()['port']}/postgres"


def fresh_url() -> str:
    """A URL naming a schema nobody has used: an empty label store."""
    return f"{base_url()}?schema=t_{uuid.uuid4().hex[:16]}"


def wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()

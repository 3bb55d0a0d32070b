"""A real Ray cluster on 127.0.0.1 for the tests that spread work over Ray.

Not a conftest.py on purpose: ``tests/conftest.py`` imports the fixture, so that the whole
session shares one head. ``ray start --head --block``
runs in its own process group with a temp folder of its own; the fixture yields its address
(``127.0.0.1:PORT``) and, at the end, stops that group alone (``ray stop`` would stop every
Ray on the machine). Skipped when Ray is not installed, except under ``CI=true``, where a
missing Ray is a failure (it is in the ``test`` extra).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

#: CPUs the test cluster offers: two worker processes run at once.
RAY_TEST_CPUS = 2


def ray_missing_reason() -> str | None:
    """Why the Ray tests cannot run here, or None."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return "ray is not installed: pip install -e '.[ray]'"
    if shutil.which("ray", path=str(Path(sys.executable).parent)) is None:
        return f"the ray command is missing beside {sys.executable}"
    return None


def skip_without_ray() -> None:
    reason = ray_missing_reason()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(address: str, proc: subprocess.Popen, log: Path, timeout: float = 120.0) -> None:
    """Until a client can connect and sees the node's CPUs."""
    ray_bin = str(Path(sys.executable).parent / "ray")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ray start exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        done = subprocess.run([ray_bin, "status", "--address", address],
                              capture_output=True, text=True, timeout=60)
        if done.returncode == 0 and "CPU" in done.stdout:
            return
        time.sleep(1.0)
    raise RuntimeError(f"the Ray head at {address} did not come up in {timeout:.0f} s:\n"
                       f"{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def ray_cluster():
    """``127.0.0.1:PORT`` of a Ray head started for the tests (``RAY_TEST_CPUS`` CPUs)."""
    skip_without_ray()
    port = _free_port()
    root = Path(tempfile.mkdtemp(prefix="wb-ray-"))
    log = root / "ray-start.log"
    ray_bin = str(Path(sys.executable).parent / "ray")
    # Ray 2.5x turns token authentication on for `ray start` whenever ~/.ray/auth_token
    # exists (any earlier local ray.init() writes it), while a client given an explicit
    # address does not send the token: the cluster and this process both go without.
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [ray_bin, "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
             "--port", str(port), "--num-cpus", str(RAY_TEST_CPUS), "--num-gpus", "0",
             "--temp-dir", str(root / "t"), "--include-dashboard", "false",
             "--object-store-memory", str(400 * 2**20), "--disable-usage-stats"],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    address = f"127.0.0.1:{port}"
    try:
        _wait_ready(address, proc, log)
        yield address
    finally:
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        shutil.rmtree(root, ignore_errors=True)

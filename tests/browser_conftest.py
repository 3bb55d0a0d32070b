"""A real JupyterLab server and headless Chromium, for the browser tests and benchmark.

Not a conftest.py on purpose: imported by ``tests/test_browser.py`` and
``benchmarks/browser.py``, so nothing here runs unless a browser test is collected.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
#: Flags for a sandbox-less container with no GPU and no network: WebGL is rendered in
#: software (SwiftShader), and nothing phones home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A running JupyterLab: ``url(path)`` gives an authenticated address."""

    def __init__(self, root: Path, port: int, token: str, proc: subprocess.Popen, log: Path):
        self.root, self.port, self.token, self.proc, self.log = root, port, token, proc, log

    def url(self, path: str = "lab") -> str:
        sep = "&" if "?" in path else "?"
        return f"http://127.0.0.1:{self.port}/{path}{sep}token={self.token}"


@contextmanager
def jupyter_lab(root: Path, *, env: dict[str, str] | None = None, timeout: float = 120.0):
    """Start ``jupyter lab`` serving ``root`` with settings isolated under ``root``."""
    root = Path(root)
    home = root / ".jupyter-test"
    settings = home / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)
    # No news or update prompts: they would overlay the page and try the network.
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    config = home / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "jupyter_server_config.json").write_text(json.dumps({
        "LabApp": {"news_url": None, "extension_manager": "readonly",
                   "check_for_updates_class": "jupyterlab.NeverCheckForUpdate"},
    }))
    port, token = free_port(), secrets.token_hex(16)
    full_env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTER_PLATFORM_DIRS": "1",
        **(env or {}),
    }
    log = home / "lab.log"
    jupyter = Path(sys.executable).parent / "jupyter"
    cmd = [str(jupyter), "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           f"--LabApp.user_settings_dir={home / 'settings'}",
           f"--LabApp.workspaces_dir={home / 'workspaces'}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # CI containers run as root
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=full_env, stdout=out,
                                stderr=subprocess.STDOUT)
    lab = Lab(root, port, token, proc, log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited early:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(lab.url("api/status"), timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"jupyter lab did not start in {timeout} s:\n"
                                   f"{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield lab
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def chromium_missing_reason() -> str | None:
    """Why the browser tests cannot run here (None when they can)."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing: run `make system-deps` (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed: pip install -e '.[test]'"
    if shutil.which("node") is None and not (
        Path(__file__).parent.parent / "workbench" / "widgets" / "static" / "scatter.js"
    ).exists():
        return "the widget bundle is not built: run `make js`"
    return None


def write_notebook(path, source: str) -> None:
    """A one-cell notebook at ``path`` (Python 3 kernel) running ``source``."""
    import json

    Path(path).write_text(json.dumps({
        "cells": [{"cell_type": "code", "execution_count": None, "metadata": {},
                   "outputs": [], "source": source}],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                    "name": "python3"}},
        "nbformat": 4, "nbformat_minor": 5}))


def skip_without_chromium() -> None:
    """Skip the calling test module when the browser cannot run; under CI=true, where the
    README's test command installs it, a missing browser fails the run instead."""
    import os

    import pytest

    missing = chromium_missing_reason()
    if missing and os.environ.get("CI") == "true":
        raise RuntimeError(f"browser tests must run under CI=true: {missing}")
    if missing:
        pytest.skip(missing, allow_module_level=True)


def run_all_cells(page, notebook: str, *, timeout_ms: int = 300_000) -> None:
    """Open ``notebook`` in JupyterLab and run every cell through the Run menu; return
    when no cell is still running or queued."""
    accept_kernel_dialog(page)
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    accept_kernel_dialog(page)
    page.wait_for_function(
        """() => {
            const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')];
            return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
        }""",
        timeout=timeout_ms,
    )


def accept_kernel_dialog(page, *, wait_ms: int = 3000) -> None:
    """Accept JupyterLab's "Select Kernel" dialog (the default, Python 3) if it shows."""
    button = page.locator(".jp-Dialog .jp-mod-accept")
    try:
        button.wait_for(state="visible", timeout=wait_ms)
    except Exception:  # playwright's TimeoutError: no dialog this time
        return
    button.click()
    page.locator(".jp-Dialog").wait_for(state="detached", timeout=10_000)


def lasso(page, box, *, frac=(0.30, 0.30, 0.70, 0.70)) -> None:
    """Shift+drag a closed loop over the part ``frac`` (x0, y0, x1, y1) of the map ``box``."""
    x0, y0 = box["x"] + box["width"] * frac[0], box["y"] + box["height"] * frac[1]
    x1, y1 = box["x"] + box["width"] * frac[2], box["y"] + box["height"] * frac[3]
    page.keyboard.down("Shift")
    page.mouse.move(x0, y0)
    page.mouse.down()
    for x, y in ((x1, y0), (x1, y1), (x0, y1), (x0, y0 + 2)):
        page.mouse.move(x, y, steps=12)
    page.mouse.up()
    page.keyboard.up("Shift")

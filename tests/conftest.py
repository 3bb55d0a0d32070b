"""Shared fixtures: small real data built by the tests themselves."""

from __future__ import annotations

import os

import numpy as np
import pytest
from ray_conftest import ray_cluster  # noqa: F401  (one Ray head for the whole session)

# Tests never reach a model hub; the packaged MiniLM and test-made checkpoints are local.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WORKBENCH_ANNOTATOR", "tester")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def image_folder(tmp_path):
    """A folder of real PNG/JPEG files in two class sub-folders, plus junk to ignore."""
    from PIL import Image

    root = tmp_path / "images"
    for label, colour in (("cats", (200, 30, 30)), ("dogs", (30, 30, 200))):
        (root / label).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (16, 12), colour).save(root / label / f"{i}.png")
    Image.new("RGB", (8, 8), (0, 255, 0)).save(root / "loose.jpg")
    (root / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    Image.new("RGB", (8, 8)).save(root / ".hidden" / "x.png")
    return root


@pytest.fixture(params=["sqlite", "postgresql"])
def log_at(request, tmp_path):
    """Where a label log lives, once on each store: an SQLite file in ``tmp_path``, and an
    empty schema on a real PostgreSQL server started for the test run (``_postgres``)."""
    if request.param == "sqlite":
        return tmp_path / "labels.sqlite"
    import _postgres

    return _postgres.fresh_url()


@pytest.fixture
def store(log_at):
    """A label store of ten items (``_labels.IDS``) for annotator "ann", on each store."""
    from _labels import IDS

    from workbench.labels import LabelStore

    s = LabelStore(log_at, IDS, annotator="ann")
    yield s
    s.close()


@pytest.fixture(scope="session")
def demo_folder(tmp_path_factory):
    """The digits demo project, built once per test run (about 9 s). Tests copy it (their
    labels must not leak into another test's project): ``shutil.copytree(demo_folder, ...)``."""
    from workbench import Workbench

    folder = tmp_path_factory.mktemp("demo") / "digits"
    Workbench.demo(folder, background=False, layout="quick").close()
    return folder


def _demo_app(demo_folder, tmp_path, monkeypatch, *, background: bool):
    """The notebook app over a fresh copy of the demo project, its messages to the
    browser recorded (``widget.comm.sent``); closed after the test."""
    import shutil

    import comm
    from _comm import RecordingComm

    from workbench import Workbench
    from workbench.widgets import WorkbenchApp

    monkeypatch.setattr(comm, "create_comm", lambda **kw: RecordingComm(**kw))
    folder = tmp_path / "digits"
    shutil.copytree(demo_folder, folder)
    wb = Workbench.open(folder, background=background, layout="quick")
    app = WorkbenchApp(wb)
    yield app
    app.close()
    wb.close()


@pytest.fixture
def app(demo_folder, tmp_path, monkeypatch):
    """The notebook app over a fresh copy of the demo project (no retrain thread)."""
    yield from _demo_app(demo_folder, tmp_path, monkeypatch, background=False)


@pytest.fixture
def background_app(demo_folder, tmp_path, monkeypatch):
    """An app over a session that retrains in a worker thread, as in a notebook."""
    yield from _demo_app(demo_folder, tmp_path, monkeypatch, background=True)


@pytest.fixture
def wire(monkeypatch):
    """Widgets created in the test talk to a recording comm; returns
    :func:`_comm.custom_messages` (what a widget sent to the browser)."""
    import comm
    from _comm import RecordingComm, custom_messages

    monkeypatch.setattr(comm, "create_comm", lambda **kw: RecordingComm(**kw))
    return custom_messages

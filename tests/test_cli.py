"""The command line, run as a user runs it (a real subprocess)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from _tiny_models import save_tiny_clip
from PIL import Image


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def test_demo_label_export_roundtrip(tmp_path, capsys):
    from workbench.cli import main

    proj = tmp_path / "demo"
    r = run("demo", str(proj))
    assert r.returncode == 0, r.stderr
    assert "items=1797" in r.stdout
    from workbench.project import Project

    with Project.open(proj) as p:
        p.labels.assign(p.items["id"].head(5).to_list(), "five")
    r = run("export", str(proj), str(tmp_path / "out.csv"))  # the format from the suffix
    assert r.returncode == 0, r.stderr
    assert pl.read_csv(tmp_path / "out.csv")["label"].to_list() == ["five"] * 5
    assert (tmp_path / "out.csv.meta.json").is_file()
    r = run("info", str(proj))
    assert "'five': 5" in r.stdout
    # Refusals, in-process (the same main()): one line each, exit 2.
    capsys.readouterr()
    assert main(["export", str(proj), str(tmp_path / "out.csv")]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["export", str(proj), str(proj / "labels.sqlite"), "--format", "parquet",
                 "--overwrite"]) == 2
    assert "inside the project" in capsys.readouterr().err
    assert main(["export", str(proj), str(tmp_path / "folder")]) == 2
    assert "--format imagefolder|hf" in capsys.readouterr().err


def test_errors_are_one_clear_line(tmp_path):
    r = run("info", str(tmp_path))
    assert r.returncode == 2
    assert "not a workbench project" in r.stderr
    assert "Traceback" not in r.stderr


def test_every_option_has_help_text():
    import argparse

    from workbench.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    missing = [f"{name} {action.dest}" for name, parser in sub.choices.items()
               for action in parser._actions
               if not isinstance(action, argparse._HelpAction) and not action.help]
    assert missing == []


def small_project(folder: Path):
    from workbench.items import from_vectors
    from workbench.project import Project

    items, x = from_vectors(np.random.default_rng(0).normal(size=(6, 3)))
    p = Project.create(folder, items, vectors=x)
    p.labels.assign(["0", "1"], "a")
    return p


def test_a_damaged_label_log_is_one_line_and_exit_2(tmp_path):
    small_project(tmp_path / "p").close()
    db = tmp_path / "p" / "labels.sqlite"
    con = sqlite3.connect(db)
    con.execute("DROP TABLE items")  # readable, but not a label log any more
    con.commit()
    con.close()
    for args in (("info", str(tmp_path / "p")),
                 ("export", str(tmp_path / "p"), str(tmp_path / "o.csv"))):
        r = run(*args)
        assert r.returncode == 2, r.stderr
        assert "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_backup_copies_a_project_that_opens_with_every_label(tmp_path):
    from workbench.project import Project

    p = small_project(tmp_path / "p")  # still open: its latest labels sit in the -wal
    p.labels.assign(["2"], "b")
    r = run("backup", str(tmp_path / "p"), str(tmp_path / "copy"))
    assert r.returncode == 0, r.stderr
    with Project.open(tmp_path / "copy") as q:
        assert q.labels.table()["label"].to_list()[:3] == ["a", "a", "b"]
        np.testing.assert_array_equal(q.vectors(), p.vectors())
    p.close()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x.txt").write_text("mine")
    r = run("backup", str(tmp_path / "p"), str(tmp_path / "busy"))
    assert r.returncode == 2 and "not an empty folder" in r.stderr
    r = run("backup", str(tmp_path / "p"), str(tmp_path / "p" / "inner"))
    assert r.returncode == 2 and "inside the project" in r.stderr
    assert not (tmp_path / "p" / "inner").exists()


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-clip")
    save_tiny_clip(folder, seed=0)
    return folder


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        arr = rng.integers(0, 255, (40 + 5 * i, 50, 3), dtype=np.uint8)
        Image.fromarray(arr).save(folder / f"p{i}.jpg", quality=90)
    return folder


@pytest.mark.slow
def test_embed_leaves_a_project_ready_to_open(tiny_clip, photos, tmp_path):
    from workbench import Workbench
    from workbench.items import from_folder
    from workbench.project import Project

    Project.create(tmp_path / "proj", from_folder(photos)).close()
    r = run("embed", str(tmp_path / "proj"), "--model", f"clip:{tiny_clip}", "--device",
            "cpu", "--no-progress")
    assert r.returncode == 0, r.stderr
    wb = Workbench.open(tmp_path / "proj", background=False, layout="quick")
    assert wb.vectors.shape == (6, 16)
    assert wb.project.meta["embedder"]["spec"] == f"clip:{tiny_clip}"
    assert wb.project.meta["embedder"]["name"].startswith("clip:")
    wb.close()


@pytest.mark.slow
def test_from_items_reuses_what_embed_folder_computed(tiny_clip, photos, tmp_path,
                                                      monkeypatch):
    from workbench import Workbench
    from workbench.embed import ClipEmbedder
    from workbench.items import from_folder

    r = run("embed", str(photos), "--model", f"clip:{tiny_clip}", "--device", "cpu",
            "--no-progress")
    assert r.returncode == 0 and "6 computed" in r.stdout, r.stderr
    calls = []
    real = ClipEmbedder.embed_batch
    monkeypatch.setattr(ClipEmbedder, "embed_batch",
                        lambda self, x: calls.append(len(x)) or real(self, x))
    wb = Workbench.from_items(tmp_path / "proj", from_folder(photos),
                              model=f"clip:{tiny_clip}", progress=False,
                              background=False, layout="quick")
    wb.close()
    assert calls == []  # every vector came from the folder's cache


@pytest.mark.slow
def test_folder_cache_finds_what_embed_folder_computed(tiny_clip, photos, tmp_path):
    from workbench.cli.embed import folder_cache
    from workbench.embed import ClipEmbedder, embed_items
    from workbench.items import from_folder

    items = from_folder(photos)
    assert folder_cache(items) is None
    r = run("embed", str(photos), "--model", f"clip:{tiny_clip}", "--device", "cpu",
            "--no-progress")
    assert r.returncode == 0, r.stderr
    cache = folder_cache(items)
    assert cache == photos.resolve() / ".workbench-cache"
    again = embed_items(items, ClipEmbedder(str(tiny_clip), device="cpu"), cache_dir=cache,
                        progress=False)
    assert again.n_computed == 0 and len(again.ids) == 6

"""Project folders (create, reopen, refuse to overwrite) and every export format."""

from __future__ import annotations

import json
import os

import numpy as np
import polars as pl
import pytest

from workbench.export import (
    ExportError,
    export_imagefolder,
    export_table,
    labelled_table,
    to_hf_dataset,
)
from workbench.items import from_folder, from_vectors
from workbench.project import Project, ProjectError

EVIL = "<img src=x onerror=alert(1)>"


@pytest.fixture
def project(tmp_path, image_folder):
    p = Project.create(tmp_path / "proj", from_folder(image_folder, labels_from_subfolders=True))
    yield p
    p.close()


def test_create_imports_labels_and_reopen_restores(project, tmp_path):
    assert project.n == 7
    assert project.labels.class_names == ["cats", "dogs"]
    project.labels.assign(["loose.jpg"], "green")
    project.close()
    again = Project.open(tmp_path / "proj")
    t = again.labels.table()
    assert t.filter(pl.col("id") == "loose.jpg")["label"][0] == "green"
    assert t.filter(pl.col("id") == "cats/0.png")["annotator"][0] == "import"
    assert "imported_label" in again.items.columns
    again.close()


def test_create_refuses_existing_project_and_open_refuses_non_project(project, tmp_path):
    with pytest.raises(ProjectError, match="already holds a project"):
        Project.create(project.path, project.items)
    with pytest.raises(ProjectError, match="not a workbench project"):
        Project.open(tmp_path)


def test_unreadable_images_skipped_at_create(tmp_path, image_folder):
    (image_folder / "cats" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    p = Project.create(tmp_path / "p2", from_folder(image_folder))
    assert "cats/broken.png" in p.skipped.skipped
    assert "cats/broken.png" not in p.items["id"].to_list()
    p.close()
    assert "cats/broken.png" in Project.open(tmp_path / "p2").skipped.skipped


def test_vectors_project(tmp_path, rng):
    items, x = from_vectors(rng.normal(size=(20, 4)))
    p = Project.create(tmp_path / "v", items, vectors=x)
    np.testing.assert_array_equal(p.vectors(), x)
    p.close()
    with pytest.raises(ValueError, match="3 vectors for 20 items"):
        Project.create(tmp_path / "v2", items, vectors=x[:3])


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_table_exports(project, tmp_path, fmt):
    project.labels.assign(["loose.jpg"], EVIL)
    project.labels.assign(["cats/0.png"], "dogs", source="probe", confidence=[0.4])  # human wins
    out = export_table(project, tmp_path / f"labels.{fmt}")
    if fmt == "parquet":
        t = pl.read_parquet(out)
    elif fmt == "csv":
        t = pl.read_csv(out)
    else:
        t = pl.read_ndjson(out)
    assert t.columns == ["id", "source", "label", "label_id", "label_source", "layer",
                         "confidence", "annotator", "time"]
    labels = dict(zip(t["id"], t["label"]))
    assert labels["loose.jpg"] == EVIL
    assert labels["cats/0.png"] == "cats"
    assert set(t["label_source"]) == {"human"}


def test_include_machine_labels_above_confidence(tmp_path, rng):
    items, x = from_vectors(rng.normal(size=(4, 2)))
    p = Project.create(tmp_path / "m", items, vectors=x)
    p.labels.assign(["0"], "a")
    p.labels.assign(["1", "2"], "b", source="propagated", confidence=[0.9, 0.3])
    assert labelled_table(p)["id"].to_list() == ["0"]
    t = labelled_table(p, include="all", min_confidence=0.5)
    assert t["id"].to_list() == ["0", "1"]
    assert t["label_source"].to_list() == ["human", "propagated"]

    class Live:
        label = np.array([-1, -1, -1, p.labels.class_id("a")])
        confidence = np.array([0, 0, 0, 0.95], np.float32)
        source = "probe"

    t = labelled_table(p, include="all", min_confidence=0.5, predictions=Live())
    assert t["id"].to_list() == ["0", "1", "3"]
    assert t["label_source"].to_list() == ["human", "propagated", "probe"]
    p.close()


@pytest.mark.parametrize("mode", ["copy", "symlink", "hardlink"])
def test_imagefolder_export_with_split(project, tmp_path, mode):
    out = export_imagefolder(project, tmp_path / f"out-{mode}", mode=mode, split=0.34, seed=1)
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert len(files) == 6
    assert {f.split("/")[0] for f in files} == {"train", "val"}
    assert {f.split("/")[1] for f in files} == {"cats", "dogs"}
    again = export_imagefolder(project, tmp_path / f"again-{mode}", mode=mode, split=0.34, seed=1)
    assert sorted(p.relative_to(again).as_posix() for p in again.rglob("*.png")) == files
    with pytest.raises(ExportError, match="not empty"):
        export_imagefolder(project, out)


@pytest.mark.parametrize("label", ["../../etc", "a/b", "..", "/abs", "x\x00y", EVIL, "C:\\evil"])
def test_hostile_label_never_writes_outside(project, tmp_path, label):
    project.labels.assign(["loose.jpg"], label)
    out = tmp_path / "exp" / "inner"
    export_imagefolder(project, out)
    for path in (tmp_path / "exp").rglob("*"):
        assert path.resolve().is_relative_to(out.resolve())
    classes = json.loads((out / "labels.json").read_text(encoding="utf-8"))["classes"]
    assert label in [c["name"] for c in classes]
    folder = next(c["folder"] for c in classes if c["name"] == label)
    assert (out / folder / "loose.jpg").is_file()
    assert os.sep not in folder and folder not in ("..", ".")


def test_hf_dataset(project):
    ds = to_hf_dataset(project)
    assert ds.features["label"].names == ["cats", "dogs"]
    assert len(ds) == 6
    assert ds[0]["image"].size == (16, 12)
    assert ds.features["label"].int2str(ds[0]["label"]) == "cats"

"""Exports write where asked and nowhere else: never in a project, never over a file unless
told, nothing left behind by a failure; format by suffix; formulas neutralised; metadata."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from workbench.export import ExportError, ExportWarning, export_project
from workbench.items import from_folder, from_vectors
from workbench.project import Project


@pytest.fixture
def project(tmp_path, image_folder):
    p = Project.create(tmp_path / "proj", from_folder(image_folder, labels_from_subfolders=True))
    yield p
    p.close()


def labels_of(p: Project) -> dict[str, str | None]:
    p.labels.refresh()
    t = p.labels.table()
    return dict(zip(t["id"].to_list(), t["label"].to_list()))


@pytest.mark.parametrize("name", ["labels.sqlite", "items.parquet", "workbench.json", ".",
                                  "cache/x.parquet", "new/deeper.csv"])
def test_export_into_the_project_is_refused_and_labels_survive(project, name):
    before = labels_of(project)
    files = {f: f.read_bytes() for f in project.path.iterdir() if f.is_file()}
    target = project.path / name
    fmt = "imagefolder" if name == "." else "parquet"
    with pytest.raises(ExportError, match="inside the project"):
        export_project(project, target, format=fmt, overwrite=True)
    assert {f: f.read_bytes() for f in project.path.iterdir() if f.is_file()} == files
    assert not (project.path / "new").exists()
    project.close()
    again = Project.open(project.path)
    assert labels_of(again) == before
    again.close()


def test_export_into_another_project_or_through_a_symlink_is_refused(project, tmp_path, rng):
    items, x = from_vectors(rng.normal(size=(4, 2)))
    other = Project.create(tmp_path / "other", items, vectors=x)
    other.close()
    with pytest.raises(ExportError, match="inside the project"):
        export_project(project, tmp_path / "other" / "labels.sqlite", format="parquet",
                       overwrite=True)
    link = tmp_path / "innocent.parquet"
    link.symlink_to(project.path / "labels.sqlite")
    with pytest.raises(ExportError, match="inside the project"):
        export_project(project, link, overwrite=True)
    (tmp_path / "dir-link").symlink_to(project.path)
    with pytest.raises(ExportError, match="inside the project"):
        export_project(project, tmp_path / "dir-link" / "out.csv")
    with pytest.raises(ExportError, match="contains the project"):
        export_project(project, tmp_path, format="imagefolder", overwrite=True)


@pytest.mark.parametrize(("name", "fmt"), [("a.csv", "csv"), ("a.tsv", "tsv"),
                                           ("a.jsonl", "jsonl"), ("a.parquet", "parquet")])
def test_format_follows_the_suffix(project, tmp_path, name, fmt):
    out = export_project(project, tmp_path / name)
    head = out.read_bytes()[:4]
    assert (head == b"PAR1") == (fmt == "parquet")
    if fmt == "csv":
        assert pl.read_csv(out).height == 6
    elif fmt == "tsv":
        assert pl.read_csv(out, separator="\t").height == 6
    elif fmt == "jsonl":
        assert pl.read_ndjson(out).height == 6
    meta = json.loads(Path(f"{out}.meta.json").read_text(encoding="utf-8"))
    assert meta["format"] == fmt


def test_format_argument_wins_and_a_folder_needs_one(project, tmp_path):
    out = export_project(project, tmp_path / "labels.txt", format="csv")
    assert pl.read_csv(out).height == 6
    with pytest.raises(ExportError, match=r"--format imagefolder\|hf"):
        export_project(project, tmp_path / "folder")
    with pytest.raises(ExportError, match="suffix"):
        export_project(project, tmp_path / "labels.xlsx")


@pytest.mark.parametrize("fmt", ["csv", "parquet", "imagefolder"])
def test_existing_target_refused_unless_overwrite(project, tmp_path, fmt):
    target = tmp_path / ("out" if fmt == "imagefolder" else f"out.{fmt}")
    export_project(project, target, format=fmt)
    project.labels.assign(["loose.jpg"], "green")
    with pytest.raises(ExportError, match="overwrite"):
        export_project(project, target, format=fmt)
    export_project(project, target, format=fmt, overwrite=True)
    meta_file = target / "workbench-export.json" if fmt == "imagefolder" else \
        Path(f"{target}.meta.json")
    assert json.loads(meta_file.read_text(encoding="utf-8"))["rows"] == 7
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_overwrite_never_replaces_a_folder_that_is_not_an_export(project, tmp_path):
    mine = tmp_path / "my-photos"
    mine.mkdir()
    (mine / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(ExportError, match="not a workbench export"):
        export_project(project, mine, format="imagefolder", overwrite=True)
    assert (mine / "holiday.jpg").read_bytes() == b"precious"


def test_a_failed_imagefolder_export_leaves_nothing_and_the_retry_works(project, tmp_path):
    # The last image vanishes: the copy fails midway, after the other files were copied.
    victim = Path(project.items.filter(pl.col("id") == "dogs/2.png")["source"][0])
    saved = tmp_path / "saved.png"
    shutil.move(victim, saved)
    out = tmp_path / "exports" / "images"
    with pytest.raises(ExportError, match="no longer exists"):
        export_project(project, out, format="imagefolder", split=0.5)
    assert not out.exists()
    assert list((tmp_path / "exports").iterdir()) == []
    shutil.move(saved, victim)
    export_project(project, out, format="imagefolder", split=0.5)
    assert len(list(out.rglob("*.png"))) == 6


def test_hf_export_refuses_a_non_empty_folder_and_writes_metadata(project, tmp_path):
    datasets = pytest.importorskip("datasets")
    out = tmp_path / "hf"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="not empty"):
        export_project(project, out, format="hf")
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    out2 = export_project(project, tmp_path / "hf2", format="hf")
    ds = datasets.load_from_disk(str(out2))
    assert ds.features["label"].names == ["cats", "dogs"]
    assert json.loads(ds.info.description)["counts"]["human"] == 6
    assert (out2 / "workbench-export.json").is_file()
    with pytest.raises(ExportError, match="not empty"):
        export_project(project, out2, format="hf")
    export_project(project, out2, format="hf", overwrite=True)
    assert len(datasets.load_from_disk(str(out2))) == 6


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_formula_cells_are_neutralised_unless_switched_off(project, tmp_path, fmt):
    evil = ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]
    for item, name in zip(["cats/0.png", "cats/1.png", "cats/2.png", "dogs/0.png",
                           "dogs/1.png", "dogs/2.png"], evil):
        project.labels.assign([item], name)
    sep = "," if fmt == "csv" else "\t"
    safe = pl.read_csv(export_project(project, tmp_path / f"safe.{fmt}"), separator=sep)
    assert sorted(safe["label"].drop_nulls().to_list()) == sorted(
        ["'" + e for e in evil])
    raw = pl.read_csv(export_project(project, tmp_path / f"raw.{fmt}", csv_safe=False),
                      separator=sep)
    assert sorted(raw["label"].to_list()) == sorted(evil)
    parquet = pl.read_parquet(export_project(project, tmp_path / "p.parquet"))
    assert sorted(parquet["label"].to_list()) == sorted(evil)
    folder = export_project(project, tmp_path / "imgs", format="imagefolder")
    listed = pl.read_csv(folder / "labels.csv")
    assert all(not lab.startswith(tuple("=+-@")) for lab in listed["label"].to_list())


def test_metadata_sidecar(project, tmp_path):
    project.labels.assign(["loose.jpg"], "green", source="probe", confidence=[0.7])
    with pytest.warns(ExportWarning, match="no live predictions"):
        out = export_project(project, tmp_path / "all.csv", include="all", min_confidence=0.5,
                             estimate={"accuracy": np.float32(0.9), "low": float("nan"),
                                       "machine": {"count": np.int64(1)}})
    meta = json.loads((tmp_path / "all.csv.meta.json").read_text(encoding="utf-8"))
    assert meta["project"] == str(project.path)
    assert meta["exported_at"].endswith("Z")
    assert meta["include"] == "all" and meta["min_confidence"] == 0.5
    assert meta["counts"] == {"human": 6, "accepted": 1, "predicted": 0}
    assert meta["classes"] == [{"id": 0, "name": "cats"}, {"id": 1, "name": "dogs"},
                               {"id": 2, "name": "green"}]
    assert meta["estimate"] == {"accuracy": pytest.approx(0.9), "low": None,
                                "machine": {"count": 1}}
    assert meta["file"] == out.name
    t = pl.read_csv(out)
    assert dict(zip(t["label"], t["label_id"])) == {"cats": 0, "dogs": 1, "green": 2}
    assert all(s.endswith("Z") for s in t["time"].to_list())
    p = pl.read_parquet(export_project(project, tmp_path / "all.parquet"))
    assert p.schema["time"] == pl.Datetime("us", "UTC")
    meta = json.loads((tmp_path / "all.parquet.meta.json").read_text(encoding="utf-8"))
    assert meta["estimate"] is None


def test_options_that_do_nothing_warn(project, tmp_path):
    with pytest.warns(ExportWarning, match="min_confidence"):
        export_project(project, tmp_path / "a.csv", min_confidence=0.5)
    with pytest.warns(ExportWarning, match="ImageFolder"):
        export_project(project, tmp_path / "b.csv", split=0.2)
    with pytest.warns(ExportWarning, match="csv_safe"):
        export_project(project, tmp_path / "c.parquet", csv_safe=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        export_project(project, tmp_path / "d.csv")

"""ImageFolder exports load in torchvision with one class order for train and val."""

from __future__ import annotations

import json

import pytest

from workbench.export import export_project
from workbench.items import from_folder
from workbench.project import Project


@pytest.fixture
def project(tmp_path, image_folder):
    p = Project.create(tmp_path / "proj", from_folder(image_folder, labels_from_subfolders=True))
    p.labels.assign(["loose.jpg"], "birds")  # a class with a single item
    yield p
    p.close()


def test_train_and_val_share_class_to_idx_with_a_one_item_class(project, tmp_path):
    datasets = pytest.importorskip("torchvision.datasets")
    out = export_project(project, tmp_path / "out", format="imagefolder", split=0.34, seed=1)
    train = datasets.ImageFolder(str(out / "train"), allow_empty=True)
    val = datasets.ImageFolder(str(out / "val"), allow_empty=True)
    assert train.class_to_idx == val.class_to_idx == {"birds": 0, "cats": 1, "dogs": 2}
    classes = json.loads((out / "labels.json").read_text(encoding="utf-8"))["classes"]
    assert [(c["id"], c["name"], c["folder"]) for c in classes] == [
        (0, "birds", "birds"), (1, "cats", "cats"), (2, "dogs", "dogs")]
    assert len(train) + len(val) == 7
    assert (out / "val" / "birds").is_dir() and not any((out / "val" / "birds").iterdir())
    meta = json.loads((out / "workbench-export.json").read_text(encoding="utf-8"))
    assert meta["classes"] == classes
    assert meta["parts"] == {"train": len(train), "val": len(val)}


def test_folder_names_that_would_sort_differently_keep_the_class_order(project, tmp_path):
    datasets = pytest.importorskip("torchvision.datasets")
    # "a/z" sorts before "a0" as a name, but its folder "a_z" sorts after "a0".
    project.labels.assign(["cats/0.png"], "a/z")
    project.labels.assign(["dogs/0.png"], "a0")
    out = export_project(project, tmp_path / "out", format="imagefolder")
    classes = json.loads((out / "labels.json").read_text(encoding="utf-8"))["classes"]
    names = [c["name"] for c in classes]
    assert names == sorted(names)
    loaded = datasets.ImageFolder(str(out))
    assert {c["folder"]: c["id"] for c in classes} == loaded.class_to_idx

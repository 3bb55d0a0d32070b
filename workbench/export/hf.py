"""Hugging Face exports: :func:`hf_dataset` builds a ``datasets.Dataset`` whose ``label`` is a
``ClassLabel`` (names in class order), :func:`write_hf` saves one with ``save_to_disk`` plus
the metadata (also in the dataset's description). Needs the optional ``datasets`` package."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from .._config import EXPORT_FOLDER_META
from .metadata import json_text
from .publish import publish_dir, write_temp
from .rows import class_order

__all__ = ["hf_dataset", "write_hf"]


def hf_dataset(project: Any, rows: pl.DataFrame, *, images: bool = True,
               description: str = "") -> Any:
    """``rows`` as an in-memory ``datasets.Dataset``; see
    :func:`~workbench.export.to_hf_dataset`."""
    try:
        import datasets
    except ImportError as e:
        raise ImportError(
            "exporting to Hugging Face datasets needs the 'datasets' package: "
            "pip install 'workbench[hf]' (or pip install datasets)"
        ) from e
    kinds = dict(zip(project.items["id"].to_list(), project.items["kind"].to_list()))
    data: dict[str, list[Any]] = {
        "id": rows["id"].to_list(),
        "label": rows["label_id"].to_list(),
        "label_source": rows["label_source"].to_list(),
        "layer": rows["layer"].to_list(),
        "confidence": rows["confidence"].to_list(),
    }
    features: dict[str, Any] = {
        "id": datasets.Value("string"),
        "label": datasets.ClassLabel(names=class_order(rows)),
        "label_source": datasets.Value("string"),
        "layer": datasets.Value("string"),
        "confidence": datasets.Value("float64"),
    }
    if images and all(kinds[i] == "image" for i in data["id"]):
        data["image"] = [str(s) for s in rows["source"].to_list()]
        features["image"] = datasets.Image()
    else:
        key = "text" if all(kinds[i] == "text" for i in data["id"]) else "source"
        data[key] = [None if s is None else str(s) for s in rows["source"].to_list()]
        features[key] = datasets.Value("string")
    features = datasets.Features(features)
    info = datasets.DatasetInfo(description=description, features=features)
    return datasets.Dataset.from_dict(data, features=features, info=info)


def write_hf(project: Any, rows: pl.DataFrame, root: Path, meta: dict[str, Any], *,
             overwrite: bool) -> Path:
    """Save ``rows`` as a Hugging Face dataset folder at ``root``, whole or not at all."""
    ds = hf_dataset(project, rows, description=json.dumps(meta, ensure_ascii=False))

    def write(tmp: Path) -> None:
        ds.save_to_disk(str(tmp))
        (tmp / EXPORT_FOLDER_META).write_text(json_text(meta), encoding="utf-8")
        publish_dir(tmp, root)

    write_temp(root, write, folder=False)  # save_to_disk makes the folder itself
    return root

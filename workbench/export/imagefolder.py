"""ImageFolder exports: ``folder/[train|val/]<class>/<file>`` (copies or links), every class
in every part so torchvision's ``class_to_idx`` agree, with ``labels.json``, ``labels.csv``
and the metadata (``workbench-export.json``) inside; built in a temporary folder and renamed
into place whole. Every path is checked to stay inside the export folder."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from .._config import EXPORT_FOLDER_META
from .folder_names import label_folders, safe_folder_name
from .metadata import json_text
from .options import ExportError
from .publish import publish_dir, write_temp
from .rows import class_order
from .table import neutralise

__all__ = ["write_imagefolder"]


def write_imagefolder(project: Any, rows: pl.DataFrame, root: Path, meta: dict[str, Any], *,
                      overwrite: bool, mode: str, split: float | None, seed: int,
                      csv_safe: bool) -> Path:
    """Write the image items of ``rows`` as an ImageFolder at ``root``; see
    :func:`~workbench.export.export_imagefolder`."""
    kinds = dict(zip(project.items["id"].to_list(), project.items["kind"].to_list()))
    not_images = [i for i in rows["id"].to_list() if kinds.get(i) != "image"]
    if not_images:
        raise ExportError(
            f"item {not_images[0]!r} is not an image ({len(not_images)} such items); "
            "ImageFolder exports need image items: export a table for texts or vectors"
        )
    classes = class_order(rows)
    folders = label_folders(classes)
    parts = ["train", "val"] if split is not None else [""]
    subset = _split(rows["label"].to_list(), split, seed)
    meta["classes"] = [{"id": i, "name": n, "folder": folders[n]} for i, n in enumerate(classes)]
    meta.update(mode=mode, split=split, seed=seed if split is not None else None,
                csv_safe=bool(csv_safe),
                parts={p or ".": subset.count(p) for p in parts})

    def write(tmp: Path) -> None:
        for part in parts:  # every class in every part, so class_to_idx agree
            for name in classes:
                (tmp / part / folders[name]).mkdir(parents=True, exist_ok=True)
        files = []
        used: set[Path] = set()
        for (item_id, source, label, label_id), part in zip(
            rows.select("id", "source", "label", "label_id").iter_rows(), subset
        ):
            src = Path(source)
            name = safe_folder_name(src.name) or "item"
            dest = tmp / part / folders[label] / name
            n = 1
            while dest in used:
                dest = dest.with_name(f"{Path(name).stem}_{n}{Path(name).suffix}")
                n += 1
            used.add(dest)
            if not dest.resolve().is_relative_to(tmp.resolve()):  # defence in depth
                raise ExportError(f"refusing to write {str(dest)!r} outside the export")
            if not src.is_file():
                raise ExportError(
                    f"image {str(src)!r} of item {item_id!r} no longer exists; restore it "
                    "or remove the item's label, then export again"
                )
            if mode == "copy":
                shutil.copy2(src, dest)
            elif mode == "symlink":
                dest.symlink_to(src.resolve())
            else:
                os.link(src, dest)
            files.append((item_id, label, label_id, dest.relative_to(tmp).as_posix()))
        (tmp / "labels.json").write_text(
            json.dumps({"classes": meta["classes"]}, ensure_ascii=False, indent=1) + "\n",
            encoding="utf-8")
        table = pl.DataFrame(files, schema={"id": pl.String, "label": pl.String,
                                            "label_id": pl.Int64, "file": pl.String},
                             orient="row")
        (neutralise(table) if csv_safe else table).write_csv(tmp / "labels.csv")
        (tmp / EXPORT_FOLDER_META).write_text(json_text(meta), encoding="utf-8")
        publish_dir(tmp, root)

    write_temp(root, write, folder=True)
    return root


def _split(labels: list[str], split: float | None, seed: int) -> list[str]:
    if split is None:
        return [""] * len(labels)
    rng = np.random.default_rng(seed)
    parts = ["train"] * len(labels)
    by_label: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        by_label.setdefault(lab, []).append(i)
    for idx in by_label.values():
        idx = np.array(idx)
        rng.shuffle(idx)
        n_val = round(len(idx) * split)
        if len(idx) > 1:
            n_val = min(max(n_val, 1), len(idx) - 1)
        for i in idx[:n_val]:
            parts[i] = "val"
    return parts

"""Where an export may go: :func:`check_target` refuses any path inside a project folder
(symlinks resolved; an export must never replace a project's files), a path containing the
project, and an existing file or non-empty folder unless it may be overwritten."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .._config import EXPORT_FOLDER_META, PROJECT_FILE
from .annotations import annotations_path
from .metadata import sidecar_path
from .options import TABLE_FORMATS, ExportError

__all__ = ["check_target"]


def check_target(path: str | os.PathLike[str], project: Any, fmt: str, *,
                 overwrite: bool, annotations: bool = False) -> Path:
    """The resolved target, after refusing a project folder and an existing export (with
    ``annotations``, also its long table of annotations beside a table)."""
    target = Path(path).expanduser().resolve()
    project_root = Path(project.path).expanduser().resolve()
    checks = [target]
    beside = [sidecar_path(target)] if fmt in TABLE_FORMATS else []
    if fmt in TABLE_FORMATS and annotations:
        beside.append(annotations_path(target))
    checks += [p.resolve() for p in beside]
    for p in checks:
        for folder in (p, *p.parents):
            if folder == project_root or (folder / PROJECT_FILE).is_file():
                raise ExportError(
                    f"refusing to export to {str(path)!r}: {str(p)!r} is inside the project "
                    f"folder {str(folder)!r}, and an export must never replace a project's "
                    "files; choose a path outside it"
                )
    if project_root.is_relative_to(target):
        raise ExportError(
            f"refusing to export to {str(path)!r}: it contains the project "
            f"{str(project_root)!r}; choose a path outside it"
        )
    if fmt in TABLE_FORMATS:
        for p in (target, *beside):
            if p.is_dir():
                raise ExportError(f"{str(p)!r} is a folder; a {fmt} export is a file")
            if (p.exists() or p.is_symlink()) and not overwrite:
                raise ExportError(
                    f"{str(p)!r} already exists; pass overwrite=True (--overwrite) to "
                    "replace it, or choose another name"
                )
    elif target.exists():
        if not target.is_dir():
            raise ExportError(f"{str(target)!r} is a file; a {fmt} export is a folder")
        if any(target.iterdir()):
            if not overwrite:
                raise ExportError(
                    f"export folder {str(target)!r} is not empty; pass overwrite=True "
                    "(--overwrite) to replace an earlier export, or choose a new folder"
                )
            if not (target / EXPORT_FOLDER_META).is_file():
                raise ExportError(
                    f"export folder {str(target)!r} is not empty and is not a workbench "
                    f"export (no {EXPORT_FOLDER_META}); overwrite only replaces earlier "
                    "exports: empty it yourself or choose a new folder"
                )
    return target

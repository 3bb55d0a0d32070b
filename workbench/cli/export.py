"""``workbench export PROJECT OUT``: the labels as a dataset, exactly as
:meth:`Workbench.export <workbench.session.Workbench.export>` writes them, without writing a
file in the project (its cache is shadowed by a temporary folder)."""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["add_parser"]


def _cmd_export(args: argparse.Namespace) -> int:
    from .._selections import saved_ids
    from ..export import ExportWarning, export_project

    opts = {"format": args.format, "include": args.include,
            "min_confidence": args.min_confidence, "overwrite": args.overwrite,
            "csv_safe": args.csv_safe, "mode": args.mode, "split": args.split,
            "seed": args.seed, "annotations": args.annotations}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ExportWarning)
        try:
            with _open_read_only(args.project) as (wb, project):
                if wb is None:
                    if args.include == "all":
                        warnings.warn(
                            "the project has no vectors, so there are no live predictions: "
                            "exporting human and accepted machine labels only (embed it "
                            "first: workbench embed PROJECT)", ExportWarning, stacklevel=1)
                    if args.selection is not None:
                        opts["items"] = saved_ids(project.path, args.selection)
                    out = export_project(project, args.out, **opts)
                else:
                    if args.selection is not None:
                        opts["selection"] = args.selection
                    if args.include == "all" and wb.predictions is None:
                        wb.retrain()  # background=False: fits here, before the export
                    out = wb.export(args.out, **opts)
        finally:
            for w in caught:
                if issubclass(w.category, ExportWarning):
                    print(f"workbench export: warning: {w.message}", file=sys.stderr)
    print(f"exported to {out}")
    return 0


@contextlib.contextmanager
def _open_read_only(folder: str) -> Iterator[tuple[Any, Any]]:
    """(Workbench or None when the project has no vectors, Project), writing nothing in the
    project: its cache is shadowed by a temporary folder that links to the entries already
    there, so cached graphs are reused and new ones vanish with the folder."""
    from ..project import Project
    from ..session import Workbench

    class ShadowCacheProject(Project):
        @property
        def cache_dir(self) -> Path:
            return shadow

    with tempfile.TemporaryDirectory(prefix="workbench-cli-") as tmp:
        shadow = Path(tmp)
        project = ShadowCacheProject(folder)
        try:
            real = project.path / "cache"
            for entry in real.iterdir() if real.is_dir() else ():
                with contextlib.suppress(OSError):  # no symlinks here: rebuilt instead
                    (shadow / entry.name).symlink_to(entry)
            if project.vectors() is None:
                yield None, project
            else:
                yield Workbench(project, background=False, layout="quick"), project
        finally:
            project.close()


def add_parser(sub: Any) -> None:
    """Register ``export`` on an ``argparse`` subparsers object."""
    p = sub.add_parser(
        "export", help="export labels as a dataset (the same rows as Workbench.export)",
        description="Export labels exactly as Workbench.export does. With --include all the "
        "live predictions are computed first (propagation and probe, without the UMAP "
        "map's neighbours). Writes metadata beside the export (OUT.meta.json for a "
        "table, workbench-export.json in a folder). Never writes inside a project.")
    p.add_argument("project", help="the project folder")
    p.add_argument("out", help="output file (.parquet, .csv, .tsv, .jsonl) or folder "
                   "(with --format imagefolder or hf)")
    p.add_argument("--format", choices=["parquet", "csv", "tsv", "jsonl", "imagefolder", "hf"],
                   default=None, help="export format (default: from the suffix of OUT)")
    p.add_argument("--include", choices=["human", "all"], default="human",
                   help="human labels only (default), or all: also accepted machine labels "
                   "and live predictions")
    p.add_argument("--min-confidence", type=float, default=0.0,
                   help="with --include all, leave out machine labels below this confidence "
                   "(0-1, default 0)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing file, or an earlier export folder")
    p.add_argument("--no-csv-safe", dest="csv_safe", action="store_false",
                   help="write CSV/TSV cells starting with = + - @ verbatim (default: "
                   "prefixed with ' so spreadsheets do not run them as formulas)")
    p.add_argument("--mode", choices=["copy", "symlink", "hardlink"], default=None,
                   help="imagefolder: copy (default), symlink or hardlink the images")
    p.add_argument("--split", type=float, default=None,
                   help="imagefolder: fraction of each class put in val/ (default: no split)")
    p.add_argument("--seed", type=int, default=None,
                   help="imagefolder: seed of the train/val split (default 0)")
    p.add_argument("--annotations", action="store_true",
                   help="tables: also write OUT's stem + .annotations + its suffix, the long "
                   "table of every annotator's label and each adjudication (id, annotator, "
                   "label, source, time)")
    p.add_argument("--selection", default=None, metavar="NAME",
                   help="export only the items of the selection saved as NAME "
                   "(wb.save_selection; the same rows as wb.export(OUT, selection=NAME))")
    p.set_defaults(func=_cmd_export)

"""Command line: ``workbench info|demo|export|backup|lab|embed``.

Every command works on a project folder, so the notebook and the shell share one state.
``info`` and ``export`` only read the project: they never create a file in it (derived data
such as the neighbour graph goes to a temporary folder, existing cache entries are reused).
Known errors (a bad path, a refused export, a damaged label log) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = ["backup_project", "build_parser", "main"]

#: Files of a project copied as they are by ``backup`` (each is replaced atomically, never
#: edited in place); the label log goes through SQLite's backup API instead.
_PROJECT_FILES = ("workbench.json", "items.parquet", "skipped.json", "vectors.npy")


class CommandError(RuntimeError):
    """A command that cannot run as asked; printed as one line."""


# -- info ----------------------------------------------------------------------------------------


def _cmd_info(args: argparse.Namespace) -> int:
    from .labels import effective_labels
    from .labels.effective import ACCEPTED, HUMAN
    from .project import Project

    # Read-write but never written: SQLite removes its -wal/-shm on close (a mode=ro open
    # leaves them behind), so info creates no file in the project.
    with Project.open(args.project) as p:
        t = p.labels.table()
        eff = effective_labels(p.labels.state)
        print(p)
        print(f"  kinds: {', '.join(p.meta.get('kinds', []))}")
        embedder = (p.meta.get("embedder") or {}).get("name")
        if embedder:
            print(f"  embedder: {embedder}")
        print(f"  vectors: {'yes' if (p.path / 'vectors.npy').is_file() else 'none yet'}")
        print(f"  labelled (human): {int((eff.layer == HUMAN).sum())}")
        print(f"  accepted machine labels: {int((eff.layer == ACCEPTED).sum())}")
        for name, count in t.group_by("label").len().sort("label").iter_rows():
            if name is not None:
                print(f"  {name!r}: {count}")
        if p.skipped:
            print(f"  {p.skipped}")
    return 0


# -- demo ----------------------------------------------------------------------------------------


def _cmd_demo(args: argparse.Namespace) -> int:
    from .project import demo_project

    p = demo_project(Path(args.folder))  # the same project Workbench.demo makes and opens
    print(p)
    p.close()
    return 0


# -- export --------------------------------------------------------------------------------------


def _cmd_export(args: argparse.Namespace) -> int:
    from .export import ExportWarning, export_project

    opts = {"format": args.format, "include": args.include,
            "min_confidence": args.min_confidence, "overwrite": args.overwrite,
            "csv_safe": args.csv_safe, "mode": args.mode, "split": args.split,
            "seed": args.seed}
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
                    out = export_project(project, args.out, **opts)
                else:
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
    from .project import Project
    from .session import Workbench

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


# -- backup --------------------------------------------------------------------------------------


def backup_project(project: str | os.PathLike[str], dest: str | os.PathLike[str]) -> Path:
    """Copy a project folder consistently to ``dest`` (new or empty; outside any project).

    The item table, metadata, skipped list and vectors are copied as files (each is only
    ever replaced atomically); the label log is copied with SQLite's online backup API, so
    labels written meanwhile are either wholly in the copy or not at all. The cache is
    left out (derived data, rebuilt on open). Written to a temporary folder beside
    ``dest`` and renamed at the end. Returns the resolved ``dest``.
    """
    from ._config import PROJECT_FILE

    src = Path(project).expanduser().resolve()
    if not (src / PROJECT_FILE).is_file():
        raise CommandError(f"{str(src)!r} is not a workbench project (no {PROJECT_FILE})")
    target = Path(dest).expanduser().resolve()
    for folder in (target, *target.parents):
        if folder == src or (folder / PROJECT_FILE).is_file():
            raise CommandError(
                f"refusing to back up into {str(target)!r}: it is inside the project "
                f"{str(folder)!r}; choose a folder outside any project"
            )
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise CommandError(
            f"{str(target)!r} already exists and is not an empty folder; choose a new folder"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        tmp.mkdir()
        _backup_sqlite(src / "labels.sqlite", tmp / "labels.sqlite")
        for name in _PROJECT_FILES:
            if (src / name).is_file():
                shutil.copy2(src / name, tmp / name)
        (tmp / "cache").mkdir()
        if target.exists():
            target.rmdir()
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _backup_sqlite(src: Path, dest: Path) -> None:
    """A consistent copy of a live SQLite database (the online backup API)."""
    try:
        from .labels.store import EventLog

        backup = getattr(EventLog, "backup", None)
    except ImportError:  # pragma: no cover
        backup = None
    if backup is not None:
        log = EventLog(src, create=False)  # a missing log is an error, never a new file
        try:
            log.backup(dest)
        finally:
            log.close()
        return
    source = sqlite3.connect(src)
    try:
        copy = sqlite3.connect(dest)
        try:
            source.backup(copy)
        finally:
            copy.close()
    finally:
        source.close()


def _cmd_backup(args: argparse.Namespace) -> int:
    out = backup_project(args.project, args.dest)
    print(f"backed up {args.project} to {out}")
    return 0


# -- lab -----------------------------------------------------------------------------------------


def _cmd_lab(args: argparse.Namespace) -> int:
    notebook = args.notebook or str(Path("notebooks") / "quickstart.ipynb")
    return subprocess.call([sys.executable, "-m", "jupyter", "lab", notebook])


# -- parser --------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info", help="summarise a project folder (read-only)")
    p.add_argument("project", help="the project folder")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("demo", help="create (or open) the offline digits demo project")
    p.add_argument("folder", help="folder of the demo project (created if missing)")
    p.set_defaults(func=_cmd_demo)

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
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("backup", help="copy a project consistently (labels via SQLite backup)")
    p.add_argument("project", help="the project folder")
    p.add_argument("dest", help="new or empty folder outside any project")
    p.set_defaults(func=_cmd_backup)

    p = sub.add_parser("lab", help="open JupyterLab on a notebook (default: the quickstart)")
    p.add_argument("notebook", nargs="?", help="notebook to open")
    p.set_defaults(func=_cmd_lab)

    _register_optional(sub)
    return parser


def _register_optional(sub: argparse._SubParsersAction) -> None:
    """Subcommands whose modules pull in heavy dependencies register here."""
    try:
        from .embed.cli import add_parser as add_embed
    except ImportError:
        return
    add_embed(sub)


def _message(e: BaseException) -> str:
    if isinstance(e, KeyError) and e.args:
        return str(e.args[0])
    if isinstance(e, sqlite3.Error):
        return (f"the label log could not be read ({e}); check the project folder, or "
                "restore it from a backup (workbench backup)")
    return str(e) or type(e).__name__


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, KeyError, RuntimeError, OSError, ImportError, sqlite3.Error) as e:
        print(f"workbench {args.command}: error: {_message(e)}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

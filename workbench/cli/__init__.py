"""Command line: ``workbench info|demo|export|backup|lab|embed``.

Every command works on a project folder, so the notebook and the shell share one state.
``info`` and ``export`` only read the project: they never create a file in it (derived data
such as the neighbour graph goes to a temporary folder, existing cache entries are reused).
Known errors (a bad path, a refused export, a damaged label log) print one line and exit 2.

Here: :func:`main`, the parser and ``lab``; the other commands are in
:mod:`~workbench.cli.project` (info, demo, backup), :mod:`~workbench.cli.export` and
:mod:`~workbench.cli.embed`.
"""

from __future__ import annotations

import argparse
import importlib
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from . import embed as embed_command
from . import export as export_command
from .project import CommandError as CommandError  # importable from here, as before
from .project import (
    add_backup_parser,
    add_demo_parser,
    add_info_parser,
    add_labels_parser,
    backup_project,
)

__all__ = ["backup_project", "build_parser", "main"]


# -- lab -----------------------------------------------------------------------------------------


def _cmd_lab(args: argparse.Namespace) -> int:
    notebook = args.notebook or str(Path("notebooks") / "quickstart.ipynb")
    return subprocess.call([sys.executable, "-m", "jupyter", "lab", notebook])


# -- parser --------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    add_info_parser(sub)
    add_demo_parser(sub)
    export_command.add_parser(sub)
    add_backup_parser(sub)
    add_labels_parser(sub)

    p = sub.add_parser("lab", help="open JupyterLab on a notebook (default: the quickstart)")
    p.add_argument("notebook", nargs="?", help="notebook to open")
    p.set_defaults(func=_cmd_lab)

    _register_optional(sub)
    return parser


def _register_optional(sub: argparse._SubParsersAction) -> None:
    """Subcommands whose modules pull in heavy dependencies register here."""
    try:
        importlib.import_module("..embed", __package__)  # the embed package itself
    except ImportError:
        return
    embed_command.add_parser(sub)


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

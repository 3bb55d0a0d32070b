"""Command line: ``workbench lab``, ``workbench demo``, ``workbench export``, ``workbench info``.

Every command works on a project folder, so the notebook and the shell share one state.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]


def _cmd_info(args: argparse.Namespace) -> int:
    from .project import Project

    with Project.open(args.project) as p:
        t = p.labels.table()
        print(p)
        print(f"  kinds: {', '.join(p.meta.get('kinds', []))}")
        print(f"  labelled (human): {int((t['label_source'] == 'human').sum())}")
        for name, count in t.group_by("label").len().sort("label").iter_rows():
            if name is not None:
                print(f"  {name!r}: {count}")
        if p.skipped:
            print(f"  {p.skipped}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .items import demo_digits
    from .project import Project

    folder = Path(args.folder)
    p = Project.open_or_create(folder, lambda: demo_digits(folder / "data"))
    print(p)
    p.close()
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .export import export_imagefolder, export_table, to_hf_dataset
    from .project import Project

    with Project.open(args.project) as p:
        opts = {"include": args.include, "min_confidence": args.min_confidence}
        if args.format == "imagefolder":
            out = export_imagefolder(p, args.out, mode=args.mode, split=args.split,
                                     seed=args.seed, **opts)
        elif args.format == "hf":
            out = args.out
            to_hf_dataset(p, **opts).save_to_disk(out)
        else:
            out = export_table(p, args.out, format=args.format, **opts)
    print(f"exported to {out}")
    return 0


def _cmd_lab(args: argparse.Namespace) -> int:
    notebook = args.notebook or str(Path("notebooks") / "quickstart.ipynb")
    return subprocess.call([sys.executable, "-m", "jupyter", "lab", notebook])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info", help="summarise a project folder")
    p.add_argument("project")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("demo", help="create (or open) the offline digits demo project")
    p.add_argument("folder")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("export", help="export labels as a dataset")
    p.add_argument("project")
    p.add_argument("out", help="output file (parquet/csv/jsonl) or folder (imagefolder/hf)")
    p.add_argument("--format", choices=["parquet", "csv", "jsonl", "imagefolder", "hf"],
                   default="parquet")
    p.add_argument("--include", choices=["human", "all"], default="human")
    p.add_argument("--min-confidence", type=float, default=0.0)
    p.add_argument("--mode", choices=["copy", "symlink", "hardlink"], default="copy")
    p.add_argument("--split", type=float, default=None, help="validation fraction")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("lab", help="open JupyterLab on a notebook (default: the quickstart)")
    p.add_argument("notebook", nargs="?")
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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, KeyError, RuntimeError, FileNotFoundError) as e:
        print(f"workbench {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

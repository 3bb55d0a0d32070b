"""``workbench embed PROJECT_OR_FOLDER --model ...``: batch embedding, e.g. on a GPU box.

The vectors land in a cache keyed by model and item content: the project's ``cache/``, or
``FOLDER/.workbench-cache`` for a plain folder of images (``TABLE_FOLDER/.workbench-cache``
for a table). For a project the command also writes ``vectors.npy`` and records the model in
``workbench.json``, as :meth:`Workbench.from_items <workbench.session.Workbench.from_items>`
does, so ``Workbench.open(PROJECT)`` works at once. For a folder, :func:`folder_cache` finds
the cache again from the items, so a later ``Workbench.from_items(dir, from_folder(FOLDER))``
can reuse the vectors instead of embedding again. With ``--ray [ADDRESS]`` the missing
vectors are computed on a Ray cluster (:mod:`workbench.embed.ray_engine`), into the same
cache a local run uses.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "folder_cache", "run"]

_PLAIN_CACHE = ".workbench-cache"  # hidden, so a folder load never reads it as images


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``embed`` subcommand on an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "embed", help="embed a project's items (written to its vectors.npy, ready for "
        "Workbench.open), or a folder of images or a table (into its cache)",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("path", help="a project folder, a folder of images, or a .csv/.parquet table")
    p.add_argument("--model", default=None,
                   help="clip | dino | text, or BACKEND:MODEL (e.g. clip:ViT-B-16, dino:base, "
                   "clip:/models/my-clip-folder); default clip for images, text for texts")
    p.add_argument("--pretrained", default=None, help="CLIP pretrained tag or weights file")
    p.add_argument("--checkpoint", default=None, help="DINOv2 weights file")
    p.add_argument("--device", default=None,
                   help="cuda, mps or cpu (default: best available; with --ray this is the "
                   "driver's, each Ray worker picks its own)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="items per forward pass (default: 32 on CPU, 256 on a GPU)")
    p.add_argument("--workers", type=int, default=None,
                   help="decode worker processes; with --ray, model actors (default: one per "
                   "GPU of the cluster, else one per CPU less those kept for decoding)")
    p.add_argument("--ray", nargs="?", const="auto", default=None, metavar="ADDRESS",
                   help="compute on a Ray cluster (pip install 'workbench[ray]'): decoding in "
                   "Ray tasks, the model in Ray actors, the same cache as a local run. "
                   "ADDRESS is the head's host:port or ray://host:port; --ray alone uses "
                   "RAY_ADDRESS or a running local cluster, else starts a local Ray")
    p.add_argument("--cache-dir", default=None,
                   help=f"cache folder (default: the project's cache, or PATH/{_PLAIN_CACHE})")
    p.add_argument("--out", default=None,
                   help="also write ids and vectors to this .npz file (arrays 'ids', 'vectors')")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run the ``embed`` subcommand; returns the exit status (1 when nothing embedded, or
    when a project's items could not all be embedded)."""
    import numpy as np

    from .._files import atomic_write
    from ..embed.factory import make_embedder
    from ..embed.run import embed_items

    items, cache_dir, project = _items_and_cache(Path(args.path), args.cache_dir)
    try:
        kinds = set(items["kind"].to_list())
        kind = "text" if kinds == {"text"} else "image"
        embedder = make_embedder(args.model, kind=kind, pretrained=args.pretrained,
                                 checkpoint=args.checkpoint, device=args.device)
        where = embedder.device if args.ray is None else f"Ray ({args.ray})"
        print(f"model {embedder.name} (dim {embedder.dim}) on {where}; "
              f"{items.height} items; cache {cache_dir}")
        result = embed_items(items, embedder, cache_dir=cache_dir,
                             batch_size=args.batch_size, num_workers=args.workers,
                             progress=not args.no_progress,
                             engine="local" if args.ray is None else "ray",
                             address=None if args.ray in (None, "auto") else args.ray)
        rate = result.n_computed / result.seconds if result.seconds > 0 else 0.0
        print(f"{len(result.ids)} vectors ({result.n_computed} computed, "
              f"{max(0, len(result.ids) - result.n_computed)} from the cache) in "
              f"{result.seconds:.1f} s ({rate:.1f} items/s)")
        if result.skipped:
            print(f"{len(result.skipped)} item(s) skipped:")
            for item_id, reason in list(result.skipped.items())[:20]:
                print(f"  {item_id}: {reason}")
            if len(result.skipped) > 20:
                print(f"  ... and {len(result.skipped) - 20} more")
        status = 0 if len(result.ids) else 1
        if project is not None and len(result.ids):
            status = _store_in_project(project, result, embedder, args)
    finally:
        if project is not None:
            project.close()
    if args.out:
        out = Path(args.out)

        def write_npz(tmp: Path) -> None:
            with open(tmp, "wb") as f:  # a file object, so numpy does not append ".npz"
                np.savez(f, ids=np.array(result.ids, dtype=str), vectors=result.vectors,
                         model=np.array(result.model),
                         skipped=np.array(json.dumps(result.skipped)))

        atomic_write(out, write_npz, durable=False)
        print(f"wrote {out}")
    return status


def _store_in_project(project: Any, result: Any, embedder: Any,
                      args: argparse.Namespace) -> int:
    """Write ``vectors.npy`` and the embedder into ``workbench.json``, as
    ``Workbench.from_items`` stores them; refuse when some item has no vector (the
    vectors must stay aligned with the items)."""
    from .._config import PROJECT_FILE
    from .._files import atomic_write, save_npy

    if len(result.ids) != project.n:
        print(f"vectors.npy not written: {project.n - len(result.ids)} of {project.n} items "
              "have no vector (listed above); fix or replace those files and run again "
              "(vectors already computed come from the cache)", file=sys.stderr)
        return 1
    vectors, _ = result.aligned(project.n)  # every item has one: item order
    # from_items keeps the spec so a reopened project can load the same text tower; a
    # custom weights file cannot be named by a spec alone.
    spec = None if (args.pretrained or args.checkpoint) else (
        args.model or ("text" if embedder.kind == "text" else "clip"))
    meta = dict(project.meta)
    before = (meta.get("embedder") or {}).get("name")
    if (project.path / "vectors.npy").exists() and before != embedder.name:
        print(f"replacing the project's vectors (model {before or 'unknown'}) with "
              f"{embedder.name}'s")
    meta["embedder"] = {"name": embedder.name, "spec": spec}
    save_npy(project.path / "vectors.npy", vectors)
    atomic_write(project.path / PROJECT_FILE, lambda p: Path(p).write_text(
        json.dumps(meta, indent=1), encoding="utf-8"))
    print(f"wrote {project.path / 'vectors.npy'} ({vectors.shape[0]} x {vectors.shape[1]}); "
          f"open it with Workbench.open({str(project.path)!r})")
    return 0


def folder_cache(items: Any) -> Path | None:
    """The cache ``workbench embed FOLDER`` filled for these image items, or None.

    It is ``FOLDER/.workbench-cache`` for the folder holding every item's file or any
    folder above it (the nearest wins). Pass it as ``cache_dir`` to
    :func:`~workbench.embed.embed_items` to reuse those vectors; entries are keyed by
    model and file content, so a wrong match only costs a recomputation.
    """
    import polars as pl

    sources = items.filter(pl.col("kind") == "image")["source"].to_list()
    if not sources:
        return None
    try:
        common = Path(os.path.commonpath([str(Path(s).resolve().parent) for s in sources]))
    except ValueError:  # different drives
        return None
    for folder in (common, *common.parents):
        if (folder / _PLAIN_CACHE).is_dir():
            return folder / _PLAIN_CACHE
    return None


def _items_and_cache(path: Path, cache_dir: str | None) -> tuple[Any, Path, Any]:
    """(items, cache folder, the open Project or None)."""
    from .._config import PROJECT_FILE
    from ..items import from_folder, from_table

    if (path / PROJECT_FILE).is_file():
        from ..project import Project

        project = Project.open(path)
        cache = Path(cache_dir) if cache_dir else project.cache_dir
        return project.items, cache, project
    if path.is_dir():
        items = from_folder(path)
        cache = Path(cache_dir) if cache_dir else path.resolve() / _PLAIN_CACHE
        return items, cache, None
    if path.is_file():
        items = from_table(path)
        cache = Path(cache_dir) if cache_dir else path.resolve().parent / _PLAIN_CACHE
        return items, cache, None
    raise FileNotFoundError(f"{str(path)!r} is neither a project, a folder nor a table")

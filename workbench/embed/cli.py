"""``workbench embed PROJECT_OR_FOLDER --model ...``: batch embedding, e.g. on a GPU box.

The vectors land in the project's cache, keyed by model and item content, so a notebook
that later asks for the same model on the same items finds them all there.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]

_PLAIN_CACHE = ".workbench-cache"  # hidden, so a folder load never reads it as images


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``embed`` subcommand on an ``argparse`` subparsers object."""
    p = subparsers.add_parser(
        "embed", help="embed a project's items (or a folder of images, or a table) into "
        "the cache",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("path", help="a project folder, a folder of images, or a .csv/.parquet table")
    p.add_argument("--model", default=None,
                   help="clip | dino | text, or BACKEND:MODEL (e.g. clip:ViT-B-16, dino:base, "
                   "clip:/models/my-clip-folder); default clip for images, text for texts")
    p.add_argument("--pretrained", default=None, help="CLIP pretrained tag or weights file")
    p.add_argument("--checkpoint", default=None, help="DINOv2 weights file")
    p.add_argument("--device", default=None, help="cuda, mps or cpu (default: best available)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--workers", type=int, default=None, help="decode worker processes")
    p.add_argument("--cache-dir", default=None,
                   help=f"cache folder (default: the project's cache, or PATH/{_PLAIN_CACHE})")
    p.add_argument("--out", default=None,
                   help="also write ids and vectors to this .npz file (arrays 'ids', 'vectors')")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run the ``embed`` subcommand; returns the exit status (1 when nothing embedded)."""
    import numpy as np

    from .factory import make_embedder
    from .run import embed_items

    items, cache_dir, closer = _items_and_cache(Path(args.path), args.cache_dir)
    try:
        kinds = set(items["kind"].to_list())
        kind = "text" if kinds == {"text"} else "image"
        embedder = make_embedder(args.model, kind=kind, pretrained=args.pretrained,
                                 checkpoint=args.checkpoint, device=args.device)
        print(f"model {embedder.name} (dim {embedder.dim}) on {embedder.device}; "
              f"{items.height} items; cache {cache_dir}")
        result = embed_items(items, embedder, cache_dir=cache_dir,
                             batch_size=args.batch_size, num_workers=args.workers,
                             progress=not args.no_progress)
    finally:
        closer()
    rate = result.n_computed / result.seconds if result.seconds > 0 else 0.0
    print(f"{len(result.ids)} vectors ({result.n_computed} computed, "
          f"{max(0, len(result.ids) - result.n_computed)} from the cache) in {result.seconds:.1f} s ({rate:.1f} items/s)")
    if result.skipped:
        print(f"{len(result.skipped)} item(s) skipped:")
        for item_id, reason in list(result.skipped.items())[:20]:
            print(f"  {item_id}: {reason}")
        if len(result.skipped) > 20:
            print(f"  ... and {len(result.skipped) - 20} more")
    if args.out:
        out = Path(args.out)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.savez(f, ids=np.array(result.ids, dtype=str), vectors=result.vectors,
                     model=np.array(result.model), skipped=np.array(json.dumps(result.skipped)))
        os.replace(tmp, out)
        print(f"wrote {out}")
    return 0 if len(result.ids) else 1


def _items_and_cache(path: Path, cache_dir: str | None) -> tuple[Any, Path, Any]:
    from .._config import PROJECT_FILE
    from ..items import from_folder, from_table

    if (path / PROJECT_FILE).is_file():
        from ..project import Project

        project = Project.open(path)
        cache = Path(cache_dir) if cache_dir else project.cache_dir
        return project.items, cache, project.close
    if path.is_dir():
        items = from_folder(path)
        return items, Path(cache_dir) if cache_dir else path / _PLAIN_CACHE, lambda: None
    if path.is_file():
        items = from_table(path)
        cache = Path(cache_dir) if cache_dir else path.parent / _PLAIN_CACHE
        return items, cache, lambda: None
    raise FileNotFoundError(f"{str(path)!r} is neither a project, a folder nor a table")

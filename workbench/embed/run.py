"""Embedding a collection: cached, resumable, batched, with a progress bar."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from .._config import EMBED_CACHE_MAX_CHUNKS, EMBED_CHUNK_SECONDS, EMBED_CHUNK_SIZE
from .._ray import ENGINES, check_engine
from ..items import ItemError, validate_items
from .base import Embedder, EmbedError
from .cache import EmbeddingCache, FileKeys, text_key
from .device import cap_torch_threads, default_batch_size, default_num_workers
from .loader import make_image_loader

__all__ = ["ENGINES", "ChunkWriter", "EmbedResult", "embed_items", "progress_bar"]


@dataclass
class EmbedResult:
    """Vectors of the items that could be embedded, and why the others could not.

    Attributes
    ----------
    ids : (M,) item ids that have a vector, in the items' order.
    rows : (M,) int64 positions of those items in the input table.
    vectors : (M, D) float32, row i belongs to ``ids[i]``; finite, L2-normalised.
    skipped : {item id: reason} for unreadable items (no row in ``vectors``).
    model : the embedder's ``name``; device : where the forward pass ran.
    n_computed : vectors computed by this call (the rest came from the cache).
    seconds : wall time of the call.
    """

    ids: list[str]
    rows: np.ndarray
    vectors: np.ndarray
    skipped: dict[str, str] = field(default_factory=dict)
    model: str = ""
    device: str = "cpu"
    n_computed: int = 0
    seconds: float = 0.0

    def aligned(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(N, D) vectors in item order with zero rows for skipped items, and (N,) bool mask
        of the items that have a vector."""
        out = np.zeros((n, self.vectors.shape[1]), dtype=np.float32)
        mask = np.zeros(n, dtype=bool)
        out[self.rows] = self.vectors
        mask[self.rows] = True
        return out, mask

    def __repr__(self) -> str:
        return (f"EmbedResult({len(self.ids)} vectors of dim {self.vectors.shape[1]}, "
                f"{len(self.skipped)} skipped, {self.n_computed} computed, model={self.model!r}, "
                f"device={self.device!r})")


def embed_items(
    items: pl.DataFrame | Sequence[str],
    embedder: Embedder,
    *,
    cache_dir: str | os.PathLike[str] | None,
    batch_size: int | None = None,
    num_workers: int | None = None,
    progress: bool = True,
    chunk_size: int = EMBED_CHUNK_SIZE,
    chunk_seconds: float = EMBED_CHUNK_SECONDS,
    engine: str = "local",
    address: str | None = None,
) -> EmbedResult:
    """Embed every item, reusing cached vectors and caching new ones as it goes.

    Parameters
    ----------
    items : item table (``id``, ``source``, ``kind``: the rows whose kind matches the
        embedder's are embedded; ``"vector"`` rows go to a precomputed embedder), or a
        plain list of image paths / texts (ids are then ``"0" .. "N-1"``).
    embedder : a backend from :mod:`workbench.embed`.
    cache_dir : folder for the cache (a project's ``cache_dir``); None keeps nothing.
    batch_size : items per forward pass; default 32 on CPU, 256 on a GPU (with
        ``engine="ray"``: 256 when the cluster has GPUs).
    num_workers : decode worker processes; default ``min(4, cores)`` for a GPU, 1 when the
        model runs on the CPU (see ``EMBED_CPU_WORKERS``), 0 for small jobs. With
        ``engine="ray"``: model actors; default one per GPU of the cluster, else one per
        CPU less those kept for decoding (see :func:`~.ray_engine.plan_run`).
    progress : show a tqdm bar (notebook or terminal) with items/s.
    chunk_size, chunk_seconds : new vectors are written to the cache every ``chunk_size``
        items or ``chunk_seconds`` seconds, whichever comes first: the most a kill loses.
    engine : ``"local"`` computes in this process; ``"ray"`` decodes in Ray tasks and runs
        the model in Ray actors (:mod:`~.ray_engine`; needs ``pip install
        'workbench[ray]'``, and an embedder from :func:`~.factory.make_embedder` or a
        :class:`~.vectors.CallableEmbedder`). Keys, cache and result are the same: either
        engine reuses what the other computed.
    address : with ``engine="ray"``, the cluster (``"host:port"``, ``"ray://host:port"``);
        None lets ``ray.init()`` choose (``RAY_ADDRESS``, a running local cluster, else a
        new local one). A process already connected to Ray keeps its connection.

    Returns
    -------
    :class:`EmbedResult`. Unreadable items are in ``skipped`` with the reason; the run
    does not stop for them. On KeyboardInterrupt the vectors computed so far are saved
    before the interrupt propagates; calling again resumes.
    """
    start = time.perf_counter()
    check_engine(engine)
    if engine == "ray":
        from .._ray import import_ray

        import_ray()  # at once, even when the cache holds everything: the same error always
    ids, sources = _select(items, embedder.kind)
    cap_torch_threads()
    if not embedder.cacheable:  # precomputed vectors: nothing to compute on any engine
        return _embed_uncached(ids, sources, embedder, batch_size=batch_size, start=start)
    opts = {"batch_size": batch_size, "num_workers": num_workers, "progress": progress,
            "chunk_size": chunk_size, "chunk_seconds": chunk_seconds, "start": start,
            "engine": engine, "address": address}
    if cache_dir is None:
        # Same code path, in a folder that is gone when the call returns.
        with tempfile.TemporaryDirectory(prefix="workbench-embed-") as tmp:
            return _embed_cached(ids, sources, embedder, Path(tmp), **opts)
    return _embed_cached(ids, sources, embedder, Path(cache_dir), **opts)


def _embed_cached(ids: list[str], sources: list[str], embedder: Embedder, cache_dir: Path, *,
                  batch_size: int | None, num_workers: int | None, progress: bool,
                  chunk_size: int, chunk_seconds: float, start: float, engine: str,
                  address: str | None) -> EmbedResult:
    skipped: dict[int, str] = {}
    keys: list[bytes | None]
    if embedder.kind == "image":
        file_keys = FileKeys(cache_dir / "embeddings" / "file-keys.sqlite")
        try:
            keys, problems = file_keys.keys(sources)
        finally:
            file_keys.close()
        skipped.update(problems)
    else:
        keys = [text_key(s) for s in sources]

    cache = EmbeddingCache(cache_dir, embedder.name, embedder.dim or None)
    if not embedder.dim and cache.dim:
        embedder.dim = cache.dim  # a callable backend learns its dim from the cache
    todo: dict[bytes, int] = {}  # key -> first position needing it (duplicates embed once)
    for pos, k in enumerate(keys):
        if k is not None and k not in cache and k not in todo:
            todo[k] = pos
    n_computed, device = 0, embedder.device
    if todo and engine == "ray":
        from .ray_engine import compute_on_ray

        n_computed, device = compute_on_ray(
            list(todo.items()), sources, embedder, cache, skipped, address=address,
            batch_size=batch_size, actors=num_workers, progress=progress,
            chunk_size=chunk_size, chunk_seconds=chunk_seconds,
        )
    elif todo:
        n_computed = _compute(
            list(todo.items()), sources, embedder, cache, skipped,
            batch_size=batch_size, num_workers=num_workers, progress=progress,
            chunk_size=chunk_size, chunk_seconds=chunk_seconds,
        )
    if todo:
        cache.compact(max_files=EMBED_CACHE_MAX_CHUNKS)

    ok_keys = {k for k in keys if k is not None and k in cache}
    # Identical content shares one vector, and one skip reason.
    reason_by_key = {keys[p]: r for p, r in skipped.items() if keys[p] is not None}
    for pos, k in enumerate(keys):
        if pos not in skipped and (k is None or k not in ok_keys):
            skipped[pos] = reason_by_key.get(k, "not embedded")
    rows = np.array([p for p in range(len(ids)) if p not in skipped], dtype=np.int64)
    vectors = cache.get([keys[p] for p in rows]) if len(rows) else \
        np.zeros((0, embedder.dim), dtype=np.float32)
    return EmbedResult(
        ids=[ids[p] for p in rows], rows=rows, vectors=vectors,
        skipped={ids[p]: skipped[p] for p in sorted(skipped)}, model=embedder.name,
        device=device, n_computed=n_computed, seconds=time.perf_counter() - start,
    )


def _select(items: Any, kind: str) -> tuple[list[str], list[str]]:
    if isinstance(items, pl.DataFrame) or hasattr(items, "columns"):
        table = validate_items(items)
        if kind == "vector":
            return table["id"].to_list(), table["id"].to_list()
        wanted = table.filter(pl.col("kind") == kind)
        if wanted.height == 0:
            kinds = sorted(set(table["kind"].to_list()))
            raise ItemError(
                f"this embedder takes {kind} items but the items are {', '.join(kinds)}; "
                "choose a matching backend (CLIP/DINOv2 for images, text for texts)"
            )
        if wanted.height != table.height:
            raise ItemError(
                f"{table.height - wanted.height} item(s) are not {kind} items; embed each "
                "kind with its own backend"
            )
        return wanted["id"].to_list(), wanted["source"].cast(pl.String).to_list()
    values = [str(s) for s in items]
    if not values:
        raise ItemError("there are no items to embed")
    return [str(i) for i in range(len(values))], values


def _batches(todo: list[tuple[bytes, int]], sources: Sequence[str], embedder: Embedder, *,
             batch_size: int, num_workers: int | None,
             skipped: dict[int, str]) -> Iterator[tuple[list[bytes], Any]]:
    """(keys, model input) per batch; unreadable images go to ``skipped`` on the way."""
    if embedder.kind != "image":
        for s in range(0, len(todo), batch_size):
            part = todo[s:s + batch_size]
            yield [k for k, _ in part], [sources[p] for _, p in part]
        return
    workers = default_num_workers(len(todo), embedder.device) if num_workers is None \
        else num_workers
    # A DataLoader batch is decoded by one worker alone. Workers decode micro-batches
    # instead, regrouped here, so that all of them fill the first model batch together
    # and the model waits batch_size / workers decodes at the start, not batch_size.
    micro = batch_size if workers <= 1 else -(-batch_size // workers)
    loader = make_image_loader(
        [sources[p] for _, p in todo], embedder.transform(), batch_size=micro,
        num_workers=workers, draft_size=embedder.draft_size,
        pin_memory=str(embedder.device).startswith("cuda"),
    )
    keys: list[bytes] = []
    parts: list[Any] = []
    for positions, inputs, bad in loader:
        for j, reason in bad.items():
            skipped[todo[j][1]] = reason
        if positions:
            keys += [todo[j][0] for j in positions]
            parts.append(inputs)
        while len(keys) >= batch_size:  # exactly batch_size per forward pass
            joined = _join(parts)
            yield keys[:batch_size], joined[:batch_size]
            keys, parts = keys[batch_size:], [joined[batch_size:]] if len(keys) > batch_size \
                else []
    if keys:
        yield keys, _join(parts)


def _join(parts: list[Any]) -> Any:
    """One model batch from micro-batches: a stacked tensor when shapes agree, else a list."""
    import torch

    if len(parts) == 1:
        return parts[0]
    if all(isinstance(p, torch.Tensor) for p in parts) and \
            len({tuple(p.shape[1:]) for p in parts}) == 1:
        return torch.cat(parts)
    return [x for p in parts for x in p]


def _compute(todo: list[tuple[bytes, int]], sources: Sequence[str], embedder: Embedder,
             cache: EmbeddingCache, skipped: dict[int, str], *, batch_size: int | None,
             num_workers: int | None, progress: bool, chunk_size: int,
             chunk_seconds: float) -> int:
    batch_size = batch_size or default_batch_size(embedder.device)
    bar = progress_bar(embedder, len(todo), progress, f"embedding on {embedder.device}")
    writer = ChunkWriter(cache, skipped, dict(todo), chunk_size=chunk_size,
                         chunk_seconds=chunk_seconds)
    n_done = 0
    try:
        for keys, inputs in _batches(todo, sources, embedder, batch_size=batch_size,
                                     num_workers=num_workers, skipped=skipped):
            vecs = np.asarray(embedder.embed_batch(inputs), dtype=np.float32)
            if vecs.shape[0] != len(keys):
                raise EmbedError(
                    f"{embedder.name} returned {vecs.shape[0]} vectors for {len(keys)} items"
                )
            writer.add(keys, vecs)
            n_done += len(keys)
            bar.update(len(keys))
        # Skipped images are never yielded; account for them so the bar ends full.
        bar.update(len(todo) - bar.n)
    finally:
        # Also on KeyboardInterrupt: what was computed is kept, the next call resumes.
        writer.flush()
        bar.close()
    return n_done


def progress_bar(embedder: Embedder, total: int, progress: bool, desc: str) -> Any:
    """The tqdm bar (notebook or terminal) of an embedding run of ``total`` items."""
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="img" if embedder.kind == "image" else "text",
                disable=not progress, smoothing=0.1, desc=desc)


class ChunkWriter:
    """New vectors on their way to the cache: written as one chunk every ``chunk_size``
    items or ``chunk_seconds`` seconds (at the next :meth:`add`), and by :meth:`flush`.

    Parameters
    ----------
    cache : where the chunks go.
    skipped : {position: reason}; a non-finite vector's item is recorded there instead.
    pos_of : {key: position} of the keys being computed.
    """

    def __init__(self, cache: EmbeddingCache, skipped: dict[int, str],
                 pos_of: dict[bytes, int], *, chunk_size: int, chunk_seconds: float) -> None:
        self.cache, self.skipped, self.pos_of = cache, skipped, pos_of
        self.chunk_size, self.chunk_seconds = chunk_size, chunk_seconds
        self._keys: list[bytes] = []
        self._vecs: list[np.ndarray] = []
        self._pending: set[bytes] = set()
        self._last = time.monotonic()

    def add(self, keys: Sequence[bytes], vecs: np.ndarray) -> None:
        """Take (B, D) vectors of ``keys``; keys the cache or this writer already hold are
        dropped, so no key is ever written twice."""
        finite = np.isfinite(vecs).all(axis=1)
        new = [i for i, k in enumerate(keys) if k not in self.cache and k not in self._pending]
        for i in new:
            if not finite[i]:
                self.skipped[self.pos_of[keys[i]]] = "the model produced NaN or infinite values"
        take = [i for i in new if finite[i]]
        self._keys += [keys[i] for i in take]
        self._pending.update(keys[i] for i in take)
        self._vecs.append(vecs[take])
        if len(self._keys) >= self.chunk_size or \
                time.monotonic() - self._last >= self.chunk_seconds:
            self.flush()

    def flush(self) -> None:
        """Write what is buffered as one chunk (nothing when empty)."""
        if self._keys:
            self.cache.add(self._keys, np.concatenate(self._vecs))
        self._keys, self._vecs, self._pending = [], [], set()
        self._last = time.monotonic()


def _embed_uncached(ids: list[str], sources: list[str], embedder: Embedder, *,
                    batch_size: int | None, start: float) -> EmbedResult:
    size = batch_size or 65536
    vecs = [embedder.embed_batch(sources[s:s + size]) for s in range(0, len(sources), size)]
    vectors = np.concatenate(vecs).astype(np.float32, copy=False)
    return EmbedResult(
        ids=list(ids), rows=np.arange(len(ids), dtype=np.int64), vectors=vectors,
        model=embedder.name, device=embedder.device, n_computed=0,
        seconds=time.perf_counter() - start,
    )

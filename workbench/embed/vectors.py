"""Bring your own vectors: precomputed arrays, or any function that embeds a batch."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._arrays import ItemError, as_vectors
from .base import Embedder, EmbedError, l2_normalize

__all__ = ["CallableEmbedder", "PrecomputedEmbedder"]


class PrecomputedEmbedder(Embedder):
    """Vectors computed elsewhere, looked up by item id (not cached again).

    Parameters
    ----------
    vectors : (N, D) array-like of finite numbers.
    ids : N item ids, row i belongs to ``ids[i]``; default ``"0" .. "N-1"``.
    normalize : scale rows to unit length (default True, like the model backends).
    name : identity shown to the user; default ``"precomputed"``.
    """

    kind = "vector"
    cacheable = False

    def __init__(self, vectors: Any, *, ids: Sequence[str] | None = None,
                 normalize: bool = True, name: str = "precomputed") -> None:
        arr = as_vectors(vectors)
        self.vectors = l2_normalize(arr) if normalize else arr
        ids = [str(i) for i in ids] if ids is not None else [str(i) for i in range(len(arr))]
        if len(ids) != len(arr):
            raise ItemError(f"{len(ids)} ids for {len(arr)} vectors; give one id per vector")
        self._row = {i: r for r, i in enumerate(ids)}
        if len(self._row) != len(ids):
            raise ItemError("duplicate ids among the precomputed vectors")
        self.name = name
        self.dim = int(arr.shape[1])

    def embed_batch(self, batch: Any) -> np.ndarray:
        """B item ids → their (B, D) rows; an unknown id raises ItemError naming it."""
        rows = []
        for item_id in batch:
            row = self._row.get(str(item_id))
            if row is None:
                raise ItemError(f"no precomputed vector for item {item_id!r}")
            rows.append(row)
        return self.vectors[np.asarray(rows, dtype=np.int64)]


class CallableEmbedder(Embedder):
    """Any function that turns a batch into vectors.

    Parameters
    ----------
    fn : callable
        ``fn(batch) -> (B, D)`` array-like. For ``kind="text"`` the batch is a list of
        strings; for ``kind="image"`` it is a list of whatever ``preprocess`` returns
        (by default RGB ``PIL.Image`` objects, decoded and mode-converted by the loader).
    name : str
        Stable identity of the function's vectors; it keys the cache, so change it when
        the function changes (a version suffix, for example ``"my-model-v2"``).
    kind : {"image", "text"}
    preprocess : callable, optional
        Applied to each decoded image in the loader's worker processes (must be
        picklable: a module-level function). Tensors of equal shape are stacked.
    draft_size : int, optional
        Smallest side ``fn`` needs, so large JPEGs decode at reduced size.
    normalize : L2-normalise rows (default True).
    """

    def __init__(self, fn: Callable[[Any], Any], *, name: str, kind: str = "image",
                 preprocess: Callable[[Any], Any] | None = None,
                 draft_size: int | None = None, normalize: bool = True) -> None:
        if kind not in ("image", "text"):
            raise ValueError(f"kind must be 'image' or 'text', not {kind!r}")
        if not name or not isinstance(name, str):
            raise ValueError("give the function a stable name= (it keys the cache)")
        self.fn = fn
        self.kind = kind
        self.name = f"callable:{name}"
        self._user_preprocess = preprocess
        self.draft_size = draft_size
        self.normalize = normalize
        self.dim = 0  # known after the first batch

    def preprocess(self, image: Any) -> Any:
        return image if self._user_preprocess is None else self._user_preprocess(image)

    def transform(self) -> Any:
        return self._user_preprocess or _identity

    def embed_batch(self, batch: Any) -> np.ndarray:
        out = np.asarray(self.fn(batch), dtype=np.float32)
        n = len(batch)
        if out.ndim != 2 or out.shape[0] != n:
            raise EmbedError(
                f"{self.name}: the function returned shape {out.shape} for a batch of {n}; "
                "it must return one vector per item, (B, D)"
            )
        if self.dim and out.shape[1] != self.dim:
            raise EmbedError(
                f"{self.name}: the function returned {out.shape[1]} dims after {self.dim}"
            )
        self.dim = int(out.shape[1])
        return l2_normalize(out) if self.normalize else out


def _identity(x: Any) -> Any:
    return x

"""Unit rows and content keys: what the index, the graph and the map all normalise and hash
vectors with, and the version of the on-disk form of their caches."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._arrays import as_vectors

__all__ = ["CACHE_VERSION", "normalize", "row_norms", "unit_rows", "vectors_key"]

#: Bumped when the on-disk form of graphs or indexes changes, so old caches are not reused.
#: 2: every cache entry carries checksums.
CACHE_VERSION = 2


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (float32 copy); zero rows stay zero."""
    x = np.array(vectors, dtype=np.float32, copy=True)
    norms = row_norms(x)[:, None]
    np.divide(x, norms, out=x, where=norms > 0)
    return x


def row_norms(x: np.ndarray) -> np.ndarray:
    """(N,) L2 norms of the rows of ``x`` (N, D)."""
    # einsum, unlike np.linalg.norm, makes no (N, D) temporary: a full extra copy at scale.
    return np.sqrt(np.einsum("ij,ij->i", x, x))


def unit_rows(vectors: Any, *, name: str = "vectors", dim: int | None = None) -> np.ndarray:
    """Validated (N, D) float32 unit rows; no copy when the input already is one."""
    if isinstance(vectors, np.ndarray) and vectors.ndim == 1:
        vectors = vectors[None, :]
    x = as_vectors(vectors, name=name)
    if dim is not None and x.shape[1] != dim:
        raise ValueError(
            f"{name} have {x.shape[1]} dimensions but the index holds {dim}-dimensional "
            "vectors; embed them with the same model as the collection"
        )
    norms = row_norms(x)
    # Already-normalised embeddings (the usual case) are used in place: a second copy of a
    # large collection would double peak memory.
    if np.all(np.abs(norms - 1.0) < 1e-4):
        return x
    return normalize(x)


def vectors_key(*arrays: np.ndarray, extra: Sequence[Any] = ()) -> str:
    """Content hash (hex) of arrays plus parameters, naming cache files.

    Any change of content, shape, dtype or parameter gives another key, so a stale cache
    is never reused.
    """
    h = hashlib.blake2b(digest_size=12)
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.shape}{a.dtype}".encode())
        h.update(memoryview(a).cast("B"))
    h.update(json.dumps([CACHE_VERSION, *map(str, extra)]).encode())
    return h.hexdigest()

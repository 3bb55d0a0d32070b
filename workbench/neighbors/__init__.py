"""FAISS index and the one kNN graph that everything shares.

Vectors are L2-normalised, so inner product is cosine similarity everywhere in this package.

* :class:`NeighborIndex`: a FAISS index for search ("more like this", text-to-image),
  exact (flat) for small collections and IVF beyond :data:`EXACT_INDEX_MAX_ITEMS`, on the
  GPU when FAISS sees one; saved with ``faiss.write_index`` and reloaded.
* :func:`build_knn_graph`: the kNN graph of every item (self excluded), exact for small
  collections, otherwise a cell-blocked IVF search whose recall is checked on a sample
  against exact neighbours; cached on disk by content.
* Caches (graph and index) carry SHA-256 checksums, checked before anything parses them; a
  damaged or half-written entry is rebuilt with a logged warning, never used or raised.
* :func:`update_knn_graph`: adds items to an index and its graph without a rebuild.
* :func:`near_duplicates`, :func:`outlier_scores`: read off the graph.

Modules: :mod:`.index` (the search index), :mod:`.graph` (the graph and its read-offs),
:mod:`.build` (building and updating the graph), :mod:`.vectors` (unit rows, cache keys),
``_blocks`` (block-wise exact top-k and the cell-blocked search), ``_faiss`` (GPU clone,
k-means cells), ``_torch`` (the exact graph and the cell search on a GPU through torch) and
``_ray`` (the cell search as Ray tasks).
"""

from __future__ import annotations

from ._faiss import gpu_available
from .build import build_knn_graph, update_knn_graph
from .graph import KnnGraph, near_duplicates, outlier_scores
from .index import NeighborIndex
from .vectors import normalize, vectors_key

__all__ = [
    "KnnGraph",
    "NeighborIndex",
    "build_knn_graph",
    "gpu_available",
    "near_duplicates",
    "normalize",
    "outlier_scores",
    "update_knn_graph",
    "vectors_key",
]

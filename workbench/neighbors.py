"""FAISS index and the one kNN graph that everything shares.

Vectors are L2-normalised, so inner product is cosine similarity everywhere in this module.

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
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._arrays import as_vectors, check_k
from ._config import (
    EXACT_INDEX_MAX_ITEMS,
    GRAPH_RECALL_SAMPLE,
    GRAPH_TARGET_RECALL,
    IVF_START_NPROBE,
    KNN_K,
    NEAR_DUPLICATE_SIMILARITY,
    NEIGHBOR_BLOCK_BYTES,
)
from ._files import (
    DamagedFile,
    atomic_write,
    file_sha256,
    load_cached,
    load_npy,
    read_meta,
    save_cached,
    save_npy,
    write_meta,
)

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

log = logging.getLogger(__name__)

#: Bumped when the on-disk form of graphs or indexes changes, so old caches are not reused.
#: 2: every cache entry carries checksums.
_CACHE_VERSION = 2
_INDEX_KINDS = ("flat", "ivf")


@dataclass(frozen=True)
class KnnGraph:
    """k nearest neighbours of every item, self excluded.

    Attributes
    ----------
    indices : (N, k) int64 neighbour positions, nearest first; -1 where fewer exist.
    similarities : (N, k) float32 cosine similarities, aligned with ``indices``.
    recall_estimate : share of the true k neighbours found, measured on a sample against
        exact search (1.0 for exact graphs; None when unknown).
    """

    indices: np.ndarray
    similarities: np.ndarray
    recall_estimate: float | None = field(default=None, compare=False)

    @property
    def n(self) -> int:
        return int(self.indices.shape[0])

    @property
    def k(self) -> int:
        return int(self.indices.shape[1])

    def to_csr(self, *, symmetric: bool = True):
        """Sparse (N, N) affinity matrix (``scipy.sparse.csr_matrix``, float32).

        Weights are the similarities clipped at 0; with ``symmetric`` the matrix is
        ``max(W, W.T)`` so that every edge goes both ways. Built straight from the arrays:
        each row of ``W`` is one row of ``indices``, so the row pointers are known up front.
        """
        import scipy.sparse as sp

        n, k = self.indices.shape
        cols = self.indices.reshape(-1)
        if cols.size and (cols.min() < -1 or cols.max() >= n):
            # scipy does not check column indices: an out-of-range one crashes the process.
            raise ValueError(
                f"the graph names neighbour positions outside -1..{n - 1}; rebuild it "
                "with build_knn_graph"
            )
        vals = np.maximum(self.similarities.reshape(-1), 0.0).astype(np.float32, copy=False)
        ok = cols >= 0
        if ok.all():
            indptr = np.arange(0, n * k + 1, k, dtype=np.int64)
        else:
            indptr = np.zeros(n + 1, np.int64)
            np.cumsum(ok.reshape(n, k).sum(axis=1), out=indptr[1:])
            cols, vals = cols[ok], vals[ok]
        index_dtype = np.int32 if n * k < np.iinfo(np.int32).max else np.int64
        w = sp.csr_matrix(
            (vals, cols.astype(index_dtype), indptr.astype(index_dtype)), shape=(n, n)
        )
        w.sum_duplicates()
        if symmetric:
            w = w.maximum(w.T.tocsr()).tocsr()
        return w

    def umap_knn(self) -> tuple[np.ndarray, np.ndarray]:
        """``(knn_indices, knn_dists)`` for umap-learn's ``precomputed_knn``.

        UMAP expects each point as its own first neighbour at distance 0, and cosine
        distances ``1 - similarity``.
        """
        n = self.n
        idx = np.hstack([np.arange(n, dtype=np.int64)[:, None], self.indices])
        dist = np.hstack(
            [np.zeros((n, 1), np.float32), np.clip(1.0 - self.similarities, 0.0, 2.0)]
        ).astype(np.float32)
        return idx, dist

    def save(
        self, folder: str | os.PathLike[str], name: str = "knn", *, durable: bool = True
    ) -> None:
        """Write ``{name}-indices.npy``, ``{name}-similarities.npy`` and ``{name}.json``
        into ``folder``.

        The JSON (shape, recall estimate, SHA-256 of both arrays, a checksum of itself) is
        written last: it marks a complete entry, and :meth:`load` trusts nothing it does not
        vouch for.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        sums = {
            part: save_npy(folder / f"{name}-{part}.npy", arr, durable=durable)
            for part, arr in (("indices", self.indices), ("similarities", self.similarities))
        }
        recall = None if self.recall_estimate is None else float(self.recall_estimate)
        write_meta(
            folder / f"{name}.json",
            {"version": _CACHE_VERSION, "n": self.n, "k": self.k, "recall_estimate": recall,
             "sha256": sums},
            durable=durable,
        )

    @classmethod
    def load(
        cls,
        folder: str | os.PathLike[str],
        name: str = "knn",
        *,
        n: int | None = None,
        k: int | None = None,
    ) -> KnnGraph:
        """Read a graph written by :meth:`save`, checking everything before use.

        Checks the checksums, dtypes (int64 / float32), shape (``(n, k)`` when given),
        neighbour positions (``-1 <= i < N``, never the item itself) and similarities
        (finite, within [-1, 1]). Raises ``ValueError`` naming the file when anything is
        off: a damaged graph would otherwise crash or silently mislead what reads it.
        """
        folder = Path(folder)
        meta_file = folder / f"{name}.json"
        try:
            meta = read_meta(meta_file)
            if meta.get("version") != _CACHE_VERSION:
                raise DamagedFile(f"{meta_file.name}: written by another version")
            rows, cols = int(meta["n"]), int(meta["k"])
            if (n is not None and rows != n) or (k is not None and cols != k):
                raise DamagedFile(f"{meta_file.name}: a graph of shape ({rows}, {cols})")
            sums = meta["sha256"]
            idx = load_npy(folder / f"{name}-indices.npy", sha256=sums["indices"],
                           dtype=np.int64, shape=(rows, cols))
            sims = load_npy(folder / f"{name}-similarities.npy", sha256=sums["similarities"],
                            dtype=np.float32, shape=(rows, cols))
            recall = meta.get("recall_estimate")
            if recall is not None and not 0.0 <= float(recall) <= 1.0:
                raise DamagedFile(f"{meta_file.name}: recall estimate {recall}")
            _check_graph_arrays(idx, sims)
        except (DamagedFile, KeyError, TypeError, ValueError) as e:
            raise ValueError(
                f"the kNN graph files {name}-* in {str(folder)!r} are damaged or incomplete "
                f"({e}); they are a cache, safe to delete: the graph is rebuilt from the vectors"
            ) from e
        return cls(idx, sims, recall_estimate=recall)


def _check_graph_arrays(idx: np.ndarray, sims: np.ndarray) -> None:
    """Raise DamagedFile unless ``idx`` / ``sims`` form a valid graph (see KnnGraph.load)."""
    n = idx.shape[0]
    if idx.size and (idx.min() < -1 or idx.max() >= n):
        raise DamagedFile(f"neighbour positions outside -1..{n - 1}")
    if (idx == np.arange(n)[:, None]).any():
        raise DamagedFile("an item listed as its own neighbour")
    if not np.isfinite(sims).all() or np.abs(sims).max(initial=0.0) > 1.0 + 1e-3:
        raise DamagedFile("similarities that are not cosines")


# -- helpers ---------------------------------------------------------------------------------


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (float32 copy); zero rows stay zero."""
    x = np.array(vectors, dtype=np.float32, copy=True)
    norms = _norms(x)[:, None]
    np.divide(x, norms, out=x, where=norms > 0)
    return x


def _norms(x: np.ndarray) -> np.ndarray:
    # einsum, unlike np.linalg.norm, makes no (N, D) temporary: a full extra copy at scale.
    return np.sqrt(np.einsum("ij,ij->i", x, x))


def _unit(vectors: Any, *, name: str = "vectors", dim: int | None = None) -> np.ndarray:
    """Validated (N, D) float32 unit rows; no copy when the input already is one."""
    if isinstance(vectors, np.ndarray) and vectors.ndim == 1:
        vectors = vectors[None, :]
    x = as_vectors(vectors, name=name)
    if dim is not None and x.shape[1] != dim:
        raise ValueError(
            f"{name} have {x.shape[1]} dimensions but the index holds {dim}-dimensional "
            "vectors; embed them with the same model as the collection"
        )
    norms = _norms(x)
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
    h.update(json.dumps([_CACHE_VERSION, *map(str, extra)]).encode())
    return h.hexdigest()


def gpu_available() -> bool:
    """True when the installed FAISS was built with CUDA and sees a GPU."""
    import faiss

    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


_GPU_RESOURCES = None


def _to_gpu(index):
    """GPU clone of a CPU index when FAISS sees a GPU, else the index itself."""
    global _GPU_RESOURCES
    if not gpu_available():
        return index
    import faiss

    if _GPU_RESOURCES is None:
        _GPU_RESOURCES = faiss.StandardGpuResources()
    return faiss.index_cpu_to_gpu(_GPU_RESOURCES, 0, index)


def _rows_per_block(width: int) -> int:
    return max(1, NEIGHBOR_BLOCK_BYTES // (4 * max(width, 1)))


def _topk_rows(sims: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` of each row of ``sims`` (Q, M) as (ids (Q, k) int64, sims (Q, k)).

    ``sims`` is used as scratch space (left with its original values).
    """
    m = sims.shape[1]
    if m > k:
        # Negated in place (callers pass a scratch block): one block-sized copy fewer.
        part = np.argpartition(np.negative(sims, out=sims), k - 1, axis=1)[:, :k]
        np.negative(sims, out=sims)
    else:
        part = np.broadcast_to(np.arange(m), sims.shape).copy()
    top = np.take_along_axis(sims, part, axis=1)
    order = np.argsort(-top, axis=1, kind="stable")
    part = np.take_along_axis(part, order, axis=1)
    top = np.take_along_axis(top, order, axis=1)
    return ids[part].astype(np.int64), top.astype(np.float32)


def _pad(idx: np.ndarray, sims: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    if idx.shape[1] >= k:
        return idx[:, :k], sims[:, :k]
    pad = k - idx.shape[1]
    n = idx.shape[0]
    return (
        np.hstack([idx, np.full((n, pad), -1, np.int64)]),
        np.hstack([sims, np.zeros((n, pad), np.float32)]),
    )


def _exact_neighbors(
    x: np.ndarray, rows: np.ndarray, k: int, *, base: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of ``x[rows]`` among ``base`` (default ``x``), self excluded, in blocks.

    Used for recall checks and for updating old rows, where a FAISS index would be an
    extra copy of the vectors.
    """
    base = x if base is None else base
    out_i = np.empty((rows.size, k), np.int64)
    out_s = np.empty((rows.size, k), np.float32)
    all_ids = np.arange(base.shape[0])
    step = _rows_per_block(base.shape[0])
    for start in range(0, rows.size, step):
        r = rows[start : start + step]
        s = x[r] @ base.T
        if base is x:
            s[np.arange(r.size), r] = -np.inf
        out_i[start : start + step], out_s[start : start + step] = _topk_rows(s, all_ids, k)
    return out_i, out_s


def _recall(approx: np.ndarray, exact: np.ndarray) -> float:
    hits = [np.intersect1d(a[a >= 0], e[e >= 0]).size for a, e in zip(approx, exact)]
    total = int((exact >= 0).sum())
    return float(sum(hits) / total) if total else 1.0


def _train_cells(x: np.ndarray, nlist: int, *, seed: int) -> np.ndarray:
    """Spherical k-means centroids (nlist, D) float32 on at most 64 points per cell."""
    import faiss

    km = faiss.Kmeans(
        x.shape[1], nlist, niter=10, spherical=True, seed=seed, max_points_per_centroid=64
    )
    km.train(x)
    return np.ascontiguousarray(km.centroids, dtype=np.float32)


def _default_nlist(n: int) -> int:
    # ~sqrt(N) cells balances the cost of choosing cells against the cost of scanning them.
    return int(max(16, min(n // 32, round(np.sqrt(n)))))


# -- index -----------------------------------------------------------------------------------


class NeighborIndex:
    """Cosine-similarity search over a collection (FAISS).

    Create one with :meth:`build` (chooses exact or IVF by size) or ``NeighborIndex(dim)``
    (an empty exact index to :meth:`add` to). Positions returned by searches are row
    positions in the order vectors were added.

    Attributes
    ----------
    dim : int, vector dimension.
    kind : ``"flat"`` (exact inner product) or ``"ivf"`` (inverted file, approximate).
    nprobe : cells scanned per query (``"ivf"`` only), chosen at build time to reach
        :data:`GRAPH_TARGET_RECALL` on a sample.
    """

    def __init__(self, dim: int, *, _index=None, kind: str = "flat", nprobe: int = 0):
        import faiss

        if int(dim) < 1:
            raise ValueError(f"dim must be a positive number of dimensions, got {dim!r}")
        self.dim = int(dim)
        self.kind = kind
        self._cpu = _index if _index is not None else faiss.IndexFlatIP(self.dim)
        self.nprobe = int(nprobe)
        if kind == "ivf":
            self._cpu.nprobe = self.nprobe
        self._search_index = None  # GPU clone, made lazily and dropped on add
        self.recall_estimate: float | None = 1.0 if kind == "flat" else None

    # construction

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        *,
        kind: str = "auto",
        exact_max_items: int = EXACT_INDEX_MAX_ITEMS,
        target_recall: float = GRAPH_TARGET_RECALL,
        seed: int = 0,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> NeighborIndex:
        """Index ``vectors`` (N, D); rows are normalised to unit length first.

        Parameters
        ----------
        vectors : (N, D) float array, finite.
        kind : ``"auto"`` (exact up to ``exact_max_items`` items, IVF beyond), ``"flat"``
            or ``"ivf"``.
        target_recall : for IVF, the share of true neighbours (k=15) that a search must
            find on a sample; ``nprobe`` is doubled until it does.
        seed : k-means seed for IVF.
        cache_dir : when given, the index is saved there keyed by content and parameters,
            and loaded instead of rebuilt next time.
        """
        import faiss

        x = _unit(vectors)
        n, d = x.shape
        if kind == "auto":
            kind = "flat" if n <= exact_max_items else "ivf"
        if kind not in _INDEX_KINDS:
            raise ValueError(f"kind must be 'auto', 'flat' or 'ivf', got {kind!r}")
        path = None
        if cache_dir is not None:
            key = vectors_key(x, extra=("index", kind, target_recall, seed))
            path = Path(cache_dir) / f"index-{key}.faiss"
            cached = load_cached(
                "neighbour index", (path, path.with_name(path.name + ".json")),
                lambda: cls.load(path, n=n, dim=d),
            )
            if cached is not None:
                return cached
        if kind == "flat":
            index = cls(d)
            index._cpu.add(x)
        else:
            nlist = _default_nlist(n)
            centroids = _train_cells(x, nlist, seed=seed)
            quantizer = faiss.IndexFlatIP(d)
            quantizer.add(centroids)
            ivf = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
            ivf.is_trained = True
            ivf.add(x)
            ivf.make_direct_map()  # so items can be read back for "more like this"
            index = cls(d, _index=ivf, kind="ivf", nprobe=min(IVF_START_NPROBE, nlist))
            index._tune_nprobe(x, target_recall=target_recall, seed=seed)
        if path is not None:
            save_cached("neighbour index", path, lambda: index.save(path, durable=False))
        return index

    def _tune_nprobe(self, x: np.ndarray, *, target_recall: float, seed: int) -> None:
        n = x.shape[0]
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(n, size=min(GRAPH_RECALL_SAMPLE, n), replace=False))
        k = min(KNN_K, n - 1)
        exact, _ = _exact_neighbors(x, rows, k)
        nlist = self._cpu.nlist
        while True:
            self._cpu.nprobe = self.nprobe
            self._search_index = None
            approx, _ = self.search(x[rows], k, exclude=rows[:, None])
            r = _recall(approx, exact)
            if r >= target_recall or self.nprobe >= nlist:
                break
            self.nprobe = min(nlist, self.nprobe * 2)
        self.recall_estimate = r
        log.info("IVF index: nlist=%d nprobe=%d recall@%d=%.3f", nlist, self.nprobe, k, r)

    # state

    @property
    def n(self) -> int:
        """Items in the index."""
        return int(self._cpu.ntotal)

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        extra = f", nprobe={self.nprobe}" if self.kind == "ivf" else ""
        return f"NeighborIndex(n={self.n}, dim={self.dim}, kind={self.kind!r}{extra})"

    def vectors(self, items: Sequence[int] | np.ndarray) -> np.ndarray:
        """Stored (normalised) vectors of ``items`` (positions), (len(items), D) float32."""
        items = self._check_items(items)
        return np.asarray(self._cpu.reconstruct_batch(items), dtype=np.float32)

    # mutation

    def add(self, vectors: np.ndarray) -> np.ndarray:
        """Append ``vectors`` (M, D); returns their positions, (M,) int64.

        For IVF the cells stay those learnt at build time: fine while new items resemble
        the old; rebuild when the collection has changed in kind.
        """
        x = _unit(vectors, name="new vectors", dim=self.dim)
        start = self.n
        self._cpu.add(x)
        self._search_index = None
        return np.arange(start, self.n, dtype=np.int64)

    # search

    def search(
        self, queries: np.ndarray, k: int = KNN_K, *, exclude: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most similar items to each query.

        Parameters
        ----------
        queries : (Q, D) or (D,) float array; normalised here.
        k : neighbours per query (at most the index size).
        exclude : optional (Q, E) int array of positions to leave out of each query's
            answer (for example the query items themselves); -1 entries are ignored.

        Returns
        -------
        indices : (Q, k) int64 positions, most similar first; -1 where fewer exist.
        similarities : (Q, k) float32 cosine similarities.
        """
        k = check_k(k)
        if self.n == 0:
            raise ValueError("the index is empty: add vectors (NeighborIndex.add) before searching")
        q = _unit(queries, name="query vectors", dim=self.dim)
        n_ex = 0 if exclude is None else np.asarray(exclude).reshape(q.shape[0], -1).shape[1]
        k_ask = min(self.n, k + n_ex)
        if self._search_index is None:
            self._search_index = _to_gpu(self._cpu)
        sims, idx = self._search_index.search(q, k_ask)
        idx = idx.astype(np.int64)
        if exclude is not None:
            ex = np.asarray(exclude, dtype=np.int64).reshape(q.shape[0], -1)
            drop = (idx[:, :, None] == ex[:, None, :]).any(axis=2) | (idx < 0)
            sims = np.where(drop, -np.inf, sims)
            order = np.argsort(-sims, axis=1, kind="stable")
            idx = np.take_along_axis(np.where(drop, -1, idx), order, axis=1)
            sims = np.take_along_axis(sims, order, axis=1)
            sims[~np.isfinite(sims)] = 0.0
        return _pad(idx, sims.astype(np.float32), k)

    def search_vectors(self, query_vectors: np.ndarray, k: int = KNN_K):
        """Text-to-image (or any cross-modal) search: items nearest to ``query_vectors``.

        ``query_vectors`` (Q, D) or (D,) come from the other tower of the same model (for
        CLIP, the text tower's embeddings of the prompts). Returns ``(indices, similarities)``
        as :meth:`search`.
        """
        return self.search(query_vectors, k)

    def more_like_this(
        self, items: int | Sequence[int] | np.ndarray, k: int = KNN_K
    ) -> tuple[np.ndarray, np.ndarray]:
        """Items most similar to one item, or to a group of items, the items themselves left out.

        A group is represented by the mean of its normalised vectors.

        Returns
        -------
        indices : (k,) int64 positions, most similar first (-1 where fewer exist).
        similarities : (k,) float32 cosine similarities to the (mean) query.
        """
        items = self._check_items(np.atleast_1d(np.asarray(items)))
        q = self.vectors(items).mean(axis=0, keepdims=True)
        if not np.linalg.norm(q) > 0:
            raise ValueError("these items' vectors cancel out (mean is zero); pick fewer items")
        idx, sims = self.search(q, k, exclude=items[None, :])
        return idx[0], sims[0]

    def _check_items(self, items) -> np.ndarray:
        arr = np.asarray(items)
        if arr.size == 0:
            raise ValueError("no items given; pass one or more item positions")
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"items must be integer positions, got dtype {arr.dtype}")
        arr = arr.astype(np.int64).ravel()
        bad = arr[(arr < 0) | (arr >= self.n)]
        if bad.size:
            raise ValueError(
                f"item position {int(bad[0])} is outside the index (0..{self.n - 1})"
            )
        return arr

    # persistence

    def save(self, path: str | os.PathLike[str], *, durable: bool = True) -> None:
        """Write the index to ``path`` (FAISS format) and its metadata, with the file's
        SHA-256, to ``path + '.json'`` (written last: it marks a complete save)."""
        import faiss

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: faiss.write_index(self._cpu, str(tmp)), durable=durable)
        meta = {
            "version": _CACHE_VERSION,
            "kind": self.kind,
            "dim": self.dim,
            "n": self.n,
            "nprobe": self.nprobe,
            "recall_estimate": self.recall_estimate,
            "sha256": file_sha256(path),
        }
        write_meta(path.with_name(path.name + ".json"), meta, durable=durable)

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, n: int | None = None, dim: int | None = None
    ) -> NeighborIndex:
        """Read an index written by :meth:`save`.

        The file's checksum is verified before FAISS reads it (FAISS trusts its input: a
        damaged file can crash the process or answer with foreign neighbours), then its
        size and dimension (``n``, ``dim`` when given). Hashing reads the file once more:
        about 1-2 s per GB. Raises ``ValueError`` naming the
        file when anything is off, ``FileNotFoundError`` when there is no saved index.
        """
        import faiss

        path = Path(path)
        meta_path = path.with_name(path.name + ".json")
        if not path.exists() or not meta_path.exists():
            raise FileNotFoundError(
                f"no saved index at {path} (or its .json beside it); build one with "
                "NeighborIndex.build(vectors)"
            )
        try:
            meta = read_meta(meta_path)
            if file_sha256(path) != meta.get("sha256"):
                raise DamagedFile(f"{path.name}: checksum does not match")
            kind, d, count = meta["kind"], int(meta["dim"]), int(meta["n"])
            if meta.get("version") != _CACHE_VERSION or kind not in _INDEX_KINDS:
                raise DamagedFile(f"{meta_path.name}: another version or kind")
            index = faiss.read_index(str(path))
            if index.ntotal != count or index.d != d:
                raise DamagedFile(f"{path.name}: {index.ntotal} x {index.d} vectors")
            if (n is not None and count != n) or (dim is not None and d != dim):
                raise DamagedFile(f"{path.name}: holds {count} x {d}, expected {n} x {dim}")
            nprobe = int(meta["nprobe"])
            if kind == "ivf" and not 1 <= nprobe <= faiss.extract_index_ivf(index).nlist:
                raise DamagedFile(f"{meta_path.name}: nprobe {nprobe}")
        except (DamagedFile, KeyError, TypeError, ValueError, RuntimeError) as e:
            raise ValueError(
                f"saved index {path} does not match its metadata or this version ({e}); "
                "it is a cache, safe to delete: delete both files and rebuild"
            ) from e
        out = cls(d, _index=index, kind=kind, nprobe=nprobe)
        out.recall_estimate = meta.get("recall_estimate")
        return out


# -- graph -----------------------------------------------------------------------------------


def build_knn_graph(
    vectors: np.ndarray,
    *,
    k: int = KNN_K,
    method: str = "auto",
    exact_max_items: int = EXACT_INDEX_MAX_ITEMS,
    target_recall: float = GRAPH_TARGET_RECALL,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
) -> KnnGraph:
    """Cosine kNN graph of ``vectors`` (N, D), self matches removed.

    Parameters
    ----------
    vectors : (N, D) float array, finite, N >= 2.
    k : neighbours per item; rows are padded with -1 when N - 1 < k.
    method : ``"auto"`` (exact up to ``exact_max_items`` items or on a GPU, IVF beyond),
        ``"exact"`` or ``"ivf"``. IVF groups items into ~sqrt(N) k-means cells and compares
        each cell's items with every item of the ``nprobe`` cells nearest to it, one matrix
        product per cell; ``nprobe`` doubles until recall on a sample of
        :data:`GRAPH_RECALL_SAMPLE` items reaches ``target_recall``.
    seed : k-means and sampling seed.
    cache_dir : when given, the graph is stored there as ``.npy`` files keyed by a hash of
        the vectors and the parameters, and read back instead of rebuilt.

    Memory stays bounded: no similarity block larger than :data:`NEIGHBOR_BLOCK_BYTES`.
    """
    k = check_k(k)
    x = _unit(vectors)
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"a neighbour graph needs at least 2 items, got {n}")
    if method == "auto":
        method = "exact" if n <= exact_max_items or gpu_available() else "ivf"
    if method not in ("exact", "ivf"):
        raise ValueError(f"method must be 'auto', 'exact' or 'ivf', got {method!r}")
    name = None
    if cache_dir is not None:
        folder = Path(cache_dir)
        name = "knn-" + vectors_key(x, extra=(k, method, target_recall, seed))
        cached = load_cached(
            "kNN graph",
            [folder / f"{name}{part}" for part in ("-indices.npy", "-similarities.npy", ".json")],
            lambda: KnnGraph.load(folder, name, n=n, k=k),
        )
        if cached is not None:
            return cached
    k_eff = min(k, n - 1)
    if method == "exact":
        idx, sims = _exact_graph(x, k_eff)
        recall = 1.0
    else:
        idx, sims, recall = _ivf_graph(x, k_eff, target_recall=target_recall, seed=seed)
    idx, sims = _pad(idx, sims, k)
    graph = KnnGraph(indices=idx, similarities=sims, recall_estimate=recall)
    if name is not None:
        save_cached("kNN graph", Path(cache_dir) / f"{name}-indices.npy",
                     lambda: graph.save(cache_dir, name, durable=False))
    return graph


def _exact_graph(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    import faiss

    n = x.shape[0]
    index = _to_gpu(faiss.IndexFlatIP(x.shape[1]))
    index.add(x)
    idx = np.empty((n, k), np.int64)
    sims = np.empty((n, k), np.float32)
    step = _rows_per_block(n)
    for start in range(0, n, step):
        rows = np.arange(start, min(n, start + step))
        s, i = index.search(x[rows], k + 1)
        idx[rows], sims[rows] = _drop_self(i.astype(np.int64), s, rows, k)
    return idx, sims


def _drop_self(idx, sims, rows, k):
    # Drop each point itself (usually column 0, but ties with duplicates can reorder).
    self_mask = idx == rows[:, None]
    no_self = ~self_mask.any(axis=1)
    self_mask[no_self, -1] = True
    keep = ~self_mask
    return idx[keep].reshape(-1, k), sims[keep].reshape(-1, k).astype(np.float32)


def _ivf_graph(
    x: np.ndarray, k: int, *, target_recall: float, seed: int
) -> tuple[np.ndarray, np.ndarray, float]:
    import faiss

    n, d = x.shape
    nlist = _default_nlist(n)
    centroids = _train_cells(x, nlist, seed=seed)
    quantizer = faiss.IndexFlatIP(d)
    quantizer.add(centroids)
    _, assign = quantizer.search(x, 1)
    assign = assign.ravel()
    order = np.argsort(assign, kind="stable")
    starts = np.r_[0, np.cumsum(np.bincount(assign, minlength=nlist))]
    _, near = quantizer.search(centroids, nlist)  # every cell's cells, nearest first

    # Choose nprobe on a sample before the one full pass. An item's answer is the exact
    # top-k among its candidates, so a true neighbour is found exactly when its cell is
    # among the nprobe cells scanned for the item's cell: the sample's recall at every
    # nprobe follows from the cells' ranks, with no search. The smallest nprobe whose
    # recall clears the target by two standard errors is used.
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, size=min(GRAPH_RECALL_SAMPLE, n), replace=False))
    exact, _ = _exact_neighbors(x, sample, k)
    rank = np.empty((nlist, nlist), np.int64)
    rank[np.arange(nlist)[:, None], near] = np.arange(nlist)[None, :]
    valid = exact >= 0
    ranks = rank[assign[sample][:, None], assign[np.where(valid, exact, 0)]][valid]
    found = np.bincount(ranks, minlength=nlist).cumsum() / max(ranks.size, 1)
    margin = 2 * np.sqrt(np.maximum(found * (1 - found), 1e-4) / max(ranks.size, 1))
    ok = np.flatnonzero(found - margin >= target_recall)
    nprobe = int(ok[0]) + 1 if ok.size else nlist
    recall = float(found[nprobe - 1])
    log.info("kNN graph: nlist=%d nprobe=%d sample recall@%d=%.4f", nlist, nprobe, k, recall)
    idx, sims = _cell_blocked_search(x, k, near[:, :nprobe], order, starts)
    return idx, sims, recall


def _cell_blocked_search(x, k, near, order, starts):
    """Each cell's items against all items of the cells listed in ``near`` (nlist, nprobe).

    One dense matrix product per cell instead of one scan per query: the graph's queries
    are the collection itself, so items of a cell share their candidate cells.
    """
    n = x.shape[0]
    idx = np.full((n, k), -1, np.int64)
    sims = np.zeros((n, k), np.float32)
    where = np.full(n, -1, np.int64)  # column of each item in the current candidate list
    for c in range(near.shape[0]):
        members = order[starts[c] : starts[c + 1]]
        if members.size == 0:
            continue
        cand = np.concatenate([order[starts[j] : starts[j + 1]] for j in near[c] if j >= 0])
        if cand.size <= k:  # tiny neighbourhood of cells: compare with everything
            cand = np.arange(n)
        where[cand] = np.arange(cand.size)
        base = x[cand]
        step = _rows_per_block(cand.size)
        for s0 in range(0, members.size, step):
            q = members[s0 : s0 + step]
            s = x[q] @ base.T
            col = where[q]
            s[np.flatnonzero(col >= 0), col[col >= 0]] = -np.inf  # each item itself
            idx[q], sims[q] = _topk_rows(s, cand, k)
        where[cand] = -1
    return idx, sims


def update_knn_graph(
    graph: KnnGraph, index: NeighborIndex, new_vectors: np.ndarray
) -> KnnGraph:
    """Add ``new_vectors`` (M, D) to ``index`` and return the graph over all N + M items.

    ``index`` must hold exactly the graph's N items. New rows come from searching the
    updated index; an old row changes only where a new item beats its current k-th
    neighbour (found exactly, old items against the M new ones). With an exact index the
    result equals :func:`build_knn_graph` on all vectors.
    """
    if index.n != graph.n:
        raise ValueError(
            f"the index holds {index.n} items but the graph {graph.n}; pass the index the "
            "graph was built from"
        )
    new = _unit(new_vectors, name="new vectors", dim=index.dim)
    k, n_old, m = graph.k, graph.n, new.shape[0]
    positions = index.add(new)

    # New rows: search the whole updated index, the item itself left out.
    new_idx, new_sims = index.search(new, k, exclude=positions[:, None])

    # Old rows: exact top-min(k, M) among the new items, merged with the current row.
    k_new = min(k, m)
    cand_idx = np.empty((n_old, k_new), np.int64)
    cand_sims = np.empty((n_old, k_new), np.float32)
    step = _rows_per_block(m)
    for start in range(0, n_old, step):
        stop = min(n_old, start + step)
        s = index._cpu.reconstruct_n(start, stop - start) @ new.T
        cand_idx[start:stop], cand_sims[start:stop] = _topk_rows(s, positions, k_new)
    old_sims = np.where(graph.indices >= 0, graph.similarities, -np.inf)
    merged_i = np.hstack([graph.indices, cand_idx])
    merged_s = np.hstack([old_sims, cand_sims])
    order = np.argsort(-merged_s, axis=1, kind="stable")[:, :k]
    old_idx = np.take_along_axis(merged_i, order, axis=1)
    old_s = np.take_along_axis(merged_s, order, axis=1)
    old_idx[~np.isfinite(old_s)] = -1
    old_s[~np.isfinite(old_s)] = 0.0
    return KnnGraph(
        indices=np.vstack([old_idx, new_idx]),
        similarities=np.vstack([old_s.astype(np.float32), new_sims]),
        recall_estimate=graph.recall_estimate,
    )


# -- read off the graph ----------------------------------------------------------------------


def near_duplicates(
    graph: KnnGraph, *, threshold: float = NEAR_DUPLICATE_SIMILARITY
) -> list[np.ndarray]:
    """Groups of near-duplicate items: connected components of graph edges with cosine
    similarity >= ``threshold``.

    Returns
    -------
    list of (G,) int64 position arrays, G >= 2, largest group first. Only pairs within
    each other's k neighbours are found, which suffices unless a group has more than k
    members (then it is still found, through chains).
    """
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    if not -1.0 <= threshold <= 1.0:
        raise ValueError(f"threshold is a cosine similarity in [-1, 1], got {threshold}")
    n, k = graph.indices.shape
    rows = np.repeat(np.arange(n), k)
    cols = graph.indices.ravel()
    ok = (cols >= 0) & (graph.similarities.ravel() >= threshold)
    adj = sp.csr_matrix((np.ones(ok.sum(), np.int8), (rows[ok], cols[ok])), shape=(n, n))
    _, comp = connected_components(adj, directed=True, connection="weak")
    sizes = np.bincount(comp)
    groups = [np.flatnonzero(comp == c) for c in np.flatnonzero(sizes >= 2)]
    groups.sort(key=lambda g: (-g.size, g[0]))
    return [g.astype(np.int64) for g in groups]


def outlier_scores(graph: KnnGraph) -> np.ndarray:
    """(N,) float32: 1 - cosine similarity to each item's k-th (last found) neighbour.

    Higher is more isolated; items with no neighbour at all score 2 (the maximum).
    """
    valid = graph.indices >= 0
    counts = valid.sum(axis=1)
    last = np.clip(counts - 1, 0, None)
    sim = graph.similarities[np.arange(graph.n), last]
    scores = (1.0 - sim).astype(np.float32)
    scores[counts == 0] = 2.0
    return scores

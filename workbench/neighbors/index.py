"""The search index (:class:`NeighborIndex`): FAISS cosine search for "more like this" and
text-to-image, exact (flat) for small collections and IVF beyond
:data:`EXACT_INDEX_MAX_ITEMS`, on the GPU when FAISS sees one; saved with checksums and
reloaded.

Two choices differ from the graph's (:mod:`workbench.neighbors.build`) and are kept so:

* ``kind="auto"`` picks IVF above :data:`EXACT_INDEX_MAX_ITEMS` items also where FAISS sees a
  GPU, where the graph goes exact at any size (one batch of GPU matrix products); the index
  answers query after query and is saved and reused, and an exact one on a GPU would change
  its answers and its cache key there.
* ``nprobe`` is tuned by measuring FAISS's own IVF search on a sample, doubling from
  :data:`IVF_START_NPROBE`: a query scans the cells nearest to itself, not those nearest to
  its item's cell, so the graph's rank-based choice does not describe this search.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._arrays import check_k
from .._config import (
    EXACT_INDEX_MAX_ITEMS,
    GRAPH_RECALL_SAMPLE,
    GRAPH_TARGET_RECALL,
    IVF_START_NPROBE,
    KNN_K,
)
from .._files import (
    DamagedFile,
    atomic_write,
    file_sha256,
    load_cached,
    read_meta,
    save_cached,
    write_meta,
)
from ._blocks import exact_neighbors, pad_columns, recall
from ._faiss import default_nlist, to_gpu, train_cells
from .vectors import CACHE_VERSION, unit_rows, vectors_key

__all__ = ["NeighborIndex"]

log = logging.getLogger(__name__)

_INDEX_KINDS = ("flat", "ivf")


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

        x = unit_rows(vectors)
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
            nlist = default_nlist(n)
            centroids = train_cells(x, nlist, seed=seed)
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
        exact, _ = exact_neighbors(x, rows, k)
        nlist = self._cpu.nlist
        while True:
            self._cpu.nprobe = self.nprobe
            self._search_index = None
            approx, _ = self.search(x[rows], k, exclude=rows[:, None])
            r = recall(approx, exact)
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

    def vectors_range(self, start: int, stop: int) -> np.ndarray:
        """Stored (normalised) vectors of positions ``start`` to ``stop - 1`` in one read,
        (stop - start, D) float32 (no checks: for callers that know the index's size)."""
        return self._cpu.reconstruct_n(start, stop - start)

    # mutation

    def add(self, vectors: np.ndarray) -> np.ndarray:
        """Append ``vectors`` (M, D); returns their positions, (M,) int64.

        For IVF the cells stay those learnt at build time: fine while new items resemble
        the old; rebuild when the collection has changed in kind.
        """
        x = unit_rows(vectors, name="new vectors", dim=self.dim)
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
        q = unit_rows(queries, name="query vectors", dim=self.dim)
        n_ex = 0 if exclude is None else np.asarray(exclude).reshape(q.shape[0], -1).shape[1]
        k_ask = min(self.n, k + n_ex)
        if self._search_index is None:
            self._search_index = to_gpu(self._cpu)
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
        return pad_columns(idx, sims.astype(np.float32), k)

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
            "version": CACHE_VERSION,
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
            if meta.get("version") != CACHE_VERSION or kind not in _INDEX_KINDS:
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


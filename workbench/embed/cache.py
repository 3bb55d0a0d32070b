"""On-disk embedding cache: chunks of (content key, vector), one folder per model.

Layout under ``cache_dir/embeddings/``::

    <model-slug>-<hash of model name>/
        model.json           {"model": name, "dim": D}: checked on open
        chunk-<uuid>.npz     keys (n, 16) uint8, vectors (n, D) float32, model name
    file-keys.sqlite         stat memo: (path, size, mtime, ctime, inode) -> content key

Items are keyed by content (a BLAKE2b digest of the file's bytes or of the text), so
renamed or copied files reuse their vectors and a changed file gets new ones. Each chunk
is written to a temporary file, flushed to disk, then renamed over its final name
(``os.replace``), so a process killed at any instant leaves either the whole chunk or
nothing: a resumed run re-embeds only what no finished chunk holds. Every chunk also
carries the model name, and a chunk of another model is refused, never served.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sqlite3
import stat
import time
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._config import SQLITE_BUSY_TIMEOUT_MS
from .._files import atomic_write
from ..items import not_regular_file

__all__ = ["KEY_BYTES", "EmbeddingCache", "FileKeys", "text_key"]

#: Digest length: 128 bits makes an accidental collision practically impossible.
KEY_BYTES = 16
_FORMAT = 1
#: Age (seconds) after which a leftover temporary chunk file is deleted on open.
_ABANDONED_AFTER_S = 600

log = logging.getLogger(__name__)


def text_key(text: str) -> bytes:
    """Content key of a text item."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=KEY_BYTES).digest()


class FileKeys:
    """Content keys of files: the digest of their bytes, memoised by file status.

    Correctness first: the key is always a hash of the bytes. The memo only saves
    re-reading a file whose path, size, modification time, change time (ctime, which the
    kernel updates on every write and which ``touch``/``utime`` cannot set back) and inode
    are all unchanged since it was hashed: the same rule git uses for its index.
    """

    def __init__(self, db_path: str | os.PathLike[str]) -> None:
        self.path = Path(db_path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = self._connect()
        except sqlite3.DatabaseError as e:
            self._start_afresh(e, connected=False)

    def _start_afresh(self, error: Exception, *, connected: bool = True) -> None:
        # Only a memo: a damaged one is dropped and rebuilt by hashing the files again.
        log.warning("the file-key memo %s is damaged (%s); starting it afresh (it is a "
                    "cache, safe to delete)", self.path, error)
        if connected:
            self._db.close()
        for f in (self.path, *(self.path.with_name(self.path.name + s)
                               for s in ("-wal", "-shm"))):
            f.unlink(missing_ok=True)
        self._db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS file_keys (path TEXT PRIMARY KEY, size INTEGER, "
                "mtime_ns INTEGER, ctime_ns INTEGER, inode INTEGER, key BLOB)"
            )
            db.execute("SELECT count(*) FROM file_keys").fetchone()
            db.commit()
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def keys(self, paths: Sequence[str]) -> tuple[list[bytes | None], dict[int, str]]:
        """Content keys of ``paths``: (keys with None where unreadable, {position: reason})."""
        try:
            memo = {
                row[0]: row[1:]
                for row in self._db.execute(
                    "SELECT path, size, mtime_ns, ctime_ns, inode, key FROM file_keys"
                )
            } if paths else {}
        except sqlite3.DatabaseError as e:
            self._start_afresh(e)
            memo = {}
        out: list[bytes | None] = []
        problems: dict[int, str] = {}
        fresh = []
        for pos, path in enumerate(paths):
            try:
                st = os.stat(path)
            except FileNotFoundError:
                out.append(None)
                problems[pos] = "file not found"
                continue
            except OSError as e:
                out.append(None)
                problems[pos] = f"cannot read the file ({e})"
                continue
            if not stat.S_ISREG(st.st_mode):  # a FIFO would block, /dev/zero never end
                out.append(None)
                problems[pos] = not_regular_file(st.st_mode)
                continue
            status = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
            known = memo.get(path)
            if (known is not None and tuple(known[:4]) == status
                    and isinstance(known[4], bytes) and len(known[4]) == KEY_BYTES):
                out.append(known[4])
                continue
            try:
                key = _file_digest(path)
            except OSError as e:
                out.append(None)
                problems[pos] = f"cannot read the file ({e})"
                continue
            out.append(key)
            fresh.append((path, *status, key))
        if fresh:
            try:
                with self._db:
                    self._db.executemany(
                        "INSERT OR REPLACE INTO file_keys VALUES (?, ?, ?, ?, ?, ?)", fresh
                    )
            except sqlite3.DatabaseError as e:
                self._start_afresh(e)
        return out, problems

    def close(self) -> None:
        self._db.close()


def _file_digest(path: str) -> bytes:
    h = hashlib.blake2b(digest_size=KEY_BYTES)
    # Non-blocking open, then a check of what was opened: a path swapped for a FIFO or a
    # device after the stat must not hang or spin the hashing.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with open(fd, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(not_regular_file(mode))
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.digest()


class EmbeddingCache:
    """Vectors of one model, by content key; safe against kills and concurrent writers.

    Parameters
    ----------
    cache_dir : the project's cache folder; vectors go under ``embeddings/``.
    model : the embedder's ``name``.
    dim : vector length; a folder holding another length is an error.
    """

    def __init__(self, cache_dir: str | os.PathLike[str], model: str, dim: int | None) -> None:
        self.model = model
        self.dim = dim
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", model)[:60]
        digest = hashlib.blake2b(model.encode(), digest_size=8).hexdigest()
        self.folder = Path(cache_dir) / "embeddings" / f"{slug}-{digest}"
        self._keys: dict[bytes, tuple[int, int]] = {}
        self._chunks: list[np.ndarray] = []
        self._files: list[Path] = []
        if self.folder.exists():
            self._check_meta()
            self._remove_abandoned_temporaries()
            self._load()

    def _remove_abandoned_temporaries(self) -> None:
        # A chunk is written in well under a second; a temporary file this old belongs to
        # a writer that was killed, never to one still running.
        cutoff = time.time() - _ABANDONED_AFTER_S
        for tmp in self.folder.glob(".*.tmp"):
            try:
                if tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
            except OSError:  # another process removed it first
                pass

    # -- reading -------------------------------------------------------------------------

    def _check_meta(self) -> None:
        meta_file = self.folder / "model.json"
        if not meta_file.exists():
            return
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
            dim = int(meta["dim"])
            if dim < 1:
                raise ValueError(f"dim {dim}")
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
            # The folder is named by a hash of the model, and every chunk names its model
            # again: this file only records the dim, which the chunks also carry.
            log.warning("the embedding cache file %s is damaged (%s); rewriting it (the "
                        "cache is safe to delete)", meta_file, e)
            meta_file.unlink(missing_ok=True)
            return
        if meta.get("model") != self.model:
            raise RuntimeError(
                f"cache folder {str(self.folder)!r} belongs to model {meta.get('model')!r}, "
                f"not {self.model!r}; delete the folder"
            )
        if self.dim is None:
            self.dim = dim

    def _load(self) -> None:
        for f in sorted(self.folder.glob("chunk-*.npz")):
            try:
                with np.load(f, allow_pickle=False) as z:
                    model = str(z["model"])
                    keys = np.asarray(z["keys"])
                    vectors = np.asarray(z["vectors"])
            except Exception as e:  # a damaged file (disk full, copied half): re-embed its items
                warnings.warn(f"ignoring damaged embedding cache file {f.name}: {e}",
                              stacklevel=3)
                continue
            if model != self.model:
                warnings.warn(f"ignoring cache file {f.name}: it holds vectors of {model!r}",
                              stacklevel=3)
                continue
            if self.dim is None:
                self.dim = int(vectors.shape[1])
            if (keys.ndim != 2 or keys.shape[1] != KEY_BYTES or vectors.ndim != 2
                    or vectors.shape != (len(keys), self.dim) or vectors.dtype != np.float32):
                warnings.warn(f"ignoring cache file {f.name}: unexpected shapes", stacklevel=3)
                continue
            self._add_chunk(f, keys, vectors)

    def _add_chunk(self, f: Path, keys: np.ndarray, vectors: np.ndarray) -> None:
        c = len(self._chunks)
        self._chunks.append(vectors)
        self._files.append(f)
        for r, k in enumerate(keys):
            self._keys.setdefault(k.tobytes(), (c, r))

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: bytes) -> bool:
        return key in self._keys

    def get(self, keys: Sequence[bytes]) -> np.ndarray:
        """(len(keys), D) float32 vectors of keys that are all present."""
        out = np.empty((len(keys), self.dim or 0), dtype=np.float32)
        for i, k in enumerate(keys):
            c, r = self._keys[k]
            out[i] = self._chunks[c][r]
        return out

    @property
    def n_files(self) -> int:
        return len(self._files)

    # -- writing -------------------------------------------------------------------------

    def add(self, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        """Store one chunk durably (temp file, fsync, rename); then it is served."""
        if not len(keys):
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self.dim is None:
            self.dim = int(vectors.shape[1])
        if vectors.shape != (len(keys), self.dim):
            raise ValueError(f"{len(keys)} keys for vectors of shape {vectors.shape}")
        key_arr = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), KEY_BYTES)
        self._write_meta()
        target = self.folder / f"chunk-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.npz"
        _atomic_savez(target, keys=key_arr, vectors=vectors, model=np.array(self.model))
        self._add_chunk(target, key_arr, vectors)

    def _write_meta(self) -> None:
        meta_file = self.folder / "model.json"
        if meta_file.exists():
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"model": self.model, "dim": self.dim, "format": _FORMAT})
        atomic_write(meta_file, lambda tmp: tmp.write_text(text, encoding="utf-8"),
                     durable=False)

    def compact(self, *, max_files: int) -> bool:
        """Merge all chunks into one when there are more than ``max_files``.

        The merged file is written (atomically) before the old ones are removed; a kill in
        between leaves duplicates, which loading tolerates. Returns True when it merged.
        """
        if len(self._files) <= max_files:
            return False
        keys = list(self._keys)
        vectors = self.get(keys)
        old = list(self._files)
        self._keys, self._chunks, self._files = {}, [], []
        self.add(keys, vectors)
        for f in old:
            f.unlink(missing_ok=True)
        return True


def _atomic_savez(target: Path, **arrays: np.ndarray) -> None:
    # Durable: a chunk is what a resumed run trusts instead of re-embedding its items.
    atomic_write(target, lambda tmp: _savez(tmp, arrays), durable=True)


def _savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as f:  # a file object, so numpy does not append ".npz"
        np.savez(f, **arrays)

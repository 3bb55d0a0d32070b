"""Writing files whole or not at all, and reading caches back only when they check out.

* :func:`atomic_write`: write to a hidden temporary file beside the target, then rename it
  over the target, so a process killed at any instant leaves the old file or the new one,
  never half of one.
* :func:`save_npy` / :func:`load_npy`: arrays, with a SHA-256 of the file checked before
  numpy parses a byte of it (a damaged header can make numpy allocate or misread).
* :func:`write_meta` / :func:`read_meta`: the small JSON written beside a cache entry. It
  carries the checksums of the entry's files and a checksum of itself, and is written
  last, so its presence marks a complete entry.

Caches use these with ``durable=False``: a cache lost to a power cut is detected by its
checksum and rebuilt, so it need not pay for ``fsync``. Project files use ``durable=True``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DamagedFile",
    "atomic_write",
    "file_sha256",
    "filesystem_type",
    "fsync_dir",
    "load_cached",
    "load_npy",
    "on_network_filesystem",
    "read_meta",
    "save_cached",
    "save_npy",
    "write_meta",
]

log = logging.getLogger(__name__)

_META_CHECK = "meta_sha256"


class DamagedFile(ValueError):
    """A file that is missing, truncated or altered since it was written."""


def atomic_write(
    target: str | os.PathLike[str], write: Callable[[Path], Any], *, durable: bool = True
) -> None:
    """Call ``write(tmp_path)``, then rename the temporary file over ``target``.

    The temporary name is hidden and unique per writer, so two processes writing the same
    target never mix their bytes: the last rename wins whole. With ``durable`` the file and
    the rename are flushed to disk (``fsync``) before returning.
    """
    target = Path(target)
    tmp = target.with_name(f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        if durable:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    if durable:
        fsync_dir(target.parent)


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Flush a folder's entries (a rename in it) to disk; a no-op where unsupported."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows cannot open folders; its rename is durable enough
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_npy(path: str | os.PathLike[str], array: np.ndarray, *, durable: bool = True) -> str:
    """Write ``array`` as ``.npy`` at ``path`` atomically; returns the file's SHA-256 (hex)."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object, so numpy does not append ".npy"
            np.save(f, np.ascontiguousarray(array), allow_pickle=False)

    atomic_write(path, write, durable=durable)
    return file_sha256(path)


def load_npy(
    path: str | os.PathLike[str],
    *,
    sha256: str,
    dtype: Any,
    shape: tuple[int | None, ...],
) -> np.ndarray:
    """Read an array written by :func:`save_npy`, or raise :class:`DamagedFile`.

    The file's checksum is compared first; then dtype and shape (``None`` in ``shape``
    accepts any length on that axis).
    """
    path = Path(path)
    if not isinstance(sha256, str) or file_sha256(path) != sha256:
        raise DamagedFile(f"{path.name}: checksum does not match")
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as e:  # numpy raises several types for malformed files
        raise DamagedFile(f"{path.name}: {e}") from e
    want = np.dtype(dtype)
    if arr.dtype != want:
        raise DamagedFile(f"{path.name}: dtype {arr.dtype}, expected {want}")
    if arr.ndim != len(shape) or any(s is not None and a != s for a, s in zip(arr.shape, shape)):
        raise DamagedFile(f"{path.name}: shape {arr.shape}, expected {shape}")
    return arr


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 (hex) of a file's bytes; raises :class:`DamagedFile` if it cannot be read."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError as e:
        raise DamagedFile(f"{Path(path).name}: {e}") from e
    return h.hexdigest()


def _meta_digest(meta: dict[str, Any]) -> str:
    text = json.dumps(meta, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def write_meta(path: str | os.PathLike[str], meta: dict[str, Any], *, durable: bool = True) -> None:
    """Write ``meta`` (JSON-able dict) with a checksum of itself, atomically."""
    payload = {**meta, _META_CHECK: _meta_digest(meta)}
    text = json.dumps(payload, indent=1)
    atomic_write(path, lambda p: Path(p).write_text(text, encoding="utf-8"), durable=durable)


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The dict written by :func:`write_meta`, or raise :class:`DamagedFile`."""
    path = Path(path)
    try:
        payload = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError) as e:
        raise DamagedFile(f"{path.name}: {e}") from e
    if not isinstance(payload, dict) or _META_CHECK not in payload:
        raise DamagedFile(f"{path.name}: no checksum")
    check = payload.pop(_META_CHECK)
    if check != _meta_digest(payload):
        raise DamagedFile(f"{path.name}: checksum does not match")
    return payload


# -- caches ----------------------------------------------------------------------------------


def load_cached(
    what: str, files: Sequence[Path], load: Callable[[], Any]
) -> Any:
    """``load()`` when the cache entry made of ``files`` exists and checks out, else None.

    A damaged or half-written entry is never an error: it is logged with
    ``logging.warning`` (naming the file, saying the cache is safe to delete) and None is
    returned, so that the caller rebuilds it, overwriting it. ``what`` names the cache in
    the message ("kNN graph").
    """
    present = [f for f in files if f.exists()]
    if not present:
        return None
    try:
        if len(present) < len(files):
            missing = next(f for f in files if not f.exists())
            raise DamagedFile(f"{missing.name} is missing")
        return load()
    except Exception as e:  # any damage at all: rebuild rather than fail the session
        log.warning(
            "the %s cache %s is damaged or incomplete (%s); rebuilding it (files under a "
            "project's cache/ folder are safe to delete)", what, files[0], e,
        )
        return None


def save_cached(what: str, path: Path, save: Callable[[], Any]) -> None:
    """``save()``, logging instead of raising when the cache cannot be written: a
    read-only project or a full disk costs a rebuild next time, nothing more."""
    try:
        save()
    except OSError as e:
        log.warning("could not save the %s cache %s (%s); it will be rebuilt next time",
                    what, path, e)


#: File systems where SQLite's locks (and so its crash safety between two writers) are
#: unreliable: network and FUSE-remote mounts.
NETWORK_FILESYSTEMS = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "afs", "9p", "ceph", "glusterfs", "lustre",
    "gpfs", "beegfs", "fuse.sshfs", "fuse.s3fs", "fuse.gcsfuse", "fuse.rclone", "davfs",
})


def filesystem_type(path: str | os.PathLike[str], mounts: str = "/proc/mounts") -> str | None:
    """The type of the file system holding ``path`` (the longest matching mount point in
    ``mounts``), or None where that cannot be read (not Linux)."""
    try:
        lines = Path(mounts).read_text().splitlines()
    except OSError:
        return None
    target = str(Path(path).resolve())
    best, kind = "", None
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind


def on_network_filesystem(path: str | os.PathLike[str], mounts: str = "/proc/mounts") -> bool:
    """True when ``path`` lies on a network file system (:data:`NETWORK_FILESYSTEMS`)."""
    return filesystem_type(path, mounts) in NETWORK_FILESYSTEMS

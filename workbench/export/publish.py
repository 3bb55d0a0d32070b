"""Writing an export whole or not at all: everything is written under a temporary name
unique to the writer (pid + random) beside the target (:func:`write_temp`), then renamed
into place (:func:`publish_file`, :func:`publish_dir`); a failed export leaves nothing.

These do not go through :func:`workbench._files.atomic_write`: a table and its sidecar are
both written before either is renamed, a file is published without replacing one that
appeared meanwhile (a hard link) unless overwriting, and a folder is renamed whole.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

from .options import ExportError

__all__ = ["fsync_file", "publish_dir", "publish_file", "remove", "temp_name", "write_temp"]


def temp_name(target: Path, kind: str = "tmp") -> Path:
    """A name beside ``target`` that no other writer (process or thread) uses."""
    return target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.{kind}")


def publish_file(tmp: Path, target: Path, *, overwrite: bool) -> None:
    """Move ``tmp`` to ``target``; without ``overwrite`` never replace a file that appeared
    meanwhile (a hard link fails on an existing name, atomically)."""
    if overwrite:
        os.replace(tmp, target)
        return
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise ExportError(
            f"{str(target)!r} appeared while exporting; pass overwrite=True to replace it"
        ) from None
    except OSError:  # no hard links on this file system
        if target.exists():
            raise ExportError(f"{str(target)!r} already exists") from None
        os.replace(tmp, target)
        return
    tmp.unlink()


def publish_dir(tmp: Path, target: Path) -> None:
    """Rename the finished folder ``tmp`` to ``target``, replacing an empty folder or an
    earlier export (checked by :func:`~workbench.export.target.check_target`)."""
    old = None
    if target.exists():
        if any(target.iterdir()):
            old = temp_name(target, "old")
            os.rename(target, old)
        else:
            target.rmdir()
    try:
        os.rename(tmp, target)
    except BaseException:
        if old is not None:
            os.rename(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_temp(target: Path, write: Callable[[Path], None], *, folder: bool) -> Path:
    """Run ``write(tmp)`` on a fresh temporary path beside ``target`` and return it; on
    any failure remove whatever was written there and re-raise."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(target)
    try:
        if folder:
            tmp.mkdir()
        write(tmp)
    except BaseException:
        remove(tmp)
        raise
    return tmp


def remove(path: Path) -> None:
    """Delete ``path`` (a folder with its contents, a file or a link), if it is there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def fsync_file(path: Path) -> None:
    """Flush the file ``path`` to disk."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())

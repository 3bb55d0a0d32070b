"""Small previews of image items, made once and cached in the project folder.

A thumbnail is WebP (or PNG) bytes, at most ``THUMBNAIL_SIZE`` pixels on its longest
side, stored under ``<project>/cache/thumbnails/``; the file name is a hash of the item id,
its source path and the size, so a changed source or size makes a new one. The widgets
send these bytes to the browser on demand as binary buffers.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ._config import THUMBNAIL_FORMAT, THUMBNAIL_QUALITY, THUMBNAIL_SIZE
from ._files import atomic_write
from ._images import open_image

__all__ = ["MIME_TYPES", "ThumbnailCache", "ThumbnailError", "make_thumbnail"]

MIME_TYPES = {"webp": "image/webp", "png": "image/png", "jpeg": "image/jpeg"}


class ThumbnailError(ValueError):
    """An image that cannot be made into a thumbnail; the message names the file."""


def make_thumbnail(
    source: str | os.PathLike[str],
    *,
    size: int = THUMBNAIL_SIZE,
    format: str = THUMBNAIL_FORMAT,
    quality: int = THUMBNAIL_QUALITY,
) -> bytes:
    """Encode a preview of the image at ``source``.

    Parameters
    ----------
    source : path of an image file Pillow can read.
    size : longest side in pixels (default ``THUMBNAIL_SIZE``); smaller images are kept
        at their size, never upscaled.
    format : ``"webp"`` (default), ``"png"`` or ``"jpeg"``.
    quality : lossy quality 1-100 for WebP and JPEG.

    Returns
    -------
    bytes of the encoded image.
    """
    from PIL import Image

    fmt = format.lower()
    if fmt not in MIME_TYPES:
        raise ValueError(f"thumbnail format must be one of {sorted(MIME_TYPES)}, not {format!r}")
    if size < 1:
        raise ValueError(f"thumbnail size must be at least 1 pixel, not {size}")
    try:
        with open_image(source) as im:
            im.draft("RGB", (size, size))  # JPEG: decode at reduced scale, much faster
            im = im.convert("RGBA" if im.mode in ("RGBA", "LA", "P") else "RGB")
            im.thumbnail((size, size), Image.Resampling.LANCZOS)
            if fmt == "jpeg" and im.mode == "RGBA":
                im = im.convert("RGB")
            from io import BytesIO

            out = BytesIO()
            kw = {"quality": quality} if fmt in ("webp", "jpeg") else {"optimize": True}
            im.save(out, format=fmt.upper(), **kw)
            return out.getvalue()
    except FileNotFoundError as e:
        raise ThumbnailError(f"image file {str(source)!r} no longer exists") from e
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ThumbnailError(f"cannot make a thumbnail of {str(source)!r}: {e}") from e


class ThumbnailCache:
    """Thumbnails of a project's images, made on first request and kept on disk.

    Parameters
    ----------
    cache_dir : the project's cache folder (``Project.cache_dir``); thumbnails go in its
        ``thumbnails/`` sub-folder.
    size, format, quality : as in :func:`make_thumbnail`.
    """

    def __init__(
        self,
        cache_dir: str | os.PathLike[str],
        *,
        size: int = THUMBNAIL_SIZE,
        format: str = THUMBNAIL_FORMAT,
        quality: int = THUMBNAIL_QUALITY,
    ) -> None:
        self.folder = Path(cache_dir) / "thumbnails"
        self.size = int(size)
        self.format = format.lower()
        if self.format not in MIME_TYPES:
            raise ValueError(
                f"thumbnail format must be one of {sorted(MIME_TYPES)}, not {format!r}"
            )
        self.quality = int(quality)

    @property
    def mime(self) -> str:
        """MIME type of the cached bytes, e.g. ``"image/webp"``."""
        return MIME_TYPES[self.format]

    def path_for(self, item_id: str, source: str) -> Path:
        """Where the thumbnail of this item is (or will be) stored."""
        key = f"{item_id}\0{source}\0{self.size}\0{self.quality}".encode()
        digest = hashlib.sha1(key, usedforsecurity=False).hexdigest()
        return self.folder / digest[:2] / f"{digest}.{self.format}"

    def get(self, item_id: str, source: str) -> bytes:
        """The thumbnail bytes of one image item, made and stored on first use."""
        path = self.path_for(item_id, source)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            pass
        data = make_thumbnail(source, size=self.size, format=self.format, quality=self.quality)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Atomic: a concurrent reader sees the whole file or none, never half of it.
        atomic_write(path, lambda tmp: tmp.write_bytes(data), durable=False)
        return data

"""Opening image files: the one place that does it, for the loaders, the embedder and thumbnails.

* :func:`open_image`: ``PIL.Image.open`` with the decompression-bomb limit
  (``MAX_IMAGE_PIXELS``) set first; :func:`set_pixel_limit` sets it alone (DataLoader
  worker processes started by spawn call it, as they do not inherit it).
* :func:`image_problem`: the "is this image readable" check of the item loaders (why a
  file cannot be used, or None), and :func:`open_rgb`: the decode for the model, raising
  :class:`UnreadableImage` with the same reasons (:func:`why_unreadable`).
* :func:`to_rgb`: any Pillow mode as 8-bit RGB (palette, alpha over white, 16-bit, CMYK).
"""

from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ._config import MAX_IMAGE_PIXELS

__all__ = [
    "UnreadableImage",
    "image_problem",
    "not_regular_file",
    "open_image",
    "open_rgb",
    "set_pixel_limit",
    "to_rgb",
    "why_unreadable",
]


class UnreadableImage(ValueError):
    """An image file that cannot be decoded; the message is the reason shown to users."""


def set_pixel_limit() -> None:
    """Set Pillow's decompression-bomb limit to ``MAX_IMAGE_PIXELS``.

    Pillow keeps it as a global of the process: worker processes started by spawn need it
    set again, which :func:`open_image` does before every open.
    """
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS


def open_image(source: str | os.PathLike[str] | BinaryIO) -> Any:
    """``PIL.Image.open(source)`` (lazy: nothing decoded yet), with the pixel limit set."""
    from PIL import Image

    set_pixel_limit()
    return Image.open(source)


def why_unreadable(error: BaseException, path: str | os.PathLike[str]) -> str:
    """The reason shown to users for an error raised while opening or decoding ``path``."""
    from PIL import Image

    if isinstance(error, FileNotFoundError):
        return "file not found"
    if isinstance(error, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return f"refused as a decompression bomb ({error})"
    if isinstance(error, Image.UnidentifiedImageError):
        if _is_empty(path):
            return "empty (zero-byte) file"
        return "not an image Pillow can read"
    return f"unreadable or truncated image ({error})"


def image_problem(path: str) -> str | None:
    """Why the image at ``path`` cannot be used, or None when it decodes fully."""
    from PIL import Image

    p = Path(path)
    try:
        st = p.stat()
        if not stat.S_ISREG(st.st_mode):
            return not_regular_file(st.st_mode)
        if st.st_size == 0:
            return "empty (zero-byte) file"
        with open_image(p) as im:
            im.load()  # full decode: catches truncation, not just a bad header
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        return why_unreadable(e, p)
    return None


def not_regular_file(mode: int) -> str:
    """The reason shown for a path that is not a regular file (``st_mode`` after links).

    Images are read only from regular files: reading a FIFO blocks until some other process
    writes to it, and a device such as ``/dev/zero`` never ends.
    """
    what = (
        "a folder" if stat.S_ISDIR(mode)
        else "a FIFO (named pipe)" if stat.S_ISFIFO(mode)
        else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
        else "a socket" if stat.S_ISSOCK(mode)
        else "not a regular file"
    )
    return f"not a regular file ({what}); images are read only from regular files"


def open_rgb(path: str, *, draft_size: int | None = None) -> Any:
    """Decode ``path`` into an RGB ``PIL.Image``.

    Parameters
    ----------
    draft_size : for JPEGs, decode at the smallest DCT scale (1/2, 1/4, 1/8) that keeps
        both sides at least this many pixels; None decodes at full size.

    Raises
    ------
    UnreadableImage : missing, empty, truncated, not an image, or a decompression bomb.
    """
    from PIL import Image, ImageOps

    try:
        with warnings.catch_warnings():
            # Pillow only warns between 1x and 2x the limit; a bomb is a bomb either way.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with open(path, "rb") as f:
                im = open_image(f)
                if draft_size and im.format == "JPEG":
                    im.draft("RGB", (draft_size, draft_size))
                im.load()  # full decode now: a truncated file fails here, not later
                im = ImageOps.exif_transpose(im)
                return to_rgb(im)
    except (OSError, SyntaxError, ValueError, EOFError,
            Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise UnreadableImage(why_unreadable(e, path)) from None


def to_rgb(im: Any) -> Any:
    """Any Pillow mode as 8-bit RGB: alpha over white, 16/32-bit and float rescaled."""
    from PIL import Image

    mode = im.mode
    if mode == "RGB":
        return im
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        # 16-bit data (the common case: scientific and medical PNG/TIFF) maps 0..65535 to
        # 0..255; float data in 0..1 maps to 0..255; anything else is clipped.
        if mode.startswith("I;16") or (mode == "I" and arr.max(initial=0) > 255):
            arr = arr / 257.0
        elif mode == "F" and arr.max(initial=0) <= 1.0:
            arr = arr * 255.0
        gray = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), mode="L")
        return gray.convert("RGB")
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        mode = im.mode
    if mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


def _is_empty(path: str | os.PathLike[str]) -> bool:
    try:
        return os.path.getsize(path) == 0
    except OSError:
        return False

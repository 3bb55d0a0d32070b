"""Decoding images for the model in DataLoader worker processes, skipping broken files.

Each worker opens a file, decodes large JPEGs at a reduced scale (Pillow ``draft``, which
skips most of the inverse DCT work), applies the EXIF orientation, converts any mode to
RGB (alpha composited on white, 16-bit scaled, CMYK converted), and runs the embedder's
transform. A file that cannot be used becomes a reason string instead of a crash.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._config import MAX_IMAGE_PIXELS

__all__ = ["ImageDataset", "UnreadableImage", "make_image_loader", "open_rgb", "to_rgb"]


class UnreadableImage(ValueError):
    """An image file that cannot be decoded; the message is the reason shown to users."""


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

    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS  # workers started by spawn need it too
    try:
        with warnings.catch_warnings():
            # Pillow only warns between 1x and 2x the limit; a bomb is a bomb either way.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with open(path, "rb") as f:
                im = Image.open(f)
                if draft_size and im.format == "JPEG":
                    im.draft("RGB", (draft_size, draft_size))
                im.load()  # full decode now: a truncated file fails here, not later
                im = ImageOps.exif_transpose(im)
                return to_rgb(im)
    except FileNotFoundError:
        raise UnreadableImage("file not found") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise UnreadableImage(f"refused as a decompression bomb ({e})") from None
    except Image.UnidentifiedImageError:
        if _is_empty(path):
            raise UnreadableImage("empty (zero-byte) file") from None
        raise UnreadableImage("not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise UnreadableImage(f"unreadable or truncated image ({e})") from None


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


def _is_empty(path: str) -> bool:
    import os

    try:
        return os.path.getsize(path) == 0
    except OSError:
        return False


class ImageDataset:
    """Map-style dataset: position ``i`` → ``(i, model input or None, reason or None)``."""

    def __init__(self, paths: Sequence[str], transform: Callable[[Any], Any], *,
                 draft_size: int | None = None) -> None:
        self.paths = list(paths)
        self.transform = transform
        self.draft_size = draft_size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[int, Any, str | None]:
        try:
            im = open_rgb(self.paths[i], draft_size=self.draft_size)
        except UnreadableImage as e:
            return i, None, str(e)
        try:
            return i, self.transform(im), None
        except Exception as e:  # a transform failing on one odd image must not stop the run
            return i, None, f"preprocessing failed ({type(e).__name__}: {e})"


def collate(batch: list[tuple[int, Any, str | None]]) -> tuple[list[int], Any, dict[int, str]]:
    """Keep the decodable items: (positions, stacked inputs or list, {position: reason})."""
    import torch

    ok = [(i, x) for i, x, reason in batch if reason is None]
    skipped = {i: reason for i, _, reason in batch if reason is not None}
    positions = [i for i, _ in ok]
    inputs = [x for _, x in ok]
    if inputs and all(isinstance(x, torch.Tensor) for x in inputs) and \
            len({tuple(x.shape) for x in inputs}) == 1:
        return positions, torch.stack(inputs), skipped
    return positions, inputs, skipped


def _worker_init(_: int) -> None:
    import torch
    from PIL import Image

    # One thread per worker: the cores belong to the forward pass, the workers only decode.
    torch.set_num_threads(1)
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS


def make_image_loader(paths: Sequence[str], transform: Callable[[Any], Any], *,
                      batch_size: int, num_workers: int, draft_size: int | None = None,
                      pin_memory: bool = False) -> Any:
    """A DataLoader over ``paths`` in order, yielding :func:`collate` batches.

    Parameters
    ----------
    num_workers : decode processes (0 decodes in this process).
    pin_memory : page-locked batches, for faster copies to a CUDA device.
    """
    from torch.utils.data import DataLoader

    dataset = ImageDataset(paths, transform, draft_size=draft_size)
    return DataLoader(
        dataset,  # type: ignore[arg-type]
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=collate,
        worker_init_fn=_worker_init if num_workers else None,
        persistent_workers=False,
        pin_memory=pin_memory,
        prefetch_factor=2 if num_workers else None,
    )

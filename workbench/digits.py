"""The demo set: scikit-learn's handwritten digits, as PNG files and as pixel vectors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl

from ._config import DEMO_DIGITS_SIZE
from ._files import atomic_write

__all__ = ["demo_digits", "digits_pixels"]


def demo_digits(folder: str | os.PathLike[str]) -> pl.DataFrame:
    """scikit-learn's 1,797 handwritten digits, written as real PNG files under ``folder``.

    The images are upscaled to ``DEMO_DIGITS_SIZE`` pixels so thumbnails are legible; the
    true digit is kept in the ``truth`` column (not as a label) so a demo can score itself.
    Idempotent: existing files are reused.
    """
    from PIL import Image
    from sklearn.datasets import load_digits

    root = Path(folder)
    digits = load_digits()
    ids, sources = [], []
    for i, img in enumerate(digits.images):
        rel = f"digits/{i:04d}.png"
        path = root / rel
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            pixels = (255 - img * (255 / 16)).astype(np.uint8)  # dark ink on white
            im = Image.fromarray(pixels, mode="L").resize(
                (DEMO_DIGITS_SIZE, DEMO_DIGITS_SIZE), Image.Resampling.BICUBIC
            )
            # No half-written PNG if interrupted.
            atomic_write(path, lambda tmp, im=im: im.save(tmp, format="PNG"), durable=False)
        ids.append(rel)
        sources.append(str(path.resolve()))
    return pl.DataFrame(
        {
            "id": ids,
            "source": sources,
            "kind": ["image"] * len(ids),
            "truth": [str(int(y)) for y in digits.target],
        }
    )


def digits_pixels() -> np.ndarray:
    """The demo digits as (1797, 64) float32 pixel vectors, for offline embeddings."""
    from sklearn.datasets import load_digits

    return load_digits().data.astype(np.float32)

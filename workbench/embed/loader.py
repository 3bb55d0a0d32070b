"""Decoding images for the model in DataLoader worker processes, skipping broken files.

Each worker opens a file, decodes large JPEGs at a reduced scale (Pillow ``draft``, which
skips most of the inverse DCT work), applies the EXIF orientation, converts any mode to
RGB (alpha composited on white, 16-bit scaled, CMYK converted), and runs the embedder's
transform. A file that cannot be used becomes a reason string instead of a crash.
The decoding itself (:func:`open_rgb`, :func:`to_rgb`) lives in :mod:`workbench._images`
and is re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .._images import UnreadableImage, open_rgb, set_pixel_limit, to_rgb

__all__ = ["ImageDataset", "UnreadableImage", "make_image_loader", "open_rgb", "to_rgb"]


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

    # One thread per worker: the cores belong to the forward pass, the workers only decode.
    torch.set_num_threads(1)
    set_pixel_limit()  # workers started by spawn do not inherit it


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

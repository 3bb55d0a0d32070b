"""The small interface every embedding backend implements, and helpers they share.

An :class:`Embedder` turns a batch of items into L2-normalised float32 vectors. Image
embedders also say how one decoded image becomes a model input (:meth:`Embedder.preprocess`,
run in DataLoader worker processes); text embedders take the strings themselves.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "EmbedError",
    "Embedder",
    "autocast",
    "digest_files",
    "digest_state_dict",
    "folder_digest",
    "l2_normalize",
]


class EmbedError(RuntimeError):
    """A model that cannot be loaded or used; the message says which and what to do."""


class Embedder:
    """Base class of the embedding backends.

    Attributes
    ----------
    name : str
        Stable identity of the vectors this embedder produces: backend, model, weights
        (tag or hash of the checkpoint file) and input size. It keys the on-disk cache, so
        two embedders with the same ``name`` must produce the same vectors (up to float
        rounding across devices and precisions) and different weights must never share it.
    kind : {"image", "text", "vector"}
        What :meth:`embed_batch` takes: preprocessed image tensors, strings, or item ids.
    dim : int
        Length of each vector.
    device : str
        Where the forward pass runs (``"cuda"``, ``"mps"`` or ``"cpu"``); shown to users.
    cacheable : bool
        False for backends whose vectors are already stored (precomputed vectors).
    draft_size : int or None
        Image embedders: the smallest side the model needs, so JPEGs can be decoded at a
        reduced scale (Pillow ``draft``) no smaller than this. None decodes at full size.
    """

    name: str
    kind: str
    dim: int
    device: str = "cpu"
    cacheable: bool = True
    draft_size: int | None = None

    def embed_batch(self, batch: Any) -> np.ndarray:
        """Embed one batch.

        Parameters
        ----------
        batch : for ``kind="image"``, what the loader stacked from :meth:`preprocess`
            outputs (a (B, 3, H, W) float tensor for the built-in models, a list otherwise);
            for ``kind="text"``, a list of B strings; for ``kind="vector"``, B item ids.

        Returns
        -------
        (B, dim) float32 array, each row L2-normalised (unless the backend documents
        otherwise, as user-supplied vectors may).
        """
        raise NotImplementedError

    def preprocess(self, image: Any) -> Any:
        """Turn one decoded RGB ``PIL.Image`` into a model input (image embedders).

        Runs in DataLoader worker processes, so it must be picklable and must not touch
        the device. The default returns the image unchanged.
        """
        return image

    def transform(self) -> Any:
        """The picklable callable the loader's worker processes apply to each image.

        Defaults to :meth:`preprocess`; backends holding a model return their bare
        transform instead, so that the model is never copied into the workers.
        """
        return self.preprocess

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim}, device={self.device!r})"


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` scaled to unit length, as float32; zero rows stay zero."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def digest_files(paths: Iterable[str | os.PathLike[str]]) -> str:
    """Short hex BLAKE2b digest of the names and bytes of ``paths`` (sorted).

    Used so that a local checkpoint keys the cache by its content: replacing the file
    with other weights under the same name gives a different embedder ``name``.
    """
    h = hashlib.blake2b(digest_size=12)
    for p in sorted(Path(p) for p in paths):
        h.update(p.name.encode())
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
    return h.hexdigest()


def folder_digest(folder: Path, config: str, hint: str) -> str:
    """:func:`digest_files` of a local model folder's :func:`weight_files`.

    Raises :class:`EmbedError` when the folder lacks its ``config`` file; ``hint`` ends the
    message (what the folder needs and how to make one).
    """
    if not (folder / config).is_file():
        raise EmbedError(f"{str(folder)!r} holds no {config}; {hint}")
    return digest_files(weight_files(folder))


def digest_state_dict(state_dict: dict[str, Any]) -> str:
    """Short hex digest of a model's parameters (for weights that have no file or tag)."""
    h = hashlib.blake2b(digest_size=12)
    for key in sorted(state_dict):
        t = state_dict[key].detach().cpu().contiguous()
        h.update(key.encode())
        h.update(str(tuple(t.shape)).encode() + str(t.dtype).encode())
        h.update(t.view(-1).view(dtype=_byte_dtype()).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _byte_dtype() -> Any:
    import torch

    return torch.uint8


def weight_files(folder: str | os.PathLike[str], suffixes: Sequence[str] = (
        ".json", ".safetensors", ".bin", ".pth", ".pt", ".txt")) -> list[Path]:
    """Files of a local model folder that determine its vectors (config and weights)."""
    root = Path(folder)
    return sorted(
        p for p in root.rglob("*")
        if p.is_file() and p.suffix in suffixes
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def autocast(device: str) -> Any:
    """float16 autocast for a forward pass on CUDA; a no-op context elsewhere."""
    import contextlib

    import torch

    if str(device).startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()

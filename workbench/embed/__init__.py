"""Embeddings: items to vectors with CLIP, DINOv2, sentence-transformers or your own.

>>> from workbench.embed import ClipEmbedder, embed_items
>>> result = embed_items(items, ClipEmbedder(), cache_dir=project.cache_dir)  # doctest: +SKIP
>>> result.vectors.shape, result.skipped                                     # doctest: +SKIP

Every backend implements :class:`Embedder`; :func:`embed_items` batches, caches (keyed by
model and item content), resumes after interruption and skips unreadable images.
Model libraries are imported only when a backend is created.
"""

from __future__ import annotations

from .base import Embedder, EmbedError, l2_normalize
from .cache import EmbeddingCache, FileKeys
from .clip import ClipEmbedder
from .device import available_cores, best_device
from .dino import DinoEmbedder
from .factory import make_embedder
from .loader import UnreadableImage, open_rgb, to_rgb
from .run import EmbedResult, embed_items
from .text import TextEmbedder
from .vectors import CallableEmbedder, PrecomputedEmbedder

__all__ = [
    "CallableEmbedder",
    "ClipEmbedder",
    "DinoEmbedder",
    "EmbedError",
    "EmbedResult",
    "Embedder",
    "EmbeddingCache",
    "FileKeys",
    "PrecomputedEmbedder",
    "TextEmbedder",
    "UnreadableImage",
    "available_cores",
    "best_device",
    "embed_items",
    "l2_normalize",
    "make_embedder",
    "open_rgb",
    "to_rgb",
]

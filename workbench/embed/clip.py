"""CLIP through open_clip: the image tower for images, the text tower for prompts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .._config import CLIP_MODEL, CLIP_PRETRAINED
from .base import (
    Embedder,
    EmbedError,
    autocast,
    digest_files,
    digest_state_dict,
    folder_digest,
)
from .device import best_device, cap_torch_threads

__all__ = ["ClipEmbedder"]


class ClipEmbedder(Embedder):
    """An open_clip model; :meth:`embed_batch` embeds images, :meth:`encode_text` prompts.

    Parameters
    ----------
    model : str or path
        What open_clip's ``create_model_and_transforms`` takes as ``model_name``:
        a built-in architecture (default ``"ViT-B-32"``), ``"hf-hub:org/repo"``, or
        ``"local-dir:/folder"``. Also accepted: a folder path (read as ``local-dir:``; the
        layout of a Hugging Face open_clip repository: ``open_clip_config.json`` and the
        weights), or the path of a model-config JSON (registered with
        ``open_clip.add_model_config``; give the weights file as ``pretrained``).
    pretrained : str, path or None
        A pretrained tag of the architecture (default ``"laion2b_s34b_b79k"``), or a
        checkpoint file (``.safetensors``, ``.pt``, ``.bin``; read with
        ``weights_only=True``). Ignored for ``hf-hub:`` and ``local-dir:``.
        None means random weights: only for benchmarks, the vectors mean nothing.
    device : str, optional
        Default: ``cuda``, then ``mps``, then ``cpu``. On CUDA the forward pass runs in
        float16 autocast.
    cache_dir : path, optional
        Where open_clip stores downloaded weights (its own default otherwise).
    """

    kind = "image"

    def __init__(
        self,
        model: str | os.PathLike[str] = CLIP_MODEL,
        pretrained: str | os.PathLike[str] | None = CLIP_PRETRAINED,
        *,
        device: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        import open_clip

        self.device = best_device(device)
        cap_torch_threads()
        model_name, pretrained_arg, key = _resolve(model, pretrained)
        try:
            net, _, preprocess = open_clip.create_model_and_transforms(
                model_name,
                pretrained=pretrained_arg,
                device=self.device,
                cache_dir=None if cache_dir is None else str(cache_dir),
                weights_only=True,
            )
            self._tokenizer = open_clip.get_tokenizer(model_name)
        except Exception as e:
            raise EmbedError(
                f"cannot load CLIP model {str(model)!r} with pretrained={pretrained!r}: {e}. "
                "Without a network, pass a local checkpoint (a folder with "
                "open_clip_config.json and weights, or pretrained='/path/weights.safetensors')."
            ) from e
        net.eval()
        self.model = net
        self._preprocess = preprocess
        if key is None:  # random weights: key the cache by the weights themselves
            key = f"random-{digest_state_dict(net.state_dict())}"
        size = net.visual.image_size
        side = max(size) if isinstance(size, (tuple, list)) else int(size)
        self.draft_size = side
        self.model_name = model_name
        self.name = f"clip:{key}:img{side}"
        self.dim = int(self._embed_dim())

    def _embed_dim(self) -> int:
        import torch

        proj = getattr(self.model, "text_projection", None)
        if isinstance(proj, torch.Tensor):
            return proj.shape[-1]
        side = self.draft_size or 224
        with torch.inference_mode():
            out = self.model.encode_image(torch.zeros(1, 3, side, side, device=self.device))
        return out.shape[-1]

    def preprocess(self, image: Any) -> Any:
        """open_clip's own eval transform (resize, centre crop, normalise): (3, H, W)."""
        return self._preprocess(image)

    def embed_batch(self, batch: Any) -> np.ndarray:
        """(B, 3, H, W) tensor from :meth:`preprocess` → (B, D) float32, unit rows."""
        import torch

        with torch.inference_mode(), autocast(self.device):
            x = batch.to(self.device, non_blocking=True)
            z = self.model.encode_image(x)
            z = torch.nn.functional.normalize(z.float(), dim=-1)
        return z.cpu().numpy().astype(np.float32, copy=False)

    def encode_text(self, texts: list[str], *, batch_size: int = 256) -> np.ndarray:
        """Prompts or search queries through the text tower.

        Parameters
        ----------
        texts : C strings (class prompts, a search query).

        Returns
        -------
        (C, D) float32, unit rows, comparable by dot product with image vectors.
        """
        import torch

        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = []
        with torch.inference_mode(), autocast(self.device):
            for start in range(0, len(texts), batch_size):
                tokens = self._tokenizer(texts[start:start + batch_size]).to(self.device)
                z = self.model.encode_text(tokens)
                out.append(torch.nn.functional.normalize(z.float(), dim=-1).cpu())
        return torch.cat(out).numpy().astype(np.float32, copy=False)

    def transform(self) -> Any:
        # The bare torchvision transform: what worker processes receive, never the model.
        return self._preprocess


def _resolve(
    model: str | os.PathLike[str], pretrained: str | os.PathLike[str] | None
) -> tuple[str, str | None, str | None]:
    """open_clip's (model_name, pretrained) for what the user gave, and the cache key.

    The key is the tag for downloadable weights and a hash of the files for local ones,
    so replacing a local checkpoint can never serve vectors of the old one.
    """
    import open_clip

    text = str(model)
    if text.startswith("hf-hub:"):
        return text, None, text
    if text.startswith("local-dir:"):
        folder = Path(text[len("local-dir:"):]).expanduser()
        return text, None, f"local-{_local_key(folder)}"
    path = Path(text).expanduser()
    if path.is_dir():
        return f"local-dir:{path.resolve()}", None, f"local-{_local_key(path)}"
    if text.endswith(".json"):
        if not path.is_file():
            raise EmbedError(f"CLIP model config {text!r} does not exist; check the path")
        if path.name == "open_clip_config.json":  # a Hugging Face style folder
            return _resolve(path.parent, None)
        weights = Path(pretrained).expanduser() if pretrained is not None else None
        if weights is None or not weights.is_file():
            # Weights saved beside the config under the same name are found on their own.
            weights = next((path.with_suffix(s) for s in (".safetensors", ".pt", ".pth", ".bin")
                            if path.with_suffix(s).is_file()), None)
        if weights is None:
            raise EmbedError(
                f"model config {text!r} needs its weights: pass pretrained='/path/to/weights' "
                f"or save them beside it as {path.stem}.safetensors"
            )
        open_clip.add_model_config(path)
        return path.stem, str(weights), f"{path.stem}-{digest_files([path, weights])}"
    if text.replace("/", "-") not in open_clip.list_models():
        raise EmbedError(
            f"{text!r} is not an open_clip architecture, a folder or a config file; "
            "see open_clip.list_models() (for example 'ViT-B-32')"
        )
    if pretrained is None:
        return text, None, None
    ptext = str(pretrained)
    if Path(ptext).expanduser().is_file():
        weights = Path(ptext).expanduser()
        return text, str(weights), f"{text}-{digest_files([weights])}"
    return text, ptext, f"{text}-{ptext}"


def _local_key(folder: Path) -> str:
    return folder_digest(
        folder, "open_clip_config.json",
        "a local CLIP folder needs it and the weights (the layout of a Hugging Face open_clip "
        "repository)",
    )

"""DINOv2 through timm: the CLS token of the last layer, L2-normalised."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .._config import DINO_IMAGE_SIZE, DINO_MODEL
from .base import (
    Embedder,
    EmbedError,
    autocast,
    digest_files,
    digest_state_dict,
    folder_digest,
)
from .device import best_device, cap_torch_threads

__all__ = ["DINO_ALIASES", "DinoEmbedder"]

#: Short names accepted for the two sizes the workbench documents.
DINO_ALIASES = {
    "small": "vit_small_patch14_dinov2.lvd142m",
    "base": "vit_base_patch14_dinov2.lvd142m",
    "dinov2-small": "vit_small_patch14_dinov2.lvd142m",
    "dinov2-base": "vit_base_patch14_dinov2.lvd142m",
}


class DinoEmbedder(Embedder):
    """A DINOv2 ViT from timm; vectors are its final-norm CLS token.

    Parameters
    ----------
    model : str or path
        A timm model name (default ``"vit_small_patch14_dinov2.lvd142m"``; ``"small"`` and
        ``"base"`` are short for the two DINOv2 sizes), ``"hf-hub:timm/..."``,
        ``"local-dir:/folder"``, or a folder path (read as ``local-dir:``: timm's
        Hugging Face layout, ``config.json`` plus ``model.safetensors``, as written by
        ``timm.models.save_for_hf``).
    checkpoint : path, optional
        A weights file for ``model``'s architecture, loaded by timm in place of the
        download (``pretrained_cfg_overlay=dict(file=...)``).
    pretrained : bool
        False builds random weights: only for benchmarks, the vectors mean nothing.
    image_size : int
        Input side in pixels (default 224, the DINOv2 linear-probe resolution; timm
        resamples the position embeddings of the checkpoint to it).
    device : str, optional
        Default: ``cuda``, then ``mps``, then ``cpu``; float16 autocast on CUDA.
    **model_kwargs
        Passed to ``timm.create_model`` (architecture overrides such as ``embed_dim``).
    """

    kind = "image"

    def __init__(
        self,
        model: str | os.PathLike[str] = DINO_MODEL,
        *,
        checkpoint: str | os.PathLike[str] | None = None,
        pretrained: bool = True,
        image_size: int = DINO_IMAGE_SIZE,
        device: str | None = None,
        **model_kwargs: Any,
    ) -> None:
        import timm
        from timm.data import create_transform, resolve_model_data_config

        self.device = best_device(device)
        cap_torch_threads()
        name, key = _resolve(model, checkpoint, pretrained)
        kwargs: dict[str, Any] = {
            "num_classes": 0, "global_pool": "token", "img_size": int(image_size), **model_kwargs
        }
        if checkpoint is not None:
            kwargs["pretrained_cfg_overlay"] = {"file": str(Path(checkpoint).expanduser())}
        try:
            net = timm.create_model(name, pretrained=pretrained, **kwargs)
        except Exception as e:
            raise EmbedError(
                f"cannot load DINOv2 model {str(model)!r}: {e}. Without a network, pass a "
                "local folder (config.json + model.safetensors) or checkpoint='/path/weights'."
            ) from e
        net.eval().to(self.device)
        self.model = net
        config = resolve_model_data_config(net)
        config["input_size"] = (3, int(image_size), int(image_size))
        config["crop_pct"] = 1.0  # DINOv2 evaluates on the resized image, no extra crop
        self._preprocess = create_transform(**config, is_training=False)
        if key is None:
            key = f"random-{digest_state_dict(net.state_dict())}"
        if model_kwargs:
            key += "-" + ",".join(f"{k}={v}" for k, v in sorted(model_kwargs.items()))
        self.draft_size = int(image_size)
        self.model_name = name
        self.name = f"dino:{key}:img{int(image_size)}"
        self.dim = int(net.num_features)

    def preprocess(self, image: Any) -> Any:
        """timm's eval transform for the model at ``image_size``: (3, S, S) tensor."""
        return self._preprocess(image)

    def transform(self) -> Any:
        return self._preprocess

    def embed_batch(self, batch: Any) -> np.ndarray:
        """(B, 3, S, S) tensor → (B, D) float32 unit CLS vectors."""
        import torch

        with torch.inference_mode(), autocast(self.device):
            x = batch.to(self.device, non_blocking=True)
            feats = self.model.forward_features(x)
            z = self.model.forward_head(feats, pre_logits=True)
            z = torch.nn.functional.normalize(z.float(), dim=-1)
        return z.cpu().numpy().astype(np.float32, copy=False)


def _resolve(
    model: str | os.PathLike[str], checkpoint: str | os.PathLike[str] | None, pretrained: bool
) -> tuple[str, str | None]:
    text = str(model)
    text = DINO_ALIASES.get(text, text)
    if text.startswith("local-dir:"):
        folder = Path(text[len("local-dir:"):]).expanduser()
        return text, f"local-{_local_key(folder)}"
    path = Path(text).expanduser()
    if path.is_dir():
        return f"local-dir:{path.resolve()}", f"local-{_local_key(path)}"
    if checkpoint is not None:
        weights = Path(checkpoint).expanduser()
        if not weights.is_file():
            raise EmbedError(f"DINOv2 checkpoint {str(checkpoint)!r} does not exist")
        return text, f"{text}-{digest_files([weights])}"
    if not pretrained:
        return text, None
    return text, text


def _local_key(folder: Path) -> str:
    return folder_digest(
        folder, "config.json",
        "a local timm folder needs it and the weights (write one with timm.models.save_for_hf)",
    )

"""One string names a backend and its model, for the command line and quick calls."""

from __future__ import annotations

from typing import Any

from .base import Embedder

__all__ = ["BACKENDS", "make_embedder"]

#: Backend prefixes understood by :func:`make_embedder`.
BACKENDS = ("clip", "dino", "text")


def make_embedder(spec: str | None = None, *, kind: str = "image",
                  pretrained: str | None = None, checkpoint: str | None = None,
                  device: str | None = None) -> Embedder:
    """An embedder from a short spec.

    Parameters
    ----------
    spec : ``"clip"``, ``"dino"`` or ``"text"`` for the defaults, or ``"BACKEND:MODEL"``
        where MODEL is anything that backend's ``model=`` takes (a name, a folder, a config
        file, ``hf-hub:...``, ``local-dir:...``), for example ``"clip:ViT-L-14"``,
        ``"dino:base"``, ``"text:/models/minilm"``. None picks by ``kind``: CLIP for
        images, text for texts.
    pretrained : CLIP's pretrained tag or weights file.
    checkpoint : DINOv2's weights file.
    device : as the backends take it (default: best available).

    The embedder returned carries ``factory_args``: these arguments, less ``device``, from
    which another process builds the same model on its own device (the Ray workers of
    ``embed_items(..., engine="ray")`` do).
    """
    if spec is None:
        spec = "text" if kind == "text" else "clip"
    backend, _, model = spec.partition(":")
    backend = backend.lower()
    if backend not in BACKENDS:
        raise ValueError(
            f"unknown embedding model {spec!r}: start it with one of {', '.join(BACKENDS)} "
            "(for example 'clip', 'clip:ViT-B-16', 'dino:small', 'text')"
        )
    embedder = _build(backend, model, pretrained=pretrained, checkpoint=checkpoint,
                      device=device)
    embedder.factory_args = {"spec": spec, "kind": kind, "pretrained": pretrained,
                             "checkpoint": checkpoint}
    return embedder


def _build(backend: str, model: str, *, pretrained: str | None, checkpoint: str | None,
           device: str | None) -> Embedder:
    kw: dict[str, Any] = {"device": device}
    if model:
        kw["model"] = model
    if backend == "clip":
        from .clip import ClipEmbedder

        if pretrained is not None:
            kw["pretrained"] = pretrained
        return ClipEmbedder(**kw)
    if backend == "dino":
        from .dino import DinoEmbedder

        return DinoEmbedder(checkpoint=checkpoint, **kw)
    from .text import TextEmbedder

    return TextEmbedder(**kw)

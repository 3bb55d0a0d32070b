"""CLIP zero-shot pre-labels: class names as text prompts, scored against image embeddings.

The text tower is passed in as a callable (``list[str] -> (P, D)`` array), so this module
works with any CLIP-like backend and is tested with a small encoder of the test's own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .._arrays import as_vectors
from .._config import ZEROSHOT_TEMPLATES
from ..neighbors import normalize

__all__ = ["ZeroShot", "accept_zero_shot", "zero_shot"]

#: CLIP's learnt logit scale (100 = 1 / 0.01 temperature), so scores are comparable to CLIP's.
_CLIP_LOGIT_SCALE = 100.0


@dataclass(frozen=True)
class ZeroShot:
    """Zero-shot pre-labels.

    Attributes
    ----------
    class_names : the C class names, in column order.
    proba : (N, C) float32 softmax over the classes of the scaled cosine similarities.
    label : (N,) int64 column index of the best class (into ``class_names``).
    score : (N,) float32 probability of that class.
    """

    class_names: tuple[str, ...]
    proba: np.ndarray
    label: np.ndarray
    score: np.ndarray


def zero_shot(
    image_embeddings: np.ndarray,
    class_names: Sequence[str],
    encode_text: Callable[[list[str]], np.ndarray],
    *,
    templates: Sequence[str] = ZEROSHOT_TEMPLATES,
    logit_scale: float = _CLIP_LOGIT_SCALE,
) -> ZeroShot:
    """Score every item against prompts built from the class names.

    Parameters
    ----------
    image_embeddings : (N, D) float32 image embeddings from the same CLIP model.
    class_names : C >= 2 distinct names, e.g. ``["cat", "dog"]``.
    encode_text : the model's text tower, ``list[str] -> (P, D)`` array.
    templates : prompt templates with one ``{}`` for the name; the embeddings of a class's
        prompts are averaged (default ``ZEROSHOT_TEMPLATES``).
    logit_scale : multiplies cosine similarities before the softmax (CLIP's 100).
    """
    x = normalize(as_vectors(image_embeddings))
    names = tuple(str(n) for n in class_names)
    if len(names) < 2:
        raise ValueError(f"zero-shot needs at least 2 class names, got {len(names)}")
    if len(set(names)) != len(names):
        raise ValueError(f"class names must be distinct, got {list(names)}")
    if not templates or any("{}" not in t for t in templates):
        raise ValueError("every template must contain '{}' where the class name goes")
    prompts = [t.format(n) for n in names for t in templates]
    t = np.asarray(encode_text(prompts), np.float32)
    if t.ndim != 2 or t.shape[0] != len(prompts):
        raise ValueError(
            f"encode_text returned shape {t.shape} for {len(prompts)} prompts; expected "
            f"({len(prompts)}, D)"
        )
    if t.shape[1] != x.shape[1]:
        raise ValueError(
            f"text embeddings have {t.shape[1]} dimensions, image embeddings {x.shape[1]}: "
            "use the text tower of the model that embedded the images"
        )
    # CLIP's recipe: normalise each prompt, average per class, normalise again.
    per_class = normalize(t).reshape(len(names), len(templates), -1).mean(axis=1)
    text = normalize(per_class)
    logits = logit_scale * (x @ text.T)
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    proba = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
    label = proba.argmax(axis=1).astype(np.int64)
    return ZeroShot(names, proba, label, proba[np.arange(len(label)), label])


def accept_zero_shot(
    store,
    result: ZeroShot,
    *,
    items: np.ndarray | None = None,
    min_score: float = 0.0,
) -> dict[str, int]:
    """Record zero-shot pre-labels in a :class:`~workbench.labels.LabelStore`, in bulk.

    Every class at once as ONE action (one transaction, one undo), ``source="zeroshot"``
    and each item's score as confidence (classes are created by name when new). Human
    labels are never overwritten: the store keeps machine labels beside them.

    Parameters
    ----------
    store : the project's ``LabelStore`` (its items are the N rows of ``result``).
    result : output of :func:`zero_shot`.
    items : optional positions to accept (default: all N).
    min_score : accept only pre-labels scoring at least this.

    Returns
    -------
    ``{class name: items accepted}`` for the classes that received any.
    """
    n = result.label.shape[0]
    if len(store.item_ids) != n:
        raise ValueError(
            f"the store has {len(store.item_ids)} items but the zero-shot result {n}; "
            "score the project's own embeddings"
        )
    pos = np.arange(n) if items is None else np.unique(np.asarray(items, np.int64))
    pos = pos[result.score[pos] >= min_score]
    counts: dict[str, int] = {}
    groups = []
    for j, name in enumerate(result.class_names):
        sel = pos[result.label[pos] == j]
        if sel.size:
            groups.append((sel, name, result.score[sel]))
            counts[name] = int(sel.size)
    if groups:
        store.assign_many(groups, source="zeroshot")
    return counts

"""Applying rules to items: where each rule votes (:func:`rule_mask`), the derived columns an
expression may use (:data:`DERIVED_COLUMNS`), and the vote matrix of several rules
(:func:`vote_matrix`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import PurePath
from typing import Any

import numpy as np
import polars as pl

from .._config import RULE_PROMPT_CHUNK
from .spec import load_expr, rule_title

__all__ = [
    "ABSTAIN",
    "DERIVED_COLUMNS",
    "item_text",
    "rule_mask",
    "vote_matrix",
    "with_derived",
]

#: A rule's vote where it does not vote.
ABSTAIN = -1

#: Columns an expression (or a keywords/regex ``column``) may use beside the items table's
#: own; each is made only when a rule names it, and an items column of the same name wins.
DERIVED_COLUMNS = {
    "file_name": "the file name of an image item (its source path's last part), null for "
                 "text items",
    "folder": "the name of the folder an image item's file is in, null for text items",
    "file_size": "the size of an image item's file in bytes (read from disk when a rule "
                 "uses it; null where the file is missing), null for text items",
    "text": "the item text: a text item's text, an image item's file name, else its id",
}


def item_text(items: pl.DataFrame) -> pl.Series:
    """(N,) the text a rule without a ``column`` reads: what ``Workbench.item_text`` shows
    (a text item's text, an image item's file name; the id of a vector item)."""
    kind, source = items["kind"].to_list(), items["source"].to_list()
    ids = items["id"].to_list()
    return pl.Series("text", [
        PurePath(s).name if k == "image" else (s if k == "text" else i)
        for k, s, i in zip(kind, source, ids)
    ], dtype=pl.String)


def with_derived(items: pl.DataFrame, names: Sequence[str]) -> pl.DataFrame:
    """``items`` with the :data:`DERIVED_COLUMNS` among ``names`` it lacks added."""
    want = [n for n in dict.fromkeys(names) if n in DERIVED_COLUMNS and n not in items.columns]
    if not want:
        return items
    image = [k == "image" for k in items["kind"].to_list()]
    paths = items["source"].to_list()
    made: list[pl.Series] = []
    for name in want:
        if name == "text":
            made.append(item_text(items))
        elif name == "file_name":
            made.append(pl.Series(name, [PurePath(p).name if im else None
                                         for p, im in zip(paths, image)], dtype=pl.String))
        elif name == "folder":
            made.append(pl.Series(name, [PurePath(p).parent.name if im else None
                                         for p, im in zip(paths, image)], dtype=pl.String))
        else:
            made.append(pl.Series(name, [_size(p) if im else None
                                         for p, im in zip(paths, image)], dtype=pl.Int64))
    return items.with_columns(made)


def _size(path: str) -> int | None:
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def rule_mask(
    spec: Mapping[str, Any],
    items: pl.DataFrame,
    *,
    rule_id: int | None = None,
    vectors: np.ndarray | None = None,
    encode_text: Callable[[list[str]], np.ndarray] | None = None,
) -> np.ndarray:
    """(N,) bool: the items the rule (a checked spec) votes on.

    Parameters
    ----------
    spec : a spec from :func:`~workbench.rules.spec.check_spec` (a ``region`` rule's ids
        that are not among the items are skipped).
    items : the project's items table (id, source, kind, imported columns).
    rule_id : to name the rule in errors.
    vectors : (N, D) item vectors, for a ``prompt`` rule.
    encode_text : ``list[str] -> (P, D)`` in the space of ``vectors``, for a ``prompt``
        rule (the session's text encoder; it may cache).

    Raises
    ------
    ValueError naming the rule: no text encoder for a prompt rule, an expression or
    function that does not give one True/False per item, an unknown column.
    """
    kind, title = spec["kind"], rule_title(spec, rule_id)
    n = items.height
    if kind in ("keywords", "regex"):
        return _text_mask(spec, items, title)
    if kind == "expression":
        return _expression_mask(spec, items, title)
    if kind == "prompt":
        return _prompt_mask(spec, vectors, encode_text, title)
    if kind == "region":
        return items["id"].is_in(list(spec["items"])).to_numpy()
    try:
        out = spec["fn"](items)
    except Exception as e:
        raise ValueError(f"{title}: the function raised {type(e).__name__}: {e}") from e
    return _as_mask(out, n, title, "the function")


def vote_matrix(columns: Sequence[np.ndarray], class_ids: Sequence[int], n: int) -> np.ndarray:
    """(N, R) int64: rule ``r`` votes ``class_ids[r]`` where ``columns[r]`` is True, else
    :data:`ABSTAIN` (a rule whose class id is negative, its class gone, votes nowhere)."""
    votes = np.full((n, len(columns)), ABSTAIN, np.int64)
    for r, (mask, cid) in enumerate(zip(columns, class_ids)):
        if cid >= 0:
            votes[mask, r] = cid
    return votes


def _text_mask(spec: Mapping[str, Any], items: pl.DataFrame, title: str) -> np.ndarray:
    col = spec["column"]
    if col is None:
        values = item_text(items)
    else:
        table = with_derived(items, [col])
        if col not in table.columns:
            raise ValueError(f"{title}: unknown column {col!r}; the items have "
                             f"{', '.join(items.columns)} (and {', '.join(DERIVED_COLUMNS)})")
        values = table[col].cast(pl.String, strict=False)
    flags = 0 if spec["case"] else re.IGNORECASE
    if spec["kind"] == "keywords":
        words = "|".join(re.escape(w) for w in sorted(spec["words"], key=len, reverse=True))
        pattern = rf"(?<!\w)(?:{words})(?!\w)" if spec["whole_word"] else f"(?:{words})"
    else:
        pattern = spec["pattern"]
    search = re.compile(pattern, flags).search
    return np.fromiter((v is not None and search(v) is not None for v in values.to_list()),
                       bool, items.height)


def _expression_mask(spec: Mapping[str, Any], items: pl.DataFrame, title: str) -> np.ndarray:
    expr = load_expr(spec["expr"])
    table = with_derived(items, expr.meta.root_names())
    missing = [c for c in expr.meta.root_names() if c not in table.columns]
    if missing:
        raise ValueError(f"{title}: unknown column {missing[0]!r} in the expression; columns "
                         f"are {', '.join(items.columns)} (and {', '.join(DERIVED_COLUMNS)})")
    try:
        out = table.select(expr.alias("__rule__")).to_series()
    except Exception as e:
        raise ValueError(f"{title}: the expression {expr} cannot be evaluated on the items "
                         f"({type(e).__name__}: {e}); fix it") from e
    if out.dtype != pl.Boolean:
        raise ValueError(f"{title}: the expression gives {out.dtype} values, not True/False; "
                         "compare it, e.g. pl.col('file_size') > 10_000")
    if out.len() == 1 and items.height != 1:
        out = pl.repeat(out[0], items.height, eager=True, dtype=pl.Boolean)
    return _as_mask(out.fill_null(False).to_numpy(), items.height, title, "the expression")


def _prompt_mask(
    spec: Mapping[str, Any],
    vectors: np.ndarray | None,
    encode_text: Callable[[list[str]], np.ndarray] | None,
    title: str,
) -> np.ndarray:
    if encode_text is None or vectors is None:
        raise ValueError(
            f"{title}: a prompt rule needs a text encoder in the space of the vectors and "
            "there is none: embed with CLIP (images) or a sentence model (texts), or open "
            "the session with text_encoder= (a callable list[str] -> (Q, D) array)"
        )
    prompts = np.asarray(encode_text(list(spec["prompts"])), np.float32)
    if prompts.ndim != 2 or prompts.shape != (len(spec["prompts"]), vectors.shape[1]):
        raise ValueError(f"{title}: the text encoder gave shape {prompts.shape} for "
                         f"{len(spec['prompts'])} prompts; vectors have {vectors.shape[1]} "
                         "dimensions: it is not the model that embedded the items")
    prompts /= np.maximum(np.linalg.norm(prompts, axis=1, keepdims=True), 1e-12)
    out = np.zeros(vectors.shape[0], bool)
    for start in range(0, vectors.shape[0], RULE_PROMPT_CHUNK):
        block = np.asarray(vectors[start:start + RULE_PROMPT_CHUNK], np.float32)
        norm = np.maximum(np.linalg.norm(block, axis=1), 1e-12)
        best = (block @ prompts.T).max(axis=1) / norm
        out[start:start + block.shape[0]] = best >= spec["threshold"]
    return out


def _as_mask(out: Any, n: int, title: str, what: str) -> np.ndarray:
    if isinstance(out, pl.Series):
        out = out.fill_null(False).to_numpy()
    arr = np.asarray(out)
    if arr.shape != (n,) or arr.dtype != bool:
        raise ValueError(f"{title}: {what} must give one True/False per item ({n}), not an "
                         f"array of shape {arr.shape} and type {arr.dtype}")
    return arr

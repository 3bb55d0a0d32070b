"""Rule specs: the kinds of labelling rules, their fields, and the check that every spec
passes before it is logged or applied.

A rule (a *labelling function*) votes one class for some items and abstains on the rest.
Its spec is a JSON-able dict with ``kind`` (:data:`RULE_KINDS`), ``label`` (the class it
votes for, by name), ``name`` (an optional human name), ``enabled`` (bool) and the fields
of its kind (:data:`KIND_FIELDS`, with their defaults):

``keywords``
    ``words`` (non-empty list of texts), ``column`` (``None``: the item text, see
    :func:`workbench.rules.votes.item_text`), ``case`` (False: case-insensitive),
    ``whole_word`` (True: a word must not be part of a longer word).
``regex``
    ``pattern`` (a Python regular expression, searched anywhere), ``column``, ``case``.
``expression``
    ``expr``: a polars expression over the items table, stored as its JSON
    (``expr.meta.serialize(format="json")``); it votes where it is True. Columns it may
    use: every column of the items table and the derived ones of
    :data:`workbench.rules.votes.DERIVED_COLUMNS`.
``prompt``
    ``prompts`` (non-empty list of texts), ``threshold``: it votes where the cosine
    similarity of an item's vector to its nearest prompt is at least that (-1 to 1).
``region``
    ``items``: the ids of the items it votes on (a lasso selection, a proposed cluster).
``python``
    ``fn``: a callable ``fn(items_table) -> (N,) bool``; kept in the session's memory only
    and never logged (a function is code, not data another annotator could run).
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

import polars as pl

__all__ = [
    "COMMON_FIELDS",
    "KIND_FIELDS",
    "RULE_KINDS",
    "STORED_KINDS",
    "check_spec",
    "describe",
    "load_expr",
    "rule_title",
    "spec_json",
]

#: The fields of each rule kind, with their defaults (``...``: required).
KIND_FIELDS: dict[str, dict[str, Any]] = {
    "keywords": {"words": ..., "column": None, "case": False, "whole_word": True},
    "regex": {"pattern": ..., "column": None, "case": False},
    "expression": {"expr": ...},
    "prompt": {"prompts": ..., "threshold": ...},
    "region": {"items": ...},
    "python": {"fn": ...},
}
RULE_KINDS = tuple(KIND_FIELDS)
#: The kinds written to the label log (a ``python`` rule is session-only).
STORED_KINDS = tuple(k for k in RULE_KINDS if k != "python")
#: The fields every spec has, beside its kind's.
COMMON_FIELDS = ("kind", "label", "name", "enabled")


def rule_title(spec: Mapping[str, Any], rule_id: int | None = None) -> str:
    """How an error names a rule: ``rule 3 'cats by word' (keywords, class 'cat')``."""
    kind = spec.get("kind", "?")
    who = f"rule {rule_id}" if rule_id is not None else f"the new {kind} rule"
    name = spec.get("name")
    named = f" {name!r}" if name else ""
    return f"{who}{named} ({kind}, class {spec.get('label')!r})"


def check_spec(
    spec: Mapping[str, Any],
    *,
    rule_id: int | None = None,
    columns: list[str] | None = None,
    stored: bool = True,
) -> dict[str, Any]:
    """The spec checked and completed with its kind's defaults (a new dict).

    Parameters
    ----------
    spec : the rule, as described in this module; a ``class_id`` key is dropped (the store
        sets it), an ``expr`` may be a ``pl.Expr`` (stored as its JSON).
    rule_id : the rule's id, to name it in errors (None: a new rule).
    columns : the columns a ``column`` or an expression may use (None: not checked here).
    stored : True when the spec is to be logged: a ``python`` rule is refused.

    Raises
    ------
    ValueError naming the rule and what to fix: an unknown kind or field, a missing field,
    empty words, a bad regular expression, an unknown column, a threshold out of range...
    """
    if not isinstance(spec, Mapping):
        raise ValueError(f"a rule spec is a dict with kind, label and its fields, not {spec!r}")
    kind = spec.get("kind")
    if kind not in KIND_FIELDS:
        raise ValueError(
            f"unknown rule kind {kind!r} for {rule_title(spec, rule_id)}; "
            f"use one of {', '.join(RULE_KINDS)}"
        )
    title = rule_title(spec, rule_id)
    if stored and kind not in STORED_KINDS:
        raise ValueError(
            f"{title}: a python rule is a function, kept in the session only; it cannot be "
            "written to the label log (add it with Workbench.add_rule)"
        )
    fields = KIND_FIELDS[kind]
    unknown = sorted(set(spec) - set(fields) - set(COMMON_FIELDS) - {"class_id"})
    if unknown:
        raise ValueError(
            f"{title}: unknown field(s) {', '.join(map(repr, unknown))}; a {kind} rule takes "
            f"{', '.join(fields)}"
        )
    out: dict[str, Any] = {"kind": kind, "label": _label(spec.get("label"), title),
                           "name": _name(spec.get("name"), title),
                           "enabled": _flag(spec.get("enabled", True), "enabled", title)}
    for key, default in fields.items():
        if key not in spec or (spec[key] is None and default is ...):
            if default is ...:
                raise ValueError(f"{title}: the field {key!r} is missing; give {key}=...")
            out[key] = default
        else:
            out[key] = spec[key]
    _CHECKS[kind](out, title, columns)
    return out


def spec_json(spec: Mapping[str, Any]) -> str:
    """The spec as compact JSON, keys sorted (what the log stores; equal specs, equal text)."""
    return json.dumps(dict(spec), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def load_expr(text: str) -> pl.Expr:
    """The polars expression stored as ``text`` (its JSON serialisation)."""
    return pl.Expr.deserialize(io.StringIO(text), format="json")


def describe(spec: Mapping[str, Any]) -> str:
    """A short human description of a rule, shown where it has no name."""
    kind = spec["kind"]
    if kind == "keywords":
        words = ", ".join(spec["words"][:4]) + (", ..." if len(spec["words"]) > 4 else "")
        return f"words {words}"
    if kind == "regex":
        return f"regex /{spec['pattern']}/"
    if kind == "expression":
        try:
            return f"where {load_expr(spec['expr'])}"
        except Exception:  # shown, never raised: the check reports a bad expression
            return "expression"
    if kind == "prompt":
        return f"like {spec['prompts'][0]!r} (>= {spec['threshold']:g})"
    if kind == "region":
        return f"region of {len(spec['items'])} items"
    return f"python {getattr(spec['fn'], '__name__', 'function')}"


# -- the checks of each kind ---------------------------------------------------------------


def _label(label: Any, title: str) -> str | int:
    if isinstance(label, bool) or not isinstance(label, (str, int)):
        raise ValueError(f"{title}: label is the class the rule votes for (a name), not {label!r}")
    if isinstance(label, str) and not label.strip():
        raise ValueError(f"{title}: the class name is empty; name the class the rule votes for")
    return label


def _name(name: Any, title: str) -> str | None:
    if name is None:
        return None
    if not isinstance(name, str):
        raise ValueError(f"{title}: name is a text (or None), not {name!r}")
    return name.strip() or None


def _flag(value: Any, key: str, title: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{title}: {key} is True or False, not {value!r}")
    return value


def _texts(value: Any, key: str, title: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{title}: {key} is a list of texts, not {value!r}")
    texts = [v for v in (v.strip() for v in value) if v]
    if not texts:
        raise ValueError(f"{title}: {key} is empty; give at least one non-empty text")
    return texts


def _column(out: dict[str, Any], title: str, columns: list[str] | None) -> None:
    col = out["column"]
    if col is None:
        return
    if not isinstance(col, str):
        raise ValueError(f"{title}: column is a column name (or None: the item text), not {col!r}")
    if columns is not None and col not in columns:
        raise ValueError(
            f"{title}: unknown column {col!r}; the items have {', '.join(columns)}"
        )


def _check_keywords(out: dict[str, Any], title: str, columns: list[str] | None) -> None:
    out["words"] = list(dict.fromkeys(_texts(out["words"], "words", title)))
    out["case"] = _flag(out["case"], "case", title)
    out["whole_word"] = _flag(out["whole_word"], "whole_word", title)
    _column(out, title, columns)


def _check_regex(out: dict[str, Any], title: str, columns: list[str] | None) -> None:
    pattern = out["pattern"]
    if not isinstance(pattern, str) or not pattern:
        raise ValueError(f"{title}: pattern is a non-empty regular expression, not {pattern!r}")
    try:
        re.compile(pattern)
    except re.error as e:
        raise ValueError(f"{title}: the regular expression {pattern!r} is invalid ({e}); "
                         "fix it (a literal character like '(' is written '\\(')") from e
    out["case"] = _flag(out["case"], "case", title)
    _column(out, title, columns)


def _check_expression(out: dict[str, Any], title: str, columns: list[str] | None) -> None:
    expr = out["expr"]
    if isinstance(expr, pl.Expr):
        text = expr.meta.serialize(format="json")
    elif isinstance(expr, str):
        text = expr
    else:
        raise ValueError(f"{title}: expr is a polars expression (pl.Expr) or its JSON, "
                         f"not {type(expr).__name__}")
    try:
        parsed = load_expr(text)
    except Exception as e:
        raise ValueError(f"{title}: expr is not a polars expression's JSON ({e}); give the "
                         "expression itself, e.g. pl.col('folder') == 'cats'") from e
    out["expr"] = text
    if columns is not None:
        missing = [c for c in parsed.meta.root_names() if c not in columns]
        if missing:
            raise ValueError(f"{title}: unknown column {missing[0]!r} in the expression; "
                             f"columns are {', '.join(columns)}")


def _check_prompt(out: dict[str, Any], title: str, columns: list[str] | None) -> None:
    out["prompts"] = list(dict.fromkeys(_texts(out["prompts"], "prompts", title)))
    t = out["threshold"]
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) \
            or not -1.0 <= t <= 1.0:
        raise ValueError(f"{title}: threshold is a cosine similarity from -1 to 1 (CLIP "
                         f"matches are typically 0.2-0.35, sentence models 0.3-0.6), not {t!r}")
    out["threshold"] = float(t)


def _check_region(out: dict[str, Any], title: str, columns: list[str] | None) -> None:
    items = out["items"]
    if isinstance(items, str) or not isinstance(items, (list, tuple)) \
            or not all(isinstance(i, str) for i in items):
        raise ValueError(f"{title}: items is a list of item ids, not {type(items).__name__}")
    out["items"] = list(dict.fromkeys(items))
    if not out["items"]:
        raise ValueError(f"{title}: the region holds no items; select at least one")


def _check_python(out: dict[str, Any], title: str, columns: list[str] | None) -> None:
    if not callable(out["fn"]):
        raise ValueError(f"{title}: fn is a function items_table -> (N,) bool mask, "
                         f"not {out['fn']!r}")


_CHECKS: dict[str, Callable[[dict[str, Any], str, list[str] | None], None]] = {
    "keywords": _check_keywords,
    "regex": _check_regex,
    "expression": _check_expression,
    "prompt": _check_prompt,
    "region": _check_region,
    "python": _check_python,
}

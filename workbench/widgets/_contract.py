"""What the widgets rely on, in one place: the session they read and call
(:class:`SessionView`), the events they listen to (:class:`SessionEvent`), and the one
table of messages, fields, colour modes and colours shared by Python and ``js/``.

The widgets use nothing of a session beyond :class:`SessionView`; the front end and the
Python side both follow the message table (``tests/test_widget_contract.py`` reads
``js/*.js`` and fails when either side drifts from it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .._events import Event

__all__ = [
    "CHART_BROWSER_SETS", "CHART_MESSAGES", "CLASS_COLORS", "CLUSTER_COLORS", "CODE_FIELDS",
    "COLOR_MODES", "GALLERY_BROWSER_SETS",
    "GALLERY_MESSAGES", "HEX_COLOR", "KEY_ACTIONS", "LASSO_TYPES", "MAP_BROWSER_SETS",
    "MAP_MESSAGES", "MAP_REPLIES", "MAX_LABEL_KEY", "SESSION_EVENTS", "ClusterView",
    "LabelsView", "PredictionsView", "ProjectView", "SessionEvent", "SessionView",
]


# -- the session, as the widgets see it ------------------------------------------------------


class ProjectView(Protocol):
    """The project folder: where exports go beside, where thumbnails are cached."""

    path: Path

    @property
    def cache_dir(self) -> Path: ...


class LabelsView(Protocol):
    """The label store: live classes and the label state (``human``, ``machine``)."""

    state: Any  # a workbench.labels.LabelState

    @property
    def classes(self) -> dict[int, str]: ...

    def table(self) -> Any: ...  # a polars DataFrame: one row per item, with its annotator


class PredictionsView(Protocol):
    """The latest predictions: (N,) class ids and (N,) confidences (NaN = none)."""

    label: np.ndarray
    confidence: np.ndarray


class ClusterView(Protocol):
    """A proposed cluster: its number, size, members (most typical first) and core."""

    id: int

    @property
    def members(self) -> np.ndarray: ...

    @property
    def size(self) -> int: ...

    def core(self) -> np.ndarray: ...


class SessionView(Protocol):
    """Everything the widgets read and call on a :class:`~workbench.session.Workbench`.

    ``estimate`` may be missing or None: the status line then shows no accuracy.
    """

    project: ProjectView
    coords: np.ndarray
    predictions: PredictionsView | None
    annotator: str  # who labels in this session; settable

    @property
    def items(self) -> Any: ...  # a polars DataFrame with columns id, kind, source

    @property
    def n(self) -> int: ...

    @property
    def labels(self) -> LabelsView: ...

    @property
    def status(self) -> dict[str, Any]: ...

    @property
    def clusters(self) -> Sequence[ClusterView]: ...

    def subscribe(self, callback: Callable[[str], None]) -> Callable[[], None]: ...

    def item_text(self, i: int) -> str: ...

    def label(self, items: Any, name: str) -> None: ...

    def adjudicate(self, items: Any, label: str | int) -> None: ...

    def remove_labels(self, items: Any) -> None: ...

    def undo(self) -> bool: ...

    def redo(self) -> bool: ...

    def create_class(self, name: str) -> int: ...

    def rename_class(self, old: str | int, new: str) -> None: ...

    def merge_classes(self, sources: Sequence[str | int], into: str | int) -> None: ...

    def delete_class(self, name: str | int) -> None: ...

    def accept_predictions(self, items: Any = None, *, min_confidence: float = 0.0) -> int: ...

    def more_like_this(self, items: Any, k: int = 50) -> np.ndarray: ...

    def text_search(self, query: str, k: int = 100) -> np.ndarray: ...

    def next_cluster(self) -> ClusterView | None: ...

    def suggestions(self, n: int = ..., *, claim: bool = ...) -> np.ndarray: ...

    def suspected_errors(self, n: int = ...) -> np.ndarray: ...

    def consensus(self) -> Any: ...  # a polars DataFrame, one row per item

    def cluster_names(self, level: str = "fine") -> list[str]: ...  # workbench/_names.py

    def cluster_members(self, level: str = "fine") -> list[np.ndarray]: ...

    # selections: see workbench/_selections.py
    def audit_selection(self, items: Any) -> Any: ...

    def duplicates(self) -> list[np.ndarray]: ...

    def outliers(self, n: int = ...) -> np.ndarray: ...

    def similarity(self, *args: Any, **kwargs: Any) -> np.ndarray: ...

    def saved_selections(self) -> Any: ...

    def save_selection(self, name: str, items: Any) -> None: ...

    def saved_selection(self, name: str) -> np.ndarray: ...

    def delete_selection(self, name: str) -> None: ...

    # rules (labelling functions): see workbench/_rules.py
    @property
    def rules(self) -> Any: ...  # a polars DataFrame, one row per rule

    def add_rule(self, kind: str, label: str, **fields: Any) -> int: ...

    def enable_rule(self, rule_id: int, enabled: bool = True) -> None: ...

    def remove_rule(self, rule_id: int) -> None: ...

    def rule_votes(self) -> tuple[np.ndarray, np.ndarray]: ...  # (R,) ids, (N, R) class ids

    def rule_analysis(self) -> Any: ...  # a polars DataFrame, one row per rule

    def rule_conflicts(self, rule_id: int) -> np.ndarray: ...

    def estimate(self) -> dict[str, Any]: ...

    def export(self, path: Any, **options: Any) -> Path: ...

    def wait(self, timeout: float | None = 120.0) -> None: ...


#: The events a session sends its subscribers (``Workbench.subscribe``): ``LABELS``,
#: ``PREDICTIONS``, ``LAYOUT``, ``STATUS``. The session's own names (a ``str`` enum, so
#: they compare equal to the plain strings subscribers receive); any may arrive on a
#: worker thread.
SessionEvent = Event
#: Every event a session sends, as the strings subscribers receive.
SESSION_EVENTS = tuple(e.value for e in Event)


# -- the message table: Python <-> js/ -------------------------------------------------------

#: Per-point code arrays of the map and their wire dtype (0 always means "none"); js/
#: scatter.js ``FIELDS`` reads each with the typed array of the same width. ``filtered``:
#: 1 where the filter charts hide the item (drawn faded, left out of a lasso), 0 = shown.
CODE_FIELDS: dict[str, type[np.integer]] = {
    "human": np.uint16, "machine": np.uint16, "predicted": np.uint16,
    "cluster": np.uint16, "confidence": np.uint8, "review": np.uint8, "agreement": np.uint8,
    "rule": np.uint16, "filtered": np.uint8,
}
#: Colour modes of the map: labels (human opaque, machine translucent), human labels only,
#: predicted label, prediction confidence, proposed cluster, needs review, annotators'
#: agreement with the consensus (``agreement`` codes: 0 = nobody labelled the item, else
#: 1 + 254 * agreement), one rule's votes (``rule``: the slot of the class it votes, 0 where
#: it abstains); the options of the map's mode menu, in this order.
COLOR_MODES = ("label", "human", "predicted", "confidence", "cluster", "review", "agreement",
               "rule")
#: Selection shapes of the map (the options of its shape menu): lasso and box.
LASSO_TYPES = ("freeform", "rectangle")
#: Categorical colours of the classes (Tableau 10 then its light variants): distinct,
#: colour-blind aware; sent in each class's ``color``.
CLASS_COLORS = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
    "#ff9da7", "#9c755f", "#bab0ac", "#a0cbe8", "#ffbe7d", "#ff9d9a", "#86bcb6",
    "#8cd17d", "#f1ce63", "#d4a6c8", "#fabfd2", "#d7b5a6", "#79706e",
)
#: The colour form the front end reads (anything else is drawn grey).
HEX_COLOR = r"^#?([0-9a-f]{6})$"
#: Colours of proposed clusters in the map's "cluster" mode (drawn by the front end alone).
CLUSTER_COLORS = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
    "#ff9da7", "#9c755f", "#bab0ac", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
    "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)
#: Number keys that label: 1 to MAX_LABEL_KEY (0 removes labels).
MAX_LABEL_KEY = 9
#: Actions a key press asks for, in the map and in the gallery.
KEY_ACTIONS = ("label_key", "remove_labels", "undo", "redo")
#: Message types the map's front end sends. Above its point budget (level of detail): ``view``
#: asks for the points of a rectangle (``seq``, ``rect`` in data coordinates), ``lasso``
#: sends a selection's ``polygon`` (flat x, y list; ``merge``/``remove``) to resolve in Python.
MAP_MESSAGES = ("ready", "thumb", *KEY_ACTIONS, "view", "lasso")
#: Message types the gallery's front end sends: a card relabelled or dropped, besides keys.
GALLERY_MESSAGES = ("thumb", *KEY_ACTIONS, "relabel", "drop")
#: Message types the map's front end receives (a ``thumb`` answers a request by its id);
#: above the budget, ``points`` (positions, coordinates, codes of an overview or a view) and
#: ``reload`` (drop what is loaded and ask again: new coordinates, or a very large relabel).
MAP_REPLIES = ("codes", "patch", "error", "thumb", "points", "reload")
#: Message types the filter charts' front end sends: a histogram brushed to a range (``lo``,
#: ``hi``), a bar's category toggled (``category``, null for "(none)"), a chart's filter (or,
#: with a null ``column``, every filter) cleared.
CHART_MESSAGES = ("brush", "toggle", "clear")
#: Traits each front end may set (all others are Python's alone).
MAP_BROWSER_SETS = ("selection", "color_by", "lasso_type")
GALLERY_BROWSER_SETS = ("page",)
CHART_BROWSER_SETS: tuple[str, ...] = ()

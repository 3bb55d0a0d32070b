"""The app's view-model: what the map, gallery and panel show, computed from the session.

:class:`AppViewModel` encodes the session's state for the widgets (class ids to colour
slots, per-point codes, the legend's palette, gallery cards, hover previews, cluster
codes, the status line) and holds what the app says beside it (the gallery's title, the
latest message). It touches no widget: :class:`~workbench.widgets.app.WorkbenchApp`
applies what it computes on the main thread.

Labels: every colour, legend count, card and hover text comes from
:func:`~workbench.labels.effective_labels` (human, else accepted machine label, else live
prediction), never from the layers combined here.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from .._config import GALLERY_PAGE_SIZE
from .._events import Event
from ..labels.effective import ACCEPTED, HUMAN, PREDICTED, EffectiveLabels, effective_labels
from ..thumbnails import ThumbnailCache
from ._contract import MAX_LABEL_KEY, SessionView
from ._palette import ClassSlots
from ._positions import as_positions
from .panel import format_status

__all__ = ["CARD_SOURCES", "COMPUTED_MODES", "TEXT_PREVIEW_CHARS", "AppViewModel",
           "agreement_codes"]

log = logging.getLogger("workbench.widgets")

#: Characters of an item's text shown on a card or in the hover preview.
TEXT_PREVIEW_CHARS = 400
#: How a card names where its label comes from, by ``EffectiveLabels.layer``.
CARD_SOURCES = {HUMAN: "human", ACCEPTED: "machine", PREDICTED: "predicted"}
#: The gallery's title for a lasso or a click (a queue or a search names its own).
SELECTION_TITLE = "Selection"
#: Colour modes whose codes are computed off the main thread (:meth:`AppViewModel.mode_codes`)
#: and the session events after which they are computed again.
COMPUTED_MODES = {"review": (Event.PREDICTIONS,), "agreement": (Event.LABELS, Event.PREDICTIONS),
                  "rule": (Event.LABELS,)}


def agreement_codes(agreement: Any) -> np.ndarray:
    """(N,) uint8 "agreement" codes from the consensus ``agreement`` (share of an item's
    annotators who gave its consensus label; NaN for an item nobody labelled): 0 = none,
    1 + round(agreement * 254) otherwise (1 = nobody agrees, 255 = all agree)."""
    a = np.asarray(agreement, np.float64)
    return np.where(np.isfinite(a), 1 + np.round(np.clip(np.nan_to_num(a), 0, 1) * 254),
                    0).astype(np.uint8)


class AppViewModel:
    """What the app's widgets show of ``session``; computed here, applied by the app.

    Attributes
    ----------
    slots : the classes' colour slots (:class:`~workbench.widgets._palette.ClassSlots`).
    title : the gallery's title for the next selection.
    message : the app's latest message (an export), shown on the status line.
    layers : items per label layer, as last encoded.
    estimate : ``Workbench.estimate()`` as last read, or None.
    """

    def __init__(self, session: SessionView) -> None:
        self.session = session
        self.slots = ClassSlots()
        #: The rule whose votes the "rule" colour mode shows (a rule id; None: the first).
        self.shown_rule: int | None = None
        self.title = SELECTION_TITLE
        #: The queue the gallery shows ("disagreements" makes every label an adjudication),
        #: None for a lasso or a search; ``next_queue`` names the selection about to be made.
        self.queue: str | None = None
        self.next_queue: str | None = None
        self.message = ""
        self.layers: dict[str, int] = {}
        #: The suggested cluster names (:meth:`suggested_names`) once computed, else None.
        self.named: dict[str, Any] | None = None
        self._effective: EffectiveLabels | None = None
        self._thumbs = ThumbnailCache(Path(session.project.cache_dir))
        items = session.items
        self._ids = items["id"].to_list()
        self._id_pos: dict[str, int] | None = None
        self._kinds = items["kind"].to_list()
        self._sources = items["source"].to_list()
        self.estimate = self.read_estimate() if session.predictions is not None else None

    # -- items ----------------------------------------------------------------------------

    def positions(self, items: Any) -> np.ndarray:
        """``items`` (positions, item ids or a mask) as positions, checked."""
        if self._id_pos is None:
            self._id_pos = {i: p for p, i in enumerate(self._ids)}
        return as_positions(items, self.session.n, ids=self._id_pos)

    def take_title(self) -> str:
        """The title for the selection just made; the next one is "Selection" again (and
        :attr:`queue` that of the selection just made, None for the next one)."""
        title, self.title = self.title, SELECTION_TITLE
        self.queue, self.next_queue = self.next_queue, None
        return title

    def thumbnail(self, index: int) -> dict[str, Any]:
        """Hover/gallery preview of one item: image bytes, or its text."""
        kind = self._kinds[index]
        out: dict[str, Any] = {"kind": kind, "label": self._label_text(index)}
        if kind == "image":
            out["data"] = self._thumbs.get(self._ids[index], self._sources[index])
            out["mime"] = self._thumbs.mime
            out["text"] = self._ids[index]
        else:
            out["text"] = self.session.item_text(index)[:TEXT_PREVIEW_CHARS]
        return out

    def describe(self, indices: np.ndarray) -> list[dict[str, Any]]:
        """Gallery cards for ``indices``: label and its source from the effective labels."""
        eff = self.labels_now()
        names = self.session.labels.classes
        cards = []
        for i in np.asarray(indices, dtype=np.int64).tolist():
            source = CARD_SOURCES.get(int(eff.layer[i]), "")
            label = names.get(int(eff.label[i]), "") if source else ""
            kind = self._kinds[i]
            text = (self._ids[i] if kind == "image"
                    else self.session.item_text(i)[:TEXT_PREVIEW_CHARS])
            cards.append({"index": i, "kind": kind, "text": text, "label": label,
                          "source": source if label else ""})
        return cards

    def _label_text(self, i: int) -> str:
        eff = self.labels_now()
        name = self.session.labels.classes.get(int(eff.label[i]))
        if name is None:
            return "unlabelled"
        return name if eff.layer[i] == HUMAN else f"{name} (machine)"

    # -- labels ---------------------------------------------------------------------------

    def label_names(self) -> np.ndarray:
        """(N,) object array: each item's label name (human, else accepted machine label;
        predictions are not labels) or None."""
        names = self.session.labels.classes
        eff = effective_labels(self.session.labels.state)
        return np.array([names.get(int(c)) for c in eff.label], dtype=object)

    def labels_now(self) -> EffectiveLabels:
        """The effective labels as last shown (computed once per refresh, not per card)."""
        if self._effective is None:
            self._effective = effective_labels(self.session.labels.state,
                                               self.session.predictions)
        return self._effective

    def encode_labels(self) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
        """Map codes and palette from the effective labels, which become those shown.

        Returns ``(fields, palette)``: the map's code fields (``human``, ``machine``, with
        predictions also ``predicted`` and ``confidence``) and one dict per class (``id``,
        ``slot``, ``name``, ``color``, ``key``, ``human`` and ``machine`` counts).
        """
        store = self.session.labels
        pred = self.session.predictions
        eff = effective_labels(store.state, pred)
        self._effective = eff
        self.layers = {"human": int((eff.layer == HUMAN).sum()),
                       "accepted": int((eff.layer == ACCEPTED).sum()),
                       "predicted": int((eff.layer == PREDICTED).sum())}
        classes = store.classes
        self.slots.sync(classes)
        human = self.slots.encode(np.where(eff.layer == HUMAN, eff.label, -1))
        machine = self.slots.encode(np.where(eff.is_machine, eff.label, -1))
        fields: dict[str, np.ndarray] = {"human": human, "machine": machine}
        if pred is not None:
            # The predicted and confidence modes show the model itself, accepted or not.
            fields["predicted"] = self.slots.encode(np.asarray(pred.label, dtype=np.int64))
            conf = np.nan_to_num(np.asarray(pred.confidence, dtype=np.float32), nan=-1.0)
            fields["confidence"] = np.where(
                conf >= 0, 1 + np.round(np.clip(conf, 0, 1) * 254), 0
            ).astype(np.uint8)
        return fields, self._palette(classes, human, machine)

    def _palette(self, classes: dict[int, str], human: np.ndarray,
                 machine: np.ndarray) -> list[dict[str, Any]]:
        """Legend, label buttons and gallery choices, with human and machine counts."""
        slots = self.slots.sync(classes)
        size = max(slots.values(), default=0) + 1
        counts_h = np.bincount(human, minlength=size)
        counts_m = np.bincount(machine, minlength=size)
        palette = []
        for k, (cid, name) in enumerate(classes.items(), start=1):
            s = slots[cid]
            palette.append({"id": cid, "slot": s, "name": name, "color": self.slots.color(s),
                            "key": k if k <= MAX_LABEL_KEY else None, "human": int(counts_h[s]),
                            "machine": int(counts_m[s])})
        return palette

    # -- clusters and queues --------------------------------------------------------------

    def cluster_codes(self) -> tuple[np.ndarray, list[tuple[str, int]]]:
        """(N,) uint16 cluster codes (0 = none, k + 1 = cluster k) and the panel's
        ``(text, index)`` options, one per proposed cluster (:meth:`cluster_options`)."""
        clusters = self.session.clusters or []
        codes = np.zeros(self.session.n, np.uint16)
        for k, c in enumerate(clusters):
            codes[np.asarray(c.members, dtype=np.int64)] = min(k + 1, 65535)
        return codes, self.cluster_options()

    def cluster_options(self) -> list[tuple[str, int]]:
        """The cluster list's ``(text, index)`` options: ``"cluster 3 (58 items)"``, with
        its suggested name once known: ``"3. film, director (58 items)"``."""
        names = (self.named or {}).get("fine", {}).get("names") or []
        options = []
        for k, c in enumerate(self.session.clusters or []):
            name = names[k] if k < len(names) else ""
            text = f"{k + 1}. {name}" if name and name != f"cluster {k + 1}" else f"cluster {k + 1}"
            options.append((f"{text} ({c.size} items)", k))
        return options

    def suggested_names(self) -> dict[str, Any] | None:
        """The session's suggested cluster names, fine and coarse, with each group's
        members (worker thread: naming may load a text model); None when the session does
        not name clusters."""
        names = getattr(self.session, "cluster_names", None)
        if not callable(names):
            return None
        members = self.session.cluster_members  # type: ignore[attr-defined]
        return {level: {"names": names(level), "members": members(level)}
                for level in ("fine", "coarse")}

    def name_labels(self, coords: bytes) -> list[dict[str, Any]]:
        """The map's ``cluster_labels`` for its ``coords`` (float32 x, y pairs): each
        suggested name at its group's centre on the map; no coarse names when the coarse
        groups are the fine ones."""
        from ..learn.cluster_levels import name_positions

        if not self.named or not coords:
            return []
        xy = np.frombuffer(coords, np.float32).reshape(-1, 2)
        fine, coarse = self.named["fine"], self.named["coarse"]
        levels = ["fine"] if len(coarse["names"]) == len(fine["names"]) else ["coarse", "fine"]
        out = []
        for level in levels:
            part = self.named[level]
            where = name_positions(xy, part["members"])
            out += [{"x": float(p[0]), "y": float(p[1]), "name": name, "level": level,
                     "size": int(np.asarray(m).size)}
                    for name, m, p in zip(part["names"], part["members"], where, strict=True)]
        return out

    def recolour(self, mode: str, events: Any = None) -> bool:
        """Whether colour mode ``mode`` is computed (:data:`COMPUTED_MODES`) and its codes are
        due: when it is chosen (``events`` None), or after one of its session ``events``."""
        due = COMPUTED_MODES.get(mode)
        return due is not None and (events is None or any(e in due for e in events))

    def mode_codes(self, mode: str) -> dict[str, np.ndarray]:
        """The code field of a computed colour mode (:data:`COMPUTED_MODES`), worker thread."""
        if mode == "rule":
            return {mode: self.rule_codes()}
        return {mode: self.review_codes() if mode == "review" else self.agreement_codes()}

    def rule_codes(self) -> np.ndarray:
        """(N,) uint16 the votes of the rule :attr:`shown_rule` (default the first) as class
        slots, 0 where it abstains or when there is no rule."""
        ids, votes = self.session.rule_votes()
        if not len(ids):
            return np.zeros(self.session.n, np.uint16)
        ids = [int(i) for i in ids]
        col = ids.index(self.shown_rule) if self.shown_rule in ids else 0
        return self.slots.encode(np.asarray(votes[:, col], np.int64))

    def agreement_codes(self) -> np.ndarray:
        """(N,) uint8 per-item agreement of the annotators with the consensus
        (:func:`agreement_codes`; 0 where nobody labelled, or below two classes)."""
        try:
            table = self.session.consensus()
        except ValueError as e:  # fewer than 2 classes: no consensus, nothing to colour
            log.debug("no agreement yet: %s", e)
            return np.zeros(self.session.n, np.uint8)
        return agreement_codes(table["agreement"].to_numpy())

    def review_codes(self) -> np.ndarray:
        """(N,) uint8 review codes, 1 = suggested next, 2 = suspected error (worker thread:
        ranking label issues refits a probe out of fold)."""
        review = np.zeros(self.session.n, np.uint8)
        try:
            review[np.asarray(self.session.suggestions(n=GALLERY_PAGE_SIZE, claim=False),
                              np.int64)] = 1
            review[np.asarray(self.session.suspected_errors(n=GALLERY_PAGE_SIZE), np.int64)] = 2
        except Exception as e:  # queues need predictions; before those there is no review
            log.debug("review queues not available yet: %s", e)
        return review

    def error_queue(self, n: int) -> np.ndarray:
        """Positions of the ``n`` human labels that look most wrong (worker thread)."""
        return np.asarray(self.session.suspected_errors(n=n), np.int64)

    # -- status ---------------------------------------------------------------------------

    def read_estimate(self) -> Any:
        """``Workbench.estimate()`` when the session has one and it answers, else None."""
        estimate = getattr(self.session, "estimate", None)
        if not callable(estimate):
            return None
        try:
            return estimate()
        except Exception as e:  # no figure beats a wrong one
            log.info("workbench: no accuracy estimate: %s", e)
            return None

    def status_line(self, *, selected: int, running: list[str]) -> str:
        """The status line (see :func:`~workbench.widgets.panel.format_status`)."""
        return format_status(
            self.session.status, selected=selected, estimate=self.estimate,
            layers=self.layers, running=running, message=self.message,
        )

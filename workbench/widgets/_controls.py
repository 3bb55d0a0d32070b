"""The app's controller: what each panel click, number key and gallery action does.

Every input becomes an action, a message ``{"type": ..., ...}``: key presses and gallery
clicks arrive as such from the widgets (validated there), a panel button names its action
in :data:`BUTTONS`. :class:`AppControls` looks the type up in one dispatch table of small
methods, which call the app's public methods (the same a notebook cell calls) or the
session.

While the gallery shows the disagreements queue, every label given from the app (a number
key, "label", a card's class) is an adjudication (:meth:`AppControls.label`): logged with
source "adjudicated", final for the consensus. Any other selection ends it.

Errors follow the app's one policy (see :mod:`workbench.widgets.app`): the error line is
cleared before each action and shows why it failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from .._config import GALLERY_PAGE_SIZE
from ._contract import SessionView
from ._threads import OffMainThread

if TYPE_CHECKING:
    from .app import WorkbenchApp

__all__ = ["BUTTONS", "AppControls"]

log = logging.getLogger("workbench.widgets")

#: Panel buttons (:class:`~workbench.widgets.panel.ControlPanel` attributes) and the action
#: each click asks for.
BUTTONS = {
    "create": "create_class",
    "label_picked": "label_picked",
    "rename": "rename_class",
    "merge": "merge_classes",
    "delete": "delete_class",
    "unlabel": "remove_labels",
    "undo": "undo",
    "redo": "redo",
    "search": "search",
    "more_like_this": "more_like_this",
    "select_cluster": "select_cluster",
    "label_cluster": "label_cluster",
    "queue_next": "queue_next",
    "queue_errors": "queue_errors",
    "queue_disagreements": "queue_disagreements",
    "clear": "clear_selection",
    "export": "export",
    "accept": "accept_predictions",
}


class AppControls:
    """Connects the panel to ``app`` and runs every action, through :meth:`run`."""

    def __init__(self, app: WorkbenchApp) -> None:
        self.app = app
        self.session: SessionView = app.session
        self.panel = app.panel
        #: What each action type does; each handler takes the action's message.
        self.handlers: dict[str, Callable[[dict[str, Any]], None]] = {
            # keys (map, gallery, the panel's class buttons) and gallery cards
            "label_key": self.label_key,
            "remove_labels": self.remove_labels,
            "undo": self.undo,
            "redo": self.redo,
            "drop": self.drop,
            "relabel": self.relabel,
            # panel buttons only
            "create_class": self.create_class,
            "label_picked": self.label_picked,
            "rename_class": self.rename_class,
            "merge_classes": self.merge_classes,
            "delete_class": self.delete_class,
            "search": self.search,
            "more_like_this": self.more_like_this,
            "select_cluster": self.select_cluster,
            "label_cluster": self.label_cluster,
            "queue_next": self.queue_next,
            "queue_errors": self.queue_errors,
            "queue_disagreements": self.queue_disagreements,
            "clear_selection": self.clear_selection,
            "export": self.export,
            "accept_predictions": self.accept_predictions,
            "set_annotator": self.set_annotator,
        }

    def connect(self) -> None:
        """Wire the panel's buttons (and its class buttons) to their actions."""
        for button, kind in BUTTONS.items():
            getattr(self.panel, button).on_click(partial(self._clicked, {"type": kind}))
        self.panel.on_label(lambda key: self.attempt({"type": "label_key", "key": key}))
        self.panel.query.continuous_update = False
        # Who labels: shown, and settable (a shared screen, an adjudicator taking over).
        self.panel.annotator.value = self.session.annotator
        self.panel.annotator.observe(
            lambda change: self.attempt({"type": "set_annotator", "name": change["new"]}),
            names="value")
        self.session.subscribe(self._show_annotator)
        # Suggested cluster names: computed off the main thread, then on the map and in the
        # cluster list; picking a cluster offers its name as the class name.
        self._suggested = ""
        self.names = OffMainThread(self.app.view.suggested_names, self._show_names,
                                   loop=getattr(self.app, "_loop", None),
                                   on_error=self._names_failed, name="workbench-cluster-names")
        self.panel.cluster_pick.observe(self._offer_name, names="value")
        self.app.map.observe(self._place_names, names="coords")
        self.app.map.when_shown(self.names.submit)  # a script that never shows it: no work

    def _show_annotator(self, event: str) -> None:
        """Keep the annotator field true when the notebook sets ``wb.annotator``."""
        if event == "status" and self.panel.annotator.value != self.session.annotator:
            self.panel.annotator.value = self.session.annotator

    def set_annotator(self, action: dict[str, Any]) -> None:
        if action["name"].strip() != self.session.annotator:
            self.session.annotator = action["name"]

    # -- suggested cluster names ----------------------------------------------------------

    def _show_names(self, named: dict[str, Any] | None) -> None:
        """Names arrived: on the map, in the cluster list, offered for the picked cluster.
        The proposed clusters never change in a session: the worker is done."""
        self.names.close()
        if named is None:
            return
        self.app.view.named = named
        self.panel.set_clusters(self.app.view.cluster_options())
        self._place_names()
        self._offer_name()

    def _place_names(self, change: Any = None) -> None:
        self.app.map.cluster_labels = self.app.view.name_labels(self.app.map.coords)

    def _names_failed(self, e: BaseException) -> None:
        self.names.close()
        log.warning("workbench: naming the clusters failed: %s", e, exc_info=e)
        self.panel.show_error(f"cluster names failed: {e}")

    def suggested_name(self, cluster: int) -> str:
        """The suggested name of proposed cluster ``cluster`` ("" until names are known)."""
        names = (self.app.view.named or {}).get("fine", {}).get("names") or []
        name = names[cluster] if 0 <= cluster < len(names) else ""
        return "" if name == f"cluster {cluster + 1}" else name

    def _offer_name(self, change: Any = None) -> None:
        """Put the picked cluster's suggested name in the class-name field, unless the
        person typed a name of their own there (the field is empty or holds the name
        offered before)."""
        k = self.panel.cluster_pick.value
        name = self.suggested_name(int(k)) if k is not None else ""
        if not name or self.panel.class_name.value.strip() not in ("", self._suggested):
            return
        self.panel.class_name.value = self._suggested = name

    # -- the error policy -----------------------------------------------------------------

    def run(self, action: dict[str, Any]) -> None:
        """Clear the error line and the app's message, do ``action``; a failure is shown
        on the error line and raised (the widget that sent it answers the browser)."""
        self.panel.show_error("")
        self.app.view.message = ""
        handler = self.handlers.get(action["type"])
        try:
            if handler is not None:
                handler(action)
        except Exception as e:
            self.panel.show_error(str(e))
            raise

    def attempt(self, action: dict[str, Any]) -> None:
        """:meth:`run` for a panel click: the failure is shown and logged, not raised."""
        try:
            self.run(action)
        except Exception as e:  # the person sees why; the kernel keeps running
            log.info("workbench action failed: %s", e)

    def _clicked(self, action: dict[str, Any], _button: Any) -> None:
        self.attempt(action)

    # -- what the panel's fields name -----------------------------------------------------

    def typed_name(self) -> str:
        name = self.panel.class_name.value.strip()
        if not name:
            raise ValueError("type a class name first")
        return name

    def picked_name(self) -> str:
        cid = self.panel.class_pick.value
        if cid is None:
            raise ValueError("pick a class first")
        return self.session.labels.classes[cid]

    def picked_cluster(self) -> int:
        if self.panel.cluster_pick.value is None:
            raise ValueError("no clusters proposed yet")
        return int(self.panel.cluster_pick.value)

    # -- actions --------------------------------------------------------------------------

    @property
    def adjudicating(self) -> bool:
        """True while the gallery shows the disagreements queue: labels are decisions."""
        return self.app.view.queue == "disagreements"

    def label(self, items: np.ndarray, name: str) -> None:
        """Label ``items`` with ``name``: an adjudication (``Workbench.adjudicate``) while
        :attr:`adjudicating`, else an annotation (``Workbench.label``)."""
        if self.adjudicating:
            self.session.adjudicate(items, name)
        else:
            self.session.label(items, name)

    def label_key(self, action: dict[str, Any]) -> None:
        self.app.label_key(action["key"])

    def remove_labels(self, action: dict[str, Any]) -> None:
        self.app.remove_labels()

    def undo(self, action: dict[str, Any]) -> None:
        self.session.undo()

    def redo(self, action: dict[str, Any]) -> None:
        self.session.redo()

    def drop(self, action: dict[str, Any]) -> None:
        """Take one gallery card's item out of the selection (the gallery still shows the
        same queue, under the same title)."""
        sel = self.app.selection
        if (sel == action["index"]).any():  # a change: the selection event takes these
            view = self.app.view
            view.next_queue, view.title = view.queue, self.app.gallery.title
            self.app.selection = sel[sel != action["index"]]

    def relabel(self, action: dict[str, Any]) -> None:
        """Label one gallery card's item with the class in colour ``slot`` (0: remove)."""
        slot = action["slot"]
        if slot == 0:
            self.session.remove_labels([action["index"]])
            return
        cid = self.app.view.slots.class_of_slot(slot)
        if cid is None:
            raise ValueError(f"no class in colour slot {slot}")
        self.label(np.array([action["index"]]), self.session.labels.classes[cid])

    def create_class(self, action: dict[str, Any]) -> None:
        self.session.create_class(self.typed_name())

    def label_picked(self, action: dict[str, Any]) -> None:
        self.app.label(self.picked_name())

    def rename_class(self, action: dict[str, Any]) -> None:
        self.session.rename_class(self.picked_name(), self.typed_name())

    def merge_classes(self, action: dict[str, Any]) -> None:
        self.session.merge_classes([self.picked_name()], self.typed_name())

    def delete_class(self, action: dict[str, Any]) -> None:
        self.session.delete_class(self.picked_name())

    def search(self, action: dict[str, Any]) -> None:
        self.app.search(self.panel.query.value)

    def more_like_this(self, action: dict[str, Any]) -> None:
        self.app.more_like_this()

    def select_cluster(self, action: dict[str, Any]) -> None:
        self.app.select_cluster(self.picked_cluster())

    def label_cluster(self, action: dict[str, Any]) -> None:
        self.app.label_cluster(self.picked_cluster(), self.typed_name())

    def queue_next(self, action: dict[str, Any]) -> None:
        self.app.show_queue("next")

    def queue_errors(self, action: dict[str, Any]) -> None:
        self.app.show_queue("errors")

    def queue_disagreements(self, action: dict[str, Any]) -> None:
        """Select the items an adjudicator should look at: conflicting labels, or a
        consensus unlikely to be right (flagged), the least sure consensus first, leaving
        out what was adjudicated already. Labelling them is adjudicating (:meth:`label`)."""
        import polars as pl

        table = self.session.consensus().with_row_index("position")
        worst = table.filter((pl.col("flagged") | (pl.col("agreement") < 1))
                             & ~pl.col("adjudicated")).sort("quality")
        items = worst["position"].to_numpy().astype(np.int64)[:GALLERY_PAGE_SIZE]
        self.app.view.title = (f"Disagreements: {worst.height} items, the least sure "
                               "consensus first; a label here is the adjudicator's decision"
                               if worst.height else "Disagreements: none")
        self.app.view.next_queue = "disagreements"
        self.app.selection = items
        if self.app.view.next_queue is not None:  # the same selection as before: no event
            self.app.gallery.show(self.app.selection, title=self.app.view.take_title())

    def clear_selection(self, action: dict[str, Any]) -> None:
        self.app.selection = []

    def export(self, action: dict[str, Any]) -> None:
        self.app.export()

    def accept_predictions(self, action: dict[str, Any]) -> None:
        self.app.accept_predictions()

"""What a click on the app asks for, as methods a notebook cell can call too: accept
predictions, export, select a cluster or label it, more like this, text search, and the
queues. :class:`~workbench.widgets.app.WorkbenchApp` mixes these in; they use its
``session``, ``selection``, ``view``, ``panel`` and its background jobs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .._config import GALLERY_PAGE_SIZE

__all__ = ["AppVerbs"]


class AppVerbs:
    """The app's verbs beyond labelling (see :mod:`workbench.widgets._app_verbs`)."""

    def accept_predictions(self, items: Any = None, *, min_confidence: float = 0.0) -> int:
        """Record the predictions of ``items`` (default the selection) as machine labels,
        in one session call (one action to undo); returns how many were recorded."""
        idx = self._items_or_selection(items)
        if idx.size == 0:
            raise ValueError("nothing to accept: select items first")
        count = int(self.session.accept_predictions(idx, min_confidence=min_confidence))
        self._say(f"accepted {count} predictions")
        return count

    def export(self, path: str | Path | None = None, **options: Any) -> Path:
        """Export the labels with ``Workbench.export`` (``options`` go to it); the status
        line says where, or why it failed.

        Default ``path``: ``<project>-labels.parquet`` beside the project folder (exports
        never go inside it), replaced by each export from the button.
        """
        if path is None:
            folder = Path(self.session.project.path)
            target = folder.parent / f"{folder.name}-labels.parquet"
            if target.exists() and not target.is_file():
                # Only our own file is replaced: a folder in the way is the person's.
                self._say(f"export failed: {target} exists and is not a file; move it or "
                          "export elsewhere (app.export(path))")
                raise FileExistsError(self.view.message)
            options.setdefault("overwrite", True)
        else:
            target = Path(path)
        try:
            out = Path(self.session.export(target, **options))
        except Exception as e:
            self._say(f"export failed: {e}")
            raise
        self._say(f"exported to {out}")
        return out

    def select_cluster(self, index: int, *, core: bool = False) -> None:
        """Select the members of proposed cluster ``index`` (with ``core``, only its most
        typical half: where clusters mix is the outskirts)."""
        clusters = self.session.clusters or []
        if not 0 <= index < len(clusters):
            raise IndexError(f"cluster {index} does not exist; there are {len(clusters)}")
        c = clusters[index]
        self.selection = np.asarray(c.core() if core else c.members)

    def label_cluster(self, index: int, name: str) -> None:
        """Label every member of proposed cluster ``index`` with ``name``."""
        self.select_cluster(index)
        self.label(name)

    def more_like_this(self, k: int = 50) -> None:
        """Select the items most like the current selection."""
        if self.selection.size == 0:
            raise ValueError("select an item first, then ask for more like it")
        self.selection = self.session.more_like_this(self.selection, k=k)

    def search(self, query: str, k: int = 100) -> None:
        """Select the items that best match a text query (CLIP text tower)."""
        if not query.strip():
            raise ValueError("type something to search for")
        self.view.title = f"Search: {query}"
        self.selection = self.session.text_search(query, k=k)

    def show_queue(self, which: str, n: int = GALLERY_PAGE_SIZE) -> None:
        """Select and review a queue: ``"next"`` (label next) or ``"errors"``.

        "next" selects the typical core of the cluster worth labelling as a whole
        (``Workbench.next_cluster``, also picked in the cluster list; a number key names
        the selection), or, when single items are worth more, a page of suggestions.
        "errors" ranks the human labels with an out-of-fold probe: that fit runs in a
        worker thread and the selection follows when it is done (:meth:`wait` blocks).
        """
        if which == "next":
            cluster = self.session.next_cluster()
            if cluster is not None:
                items = cluster.core()
                title = (f"Label next: cluster {cluster.id + 1}, its {items.size} most "
                         "typical items")
                self.panel.cluster_pick.value = cluster.id
            else:
                items, title = self.session.suggestions(n=n), "Label next"
        elif which == "errors":
            self._errors_queue.submit(n)
            self._refresh_status()
            return
        else:
            raise ValueError(f"queue must be 'next' or 'errors', not {which!r}")
        self.view.title = title
        self.selection = items

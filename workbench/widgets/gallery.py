"""The gallery: the items of a selection or a queue as paged cards.

The Python side decides which items are on the current page (``cards``, plain JSON:
index, kind, text, label, label source); thumbnails are fetched on demand as binary, as
in the map. A card can be relabelled on its own (``relabel``) or taken out of the
selection (``drop``); number keys label everything that is left (``label_key``). A filter
(the filter charts' mask, :meth:`Gallery.set_filter`) narrows what it pages through to the
items it keeps, and the title says how many it hides.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anywidget
import numpy as np
import traitlets

from .._config import GALLERY_PAGE_SIZE
from ._bundle import bundle
from ._contract import GALLERY_BROWSER_SETS, GALLERY_MESSAGES, KEY_ACTIONS, MAX_LABEL_KEY
from ._messages import MessageReplies
from ._positions import as_position, as_positions

__all__ = ["Gallery"]

log = logging.getLogger("workbench.widgets")

#: Actions a card or a key press asks the app to perform.
ACTIONS = (*KEY_ACTIONS, "relabel", "drop")


class Gallery(MessageReplies, anywidget.AnyWidget):
    """Paged cards of some items.

    Parameters
    ----------
    describe : ``fn(indices) -> list[dict]`` giving one card per index with keys
        ``index``, ``kind``, ``text``, ``label``, ``source``.
    thumbnail : ``fn(index) -> dict`` as for :class:`~workbench.widgets.scatter.ScatterMap`.
    on_action : ``fn(message)`` for ``label_key`` (``key``), ``remove_labels``, ``undo``,
        ``redo``, ``relabel`` (``index``, ``slot``; slot 0 removes the label) and ``drop``
        (``index``), called after validation.
    page_size : cards per page (default ``GALLERY_PAGE_SIZE``).
    n : number of items in the collection, when known: positions are checked against it
        (without it, only that they are whole and not negative; a mask needs it).

    The browser sets only ``page`` (kept within the pages there are).

    Attributes
    ----------
    total : items shown (over all pages); hidden : items given that the filter hides.
    """

    _what = "gallery"
    _browser_sets = GALLERY_BROWSER_SETS

    _esm = bundle("gallery")

    cards = traitlets.List(traitlets.Dict()).tag(sync=True)
    classes = traitlets.List(traitlets.Dict()).tag(sync=True)
    page = traitlets.Int(0).tag(sync=True)
    pages = traitlets.Int(0).tag(sync=True)
    total = traitlets.Int(0).tag(sync=True)
    hidden = traitlets.Int(0).tag(sync=True)
    title = traitlets.Unicode("Selection").tag(sync=True)

    def __init__(
        self,
        *,
        describe: Callable[[np.ndarray], list[dict[str, Any]]],
        thumbnail: Callable[[int], dict[str, Any]] | None = None,
        on_action: Callable[[dict[str, Any]], None] | None = None,
        page_size: int = GALLERY_PAGE_SIZE,
        n: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._limit = int(n) if n is not None else int(np.iinfo(np.int64).max)
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1, not {page_size}")
        self.page_size = int(page_size)
        self._describe = describe
        self._thumbnail = thumbnail
        self._on_action = on_action
        self._items = np.zeros(0, np.int64)
        self._given = self._items  # as given to show(); _items is what the filter keeps
        self._keep: np.ndarray | None = None
        self.on_msg(self._on_custom_msg)
        self.observe(self._on_page, names="page")

    @property
    def items(self) -> np.ndarray:
        """(K,) int64 positions shown, over all pages (those the filter keeps)."""
        return self._items.copy()

    def set_filter(self, keep: Any) -> None:
        """Page through only the items where ``keep``, an (N,) boolean mask, is True (None:
        every item given to :meth:`show`); the current page is kept where it still exists."""
        if keep is not None:
            keep = np.asarray(keep)
            if self._limit == np.iinfo(np.int64).max:
                raise ValueError("a gallery filters only with its number of items known: "
                                 "pass n= when creating it")
            if keep.dtype != bool or keep.shape != (self._limit,):
                raise ValueError(f"the gallery's filter must be an ({self._limit},) boolean "
                                 f"mask, got {keep.dtype} of shape {keep.shape}")
        self._keep = keep
        self._paginate(self.page)

    def show(self, items: Any, *, title: str | None = None, page: int = 0) -> None:
        """Show ``items`` (positions, see
        :func:`~workbench.widgets._positions.as_positions`), starting at ``page``."""
        self._given = as_positions(items, self._limit)
        if title is not None:
            self.title = title
        self._paginate(page)

    def _paginate(self, page: int) -> None:
        """Apply the filter to the items given and show ``page`` of what it keeps."""
        given, keep = self._given, self._keep
        self._items = given[keep[given]] if keep is not None and given.size else given
        self.hidden = int(given.size - self._items.size)
        self.total = int(self._items.size)
        self.pages = -(-self.total // self.page_size)
        page = min(max(page, 0), max(self.pages - 1, 0))
        if page == self.page:
            self.refresh()
        else:
            self.page = page  # the observer refreshes

    def refresh(self) -> None:
        """Rebuild the cards of the current page (after labels changed)."""
        start = self.page * self.page_size
        shown = self._items[start:start + self.page_size]
        self.cards = self._describe(shown) if shown.size else []

    @traitlets.validate("page")
    def _valid_page(self, proposal: dict[str, Any]) -> int:
        # Past either end (a stale "next" click, a page from another view): the nearest page.
        return min(max(int(proposal["value"]), 0), max(self.pages - 1, 0))

    def _on_page(self, change: dict[str, Any]) -> None:
        self.refresh()

    def _on_custom_msg(self, widget: Any, content: Any, buffers: list[Any]) -> None:
        if not isinstance(content, dict) or not isinstance(content.get("type"), str):
            self._reject(content, "a message must be an object with a string 'type'")
            return
        kind = content["type"]
        if kind not in GALLERY_MESSAGES:
            self._reject(content, f"unknown message type {kind!r}")
            return
        action: dict[str, Any] = {"type": kind}
        if kind in ("thumb", "relabel", "drop"):
            idx = content.get("index")
            try:
                pos = as_position(idx, self._limit)
            except (ValueError, IndexError):
                pos = -1
            if pos < 0 or not np.any(self._items == pos):
                self._reject(content, f"index {idx!r} is not an item shown in the gallery")
                return
            action["index"] = pos
        if kind == "label_key":
            key = content.get("key")
            if isinstance(key, bool) or not isinstance(key, int) or not 1 <= key <= MAX_LABEL_KEY:
                self._reject(content, f"label_key needs a key from 1 to {MAX_LABEL_KEY}, got {key!r}")
                return
            action["key"] = key
        if kind == "relabel":
            slot = content.get("slot")
            if isinstance(slot, bool) or not isinstance(slot, int) or slot < 0:
                self._reject(content, f"relabel needs a class slot >= 0, got {slot!r}")
                return
            action["slot"] = slot
        if kind == "thumb":
            self._send_thumb(content, action["index"], with_text=False)
            return
        self._dispatch(action, content)

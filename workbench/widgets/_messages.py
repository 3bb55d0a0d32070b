"""What the widgets share for input from the browser: an error for a rejected message or
trait value, a thumbnail on request."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import traitlets

log = logging.getLogger(__name__)

#: Characters of a refused value kept in a log line (a selection buffer may be megabytes).
_LOGGED_CHARS = 120


def _short(value: Any) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    text = repr(value)
    return text if len(text) <= _LOGGED_CHARS else text[:_LOGGED_CHARS] + "..."


class MessageReplies:
    """Mixin for an anywidget that answers custom messages.

    The widget sets ``_what`` (its name in logs and errors), ``_thumbnail`` (a callable
    ``index -> {"kind", "mime", "data", "text", "label"}``, or None) and
    ``_browser_sets``, the traits its front end may change. Trait values from the browser
    are input like messages: any other trait, or a value its validator refuses, is
    logged, answered with an ``error`` message and sent back as it was (no state change).
    """

    _what = "widget"
    _browser_sets: tuple[str, ...] = ()
    _thumbnail: Callable[[int], dict[str, Any]] | None = None
    _on_action: Callable[[dict[str, Any]], None] | None = None

    def _dispatch(self, action: dict[str, Any], content: Any) -> None:
        """Hand a validated ``action`` to the session; a failure is reported, not raised."""
        if self._on_action is None:
            self._reject(content, f"this {self._what} is not connected to a session")
            return
        try:
            self._on_action(action)
        except Exception as e:  # shown to the user; the kernel keeps running
            log.exception("%s widget: action %s failed", self._what, action)
            self._reject(content, f"{action['type']} failed: {e}")

    def set_state(self, sync_data: dict[str, Any]) -> None:
        """Trait values from the browser: each is applied, or refused and reverted alone."""
        for name, value in sync_data.items():
            if name not in self._browser_sets:
                self._refuse_state(name, value, f"the browser cannot set {name!r}")
                continue
            try:
                super().set_state({name: value})  # type: ignore[misc]
            except (traitlets.TraitError, ValueError, TypeError) as e:
                self._refuse_state(name, value, str(e))

    def _refuse_state(self, name: str, value: Any, reason: str) -> None:
        log.error("%s widget: refused %s = %s from the browser: %s",
                  self._what, name, _short(value), reason)
        self._send_msg({"type": "error", "message": f"{name} not changed: {reason}"})
        if name in self.keys:  # type: ignore[attr-defined]
            self.send_state(name)  # type: ignore[attr-defined]  # the browser shows ours again

    def _send_msg(self, msg: dict[str, Any], buffers: list[bytes] | None = None) -> int:
        """Send ``msg`` with binary ``buffers``; return the bytes it costs on the wire."""
        self.send(msg, buffers=buffers or [])
        return len(json.dumps(msg)) + sum(len(b) for b in buffers or [])

    def _reject(self, content: Any, reason: str) -> None:
        """Log a message we will not act on and tell the front end why (no state change)."""
        log.error("%s widget: rejected message %s: %s", self._what, _short(content), reason)
        reply: dict[str, Any] = {"type": "error", "message": reason}
        if isinstance(content, dict) and isinstance(content.get("id"), str):
            reply["id"] = content["id"]
        self._send_msg(reply)

    def _send_thumb(self, content: dict[str, Any], index: int, *, with_text: bool = True) -> None:
        """Answer a ``thumb`` request for item ``index`` (image bytes as a buffer)."""
        if not isinstance(content.get("id"), str):
            self._reject(content, "a thumb request needs a string 'id' for the reply")
            return
        if self._thumbnail is None:
            self._reject(content, f"no thumbnails in this {self._what}")
            return
        try:
            t = self._thumbnail(index)
        except Exception as e:  # a broken file shows as "no preview", not a kernel error
            log.warning("thumbnail of item %d failed: %s", index, e)
            self._send_msg({"type": "thumb", "id": content["id"], "index": index,
                            "kind": "error", "text": f"no preview: {e}"})
            return
        data = t.get("data")
        msg = {"type": "thumb", "id": content["id"], "index": index,
               "kind": str(t.get("kind", "")), "mime": str(t.get("mime", "")),
               "text": str(t.get("text", "")) if with_text else "",
               "label": str(t.get("label", "")) if with_text else ""}
        self._send_msg(msg, [data] if data else [])

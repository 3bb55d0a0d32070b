"""The widgets' wire without a browser: a comm whose far end is a list, and messages
delivered as the front end sends them."""

from __future__ import annotations

from comm.base_comm import BaseComm


class RecordingComm(BaseComm):
    """A comm whose far end is a list: every message published is kept."""

    def __init__(self, **kwargs):
        self.sent: list[tuple[str, dict, list]] = []
        super().__init__(**kwargs)

    def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
        self.sent.append((msg_type, data or {}, [bytes(b) for b in buffers or []]))


def browser_says(widget, content, buffers=()):
    """Deliver a message as the front end would: a comm message with method "custom"."""
    widget.comm.handle_msg({"content": {"data": {"method": "custom", "content": content}},
                            "buffers": list(buffers)})


def custom_messages(widget):
    """The custom messages ``widget`` sent to the browser: (content, buffers) pairs."""
    return [(d["content"], b) for kind, d, b in widget.comm.sent
            if kind == "comm_msg" and d.get("method") == "custom"]

"""Joining a Ray cluster, for the optional Ray engines of the embedding
(:mod:`workbench.embed.ray_engine`) and of the neighbour graph (:mod:`workbench.neighbors._ray`).

``address=None`` lets ``ray.init()`` choose (``RAY_ADDRESS``, a running local
cluster, else a new local one), except that a local cluster Ray remembers
(``/tmp/ray/ray_current_cluster``) but that no longer answers is passed over for a new
local one: ``ray.init`` would otherwise try the dead address for minutes. A process
already connected keeps its connection. Ray is
joined with ``ignore_reinit_error=True, log_to_driver=False`` and never shut down here: a
cluster this module did not start stays up, and one ``ray.init()`` started ends with the
process.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from ._config import RAY_CONNECT_SECONDS

__all__ = ["ENGINES", "INSTALL_HINT", "check_engine", "connect", "import_ray"]

log = logging.getLogger(__name__)

#: How to install the optional dependency, quoted by every error about it.
INSTALL_HINT = "pip install 'workbench[ray]'"

#: Where the embedding and the neighbour graph run: this process, or a Ray cluster.
ENGINES = ("local", "ray")


def check_engine(engine: str) -> str:
    """``engine`` if it is one of :data:`ENGINES`, else a ValueError naming them (the same
    words for the embedding and the graph)."""
    if engine not in ENGINES:
        raise ValueError(
            f"engine must be one of {', '.join(map(repr, ENGINES))}, not {engine!r}")
    return engine


def connect(address: str | None = None):
    """The ``ray`` module, connected to the cluster at ``address`` (see the module notes).

    Parameters
    ----------
    address : ``"host:port"`` of a Ray head (or ``"ray://host:port"``, ``"auto"``,
        ``"local"``); None lets ``ray.init()`` choose.

    Raises
    ------
    ImportError
        Ray is not installed (the message says ``pip install 'workbench[ray]'``).
    ConnectionError
        ``address`` (or ``RAY_ADDRESS`` when ``address`` is None) names a host and port
        that do not answer within :data:`RAY_CONNECT_SECONDS`.
    """
    ray = import_ray(data=False)
    target = address if address is not None else os.environ.get("RAY_ADDRESS")
    _check_reachable(target)
    if ray.is_initialized():
        return ray
    if not target:
        last = _remembered_cluster()
        err = _unreachable(last)
        if err is not None:
            log.warning("the local Ray cluster last started at %s does not answer (%s): "
                        "starting a new local one", last, err)
            address = "local"
    ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    return ray


def _remembered_cluster() -> str | None:
    """The address of the last local cluster ``ray start`` recorded, if any (the one
    ``ray.init()`` joins when given no address)."""
    try:
        from ray._private.services import find_bootstrap_address
    except ImportError:  # another Ray layout: let ray.init() decide alone
        return None
    try:
        return find_bootstrap_address(None)
    except Exception:  # an unreadable record: the same
        return None


def _unreachable(address: str | None) -> OSError | None:
    """Why nobody answers a TCP connection to ``address`` when it is a host and port
    (within :data:`RAY_CONNECT_SECONDS`); None when it answers or is another form."""
    host_port = _host_port(address)
    if host_port is None:
        return None
    try:
        with socket.create_connection(host_port, timeout=RAY_CONNECT_SECONDS):
            return None
    except OSError as err:
        return err


def _check_reachable(address: str | None) -> None:
    """ConnectionError, at once, when ``address`` is a host and port nobody answers on."""
    err = _unreachable(address)
    if err is not None:
        raise ConnectionError(
            f"cannot reach the Ray cluster at {address!r} ({err}); start one with "
            "`ray start --head` and pass the address it prints (host:port), or pass "
            "address=None to let ray.init() start a local one"
        ) from err


def _host_port(address: str | None) -> tuple[str, int] | None:
    """(host, port) of ``"host:port"`` or ``"ray://host:port"``; None for other forms."""
    if not address:
        return None
    rest = address.split("://", 1)[-1]
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def import_ray(*, data: bool = True) -> Any:
    """The ``ray`` module (with Ray Data unless ``data=False``); ImportError saying how to
    install it otherwise."""
    what = "Ray Data" if data else "Ray"
    try:
        import ray

        if data:
            import ray.data  # pyarrow and pandas come with the [data] extra
    except ImportError as err:
        raise ImportError(
            f"engine='ray' needs {what}, which is not installed ({err}): {INSTALL_HINT}"
        ) from err
    return ray

"""uvicorn HTTP protocols that hand each request its connection's transport, with TCP_NODELAY.

The transport (under ``scope["extensions"][TRANSPORT_KEY]``) is how the app resets a connection
without answering (the ``reset_*`` faults). httptools' C parser is used when it is installed
(it halves the per-request cost); uvicorn's pure-Python h11 protocol otherwise.

Example:
    >>> protocol_class().__name__ in ("TransportAwareHttpTools", "TransportAwareH11")
    True
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
from collections.abc import Awaitable, Callable
from typing import Any, Final, cast

from uvicorn.protocols.http.h11_impl import H11Protocol

#: Key under ``scope["extensions"]`` where the protocol puts the connection's transport.
TRANSPORT_KEY: Final = "prefect_flux_erase.transport"

ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]


def _nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # uvicorn writes headers and body separately: without TCP_NODELAY, Nagle's algorithm
        # and the client's delayed ACK add ~40 ms to every reply.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _with_transport(inner: ASGIApp, transport: asyncio.BaseTransport) -> ASGIApp:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        scope.setdefault("extensions", {})[TRANSPORT_KEY] = transport
        await inner(scope, receive, send)

    return app


class TransportAwareH11(H11Protocol):
    """uvicorn's h11 protocol, plus TCP_NODELAY and the transport in every request's scope.

    Example:
        ```python
        uvicorn.Config(app, http=TransportAwareH11)  # the fallback when httptools is missing
        ```
    """

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        _nodelay(transport)
        super().connection_made(cast(asyncio.Transport, transport))
        self.app = _with_transport(self.app, transport)


@functools.cache
def protocol_class() -> type[asyncio.Protocol]:
    """The fastest available transport-aware protocol class for ``uvicorn.Config(http=...)``."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - httptools is a dependency, but keep working
        return TransportAwareH11

    class TransportAwareHttpTools(HttpToolsProtocol):
        """uvicorn's httptools protocol, plus TCP_NODELAY and the transport in the scope."""

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            _nodelay(transport)
            super().connection_made(cast(asyncio.Transport, transport))
            self.app = _with_transport(self.app, transport)

    return TransportAwareHttpTools

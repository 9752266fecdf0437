"""The client's HTTP over ``aiohttp``: API POSTs and output downloads, errors in the client's tree.

One session per client (per event loop) carries both. httpx spends ~1.3 ms of CPU on a GET
from a fresh pool and ~3 ms from a warm one (its pool checks every idle connection for
readability on each request); aiohttp spends ~0.45 ms and ~0.1 ms. On the API's batched POSTs
the gap is as wide: a 32-task POST with inline 256x256 inputs and results cost ~3-4 ms of CPU
over httpx against ~1.5 ms over aiohttp, and ~70 against ~43 ms with ~2 MP images (httpx reads
a body in 64 kB chunks through anyio). Measured side by side here (issue 16). httpx stays for
one purpose: an injected ``httpx`` transport, how tests reach faults no real server produces.

Faults are classified the same way for both: no answer (reset, timeout, broken body) is a
:class:`~prefect_flux_erase.runware.errors.TransportError` (transient), a URL that cannot be
fetched is a permanent ``invalidURL``; the HTTP status of an answer is the caller's to judge.
The API key travels only in the headers of :meth:`Downloads.post` (never a session default),
so a download never carries it.

Example:
    ```python
    downloads = Downloads(timeout=httpx.Timeout(120.0, connect=10.0), max_connections=32,
                          user_agent="prefect-flux-erase")
    status, reason, retry_after, body = await downloads.get("https://im.runware.ai/image/x.jpg")
    await downloads.aclose()
    ```
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import aiohttp.helpers
import httpx
import yarl

from prefect_flux_erase.runware.errors import PermanentError, TransportError
from prefect_flux_erase.runware.tls import shared_ssl_context

# aiohttp >= 3.10 raises NonHttpUrlClientError for ftp:// and the like; older ones InvalidURL.
_UNFETCHABLE: tuple[type[BaseException], ...] = tuple(
    cls
    for cls in (aiohttp.InvalidURL, getattr(aiohttp, "NonHttpUrlClientError", None), ValueError)
    if isinstance(cls, type)
)
# A connect timeout reached no server, unlike a slow answer (aiohttp >= 3.10 tells them apart).
_CONNECT_TIMEOUT: tuple[type[BaseException], ...] = tuple(
    cls for cls in (getattr(aiohttp, "ConnectionTimeoutError", None),) if isinstance(cls, type)
)


@dataclass(frozen=True)
class Download:
    """An HTTP answer to a download: status, reason phrase, ``Retry-After`` and body.

    Example:
        >>> Download(200, "OK", None, b"jpeg").ok
        True
    """

    status: int
    reason: str
    retry_after: str | None
    body: bytes

    @property
    def ok(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status < 300


class Downloads:
    """GETs of output URLs over one lazily opened ``aiohttp`` session (per event loop).

    Args:
        timeout: The client's timeouts (connect, and read for each chunk of the body).
        max_connections: Connections to all output hosts at once.
        user_agent: The ``User-Agent`` header.
        redact: Applied to every error message (signed URLs, the API key).

    Example:
        >>> d = Downloads(timeout=httpx.Timeout(5.0), max_connections=4, user_agent="ua")
        >>> d.opened
        False
    """

    def __init__(
        self,
        *,
        timeout: httpx.Timeout,
        max_connections: int,
        user_agent: str,
        redact: Callable[[str], str] = str,
    ) -> None:
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=timeout.connect, sock_read=timeout.read
        )
        self._max_connections = max_connections
        self._headers = {"User-Agent": user_agent}
        self._redact = redact
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[tuple[str, str], tuple[Any, Any]] = {}

    @property
    def opened(self) -> bool:
        """Whether a session is open (it opens on the first download)."""
        return self._session is not None and not self._session.closed

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._max_connections, ssl=shared_ssl_context())
            # HTTP(S)_PROXY and NO_PROXY are honoured like httpx does for the API requests, but
            # looked up once per host (_proxy_for): with trust_env aiohttp reads the
            # environment and ~/.netrc again for every request, a tenth of a download's CPU.
            session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, headers=self._headers, trust_env=False
            )
            # aiohttp resends an idempotent request once by itself when the connection breaks
            # before an answer, with no public switch (aio-libs/aiohttp#10790). The client's
            # retry policy is the one that backs off and is counted: keep it the only one.
            if hasattr(session, "_retry_connection"):
                session._retry_connection = False
            self._session = session
        return self._session

    def _proxy_for(self, url: str) -> tuple[Any, Any]:
        """The environment's proxy (and its credentials) for ``url``'s host, looked up once."""
        parsed = yarl.URL(url)
        key = (parsed.scheme, parsed.host or "")
        found = self._proxies.get(key)
        if found is None:
            try:
                found = aiohttp.helpers.get_env_proxy_for_url(parsed)
            except (LookupError, ValueError):  # no proxy for this host (or NO_PROXY says so)
                found = (None, None)
            self._proxies[key] = found
        return found

    async def get(self, url: str, *, describe: str) -> Download:
        """GET ``url`` (redirects followed); raise ``TransportError`` when no answer came.

        Example:
            ```python
            answer = await downloads.get(url, describe="GET https://im.runware.ai/…")
            ```
        """
        try:
            proxy, proxy_auth = self._proxy_for(url)
            async with self._open().get(
                url, allow_redirects=True, proxy=proxy, proxy_auth=proxy_auth
            ) as response:
                body = await response.read()
                return Download(
                    response.status,
                    response.reason or "",
                    response.headers.get("Retry-After"),
                    body,
                )
        except _UNFETCHABLE as exc:
            raise PermanentError(
                self._redact(f"{describe}: unsupported URL ({type(exc).__name__})"),
                code="invalidURL",
            ) from None
        except aiohttp.TooManyRedirects:
            raise PermanentError(
                self._redact(f"{describe}: too many redirects"), code="tooManyRedirects"
            ) from None
        except TimeoutError as exc:
            raise TransportError(
                self._redact(f"{describe}: {type(exc).__name__} (no answer in time)"),
                code="requestTimeout",
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            # `from None`: aiohttp's exceptions keep the request info, signed URL included.
            raise TransportError(
                self._redact(f"{describe}: {type(exc).__name__} ({exc or 'no detail'})"),
                code="connectionError",
            ) from None

    async def post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        describe: str,
        read_timeout: float | None = None,
        unreachable: Callable[[str], None] | None = None,
    ) -> Download:
        """POST ``body`` to ``url`` (no redirect followed); raise ``TransportError`` when no
        answer came. ``read_timeout`` replaces the client's read timeout for this request;
        ``unreachable`` hears (redacted) of a fault that reached no server at all (refused,
        reset, no route, connect timeout), as opposed to a slow answer.

        Example:
            ```python
            answer = await downloads.post(api_url, b"[...]", {"Authorization": "Bearer ..."},
                                          describe="POST 32 task(s)")
            ```
        """
        timeout = None
        if read_timeout is not None:
            connect = self._timeout.connect
            timeout = aiohttp.ClientTimeout(
                total=None,
                connect=min(connect, read_timeout) if connect else read_timeout,
                sock_read=read_timeout,
            )
        try:
            proxy, proxy_auth = self._proxy_for(url)
            async with self._open().post(
                url,
                data=body,
                headers=headers,
                allow_redirects=False,
                proxy=proxy,
                proxy_auth=proxy_auth,
                timeout=timeout or self._timeout,
            ) as response:
                content = await response.read()
                return Download(
                    response.status,
                    response.reason or "",
                    response.headers.get("Retry-After"),
                    content,
                )
        except _UNFETCHABLE as exc:
            raise PermanentError(
                self._redact(f"{describe}: unsupported URL ({type(exc).__name__})"),
                code="invalidURL",
            ) from None
        except TimeoutError as exc:
            if unreachable is not None and isinstance(exc, _CONNECT_TIMEOUT):
                unreachable(f"{type(exc).__name__}: no connection in time")
            raise TransportError(
                self._redact(f"{describe}: {type(exc).__name__} (no answer in time)"),
                code="requestTimeout",
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            # `from None`: aiohttp's exceptions keep the request info, headers included.
            detail = self._redact(str(exc)) or "no detail"
            if unreachable is not None:
                unreachable(f"{type(exc).__name__}: {detail}")
            raise TransportError(
                f"{describe}: {type(exc).__name__} ({detail})", code="connectionError"
            ) from None

    async def aclose(self) -> None:
        """Close the session (idempotent).

        Example:
            ```python
            await downloads.aclose()
            ```
        """
        if self._session is not None:
            await self._session.close()
            self._session = None

"""The HTTP layer under :class:`~prefect_flux_erase.runware.client.RunwareClient`.

One ``aiohttp`` session (:class:`~prefect_flux_erase.runware.downloads.Downloads`, its pool
sized to the client's concurrency) carries every request; an injected ``httpx`` transport (tests'
faults) replaces it.
Each request waits for a slot of the :class:`~prefect_flux_erase.runware.limiter.AdaptiveLimiter`,
is judged (a whole-request transient fault, or an answer for the client to read), and transient
faults are retried with the :class:`~prefect_flux_erase.runware.retry_policy.RetryPolicy`.
Reading the answer task by task is the client's job; this layer never looks inside tasks.

What counts as a whole-request transient fault: no HTTP answer (connect/read timeout, reset,
protocol error), a transient HTTP status (408, 425, 429, 5xx: the package's one rule,
:func:`~prefect_flux_erase.errors.is_transient_status`), a 2xx body that is not JSON or has
nothing readable, and an error object that names no task of the request but classifies as
transient.

Non-JSON error bodies become error objects, as the SDK does it: 401 gives ``invalidApiKey``,
any other status ``httpError`` (classified by the status).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import httpx
import orjson
from pydantic import SecretStr

from prefect_flux_erase._version import __version__
from prefect_flux_erase.errors import is_transient_status
from prefect_flux_erase.runware.client_stats import ClientStats, RetryEvent
from prefect_flux_erase.runware.downloads import Download, Downloads
from prefect_flux_erase.runware.errors import (
    PermanentError,
    RateLimitError,
    RunwareError,
    TransientError,
    TransportError,
    classify,
    error_from_object,
)
from prefect_flux_erase.runware.health import ApiHealth
from prefect_flux_erase.runware.limiter import AdaptiveLimiter
from prefect_flux_erase.runware.redaction import install_log_redaction, redact_text, redact_url
from prefect_flux_erase.runware.responses import ErrorObject, Reply, parse_reply
from prefect_flux_erase.runware.retry_policy import RetryPolicy, parse_retry_after
from prefect_flux_erase.runware.tls import shared_ssl_context

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: httpx faults that mean no connection to the API at all (as opposed to a slow answer).
_NO_CONNECTION = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)


@dataclass
class Exchange:
    """The answer to one logical POST (after retries): status, parsed reply, requests spent.

    ``error`` is set when no usable answer came (transient faults outlasted the retries); the
    reply is then empty.

    Example:
        >>> from prefect_flux_erase.runware.responses import parse_reply
        >>> ex = Exchange(400, parse_reply({"errors": [{"code": "invalidApiKey"}]}),
        ...               task_uuids=frozenset({"t"}))
        >>> [e.code for e in ex.unscoped_errors()]
        ['invalidApiKey']
    """

    status: int | None
    reply: Reply
    requests: int = 1
    error: RunwareError | None = None
    retry_after: float | None = None
    task_uuids: frozenset[str] = field(default_factory=frozenset)

    def unscoped_errors(self) -> list[ErrorObject]:
        """Error objects that name no task of this request: they apply to all of it.

        Example:
            ```python
            for obj in exchange.unscoped_errors(): ...
            ```
        """
        return [e for e in self.reply.errors if e.task_uuid not in self.task_uuids]


class _Exhausted(Exception):
    def __init__(self, error: RunwareError, requests: int) -> None:
        super().__init__(error.message)
        self.error = error
        self.requests = requests


class ApiTransport:
    """Sends JSON task arrays to the API and downloads outputs, with retries and the limiter.

    Example:
        ```python
        transport = ApiTransport(SecretStr("rw-..."), base_url="https://api.runware.ai/v1",
                                 timeout=httpx.Timeout(120.0, connect=10.0),
                                 retry_policy=RetryPolicy(), limiter=AdaptiveLimiter(64),
                                 stats=ClientStats(), max_connections=64)
        exchange = await transport.post([{"taskType": "getResponse", "taskUUID": uuid}], {uuid})
        ```
    """

    def __init__(
        self,
        api_key: SecretStr,
        *,
        base_url: str,
        timeout: httpx.Timeout,
        retry_policy: RetryPolicy,
        limiter: AdaptiveLimiter,
        stats: ClientStats,
        max_connections: int,
        transport: httpx.AsyncBaseTransport | None = None,
        on_retry: Callable[[RetryEvent], None] | None = None,
        health: ApiHealth | None = None,
    ) -> None:
        install_log_redaction()
        self.url = base_url
        self.timeout = timeout
        self.policy = retry_policy
        self.limiter = limiter
        self.stats = stats
        #: Reachability shared by the run's clients, and their stop switch (see health.py).
        self.health = health
        self._on_retry = on_retry
        self._secret = api_key.get_secret_value()
        # The key travels only in this header, and only on API requests (never to output hosts).
        self._api_headers = {
            "Authorization": f"Bearer {self._secret}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        # API requests and output downloads go over aiohttp (see downloads.py: a third of
        # httpx's CPU per request), unless an httpx transport was injected: then everything
        # goes through it, so that a test's faults reach every request.
        self.http: httpx.AsyncClient | None = None
        self._downloads: Downloads | None = None
        if transport is None:
            self._downloads = Downloads(
                timeout=timeout,
                max_connections=max_connections,
                user_agent=f"prefect-flux-erase/{__version__}",
                redact=self.redact,
            )
        else:
            self.http = httpx.AsyncClient(
                timeout=timeout,
                limits=httpx.Limits(
                    max_connections=max_connections, max_keepalive_connections=max_connections
                ),
                transport=transport,
                verify=shared_ssl_context(),
                headers={
                    "User-Agent": f"prefect-flux-erase/{__version__} httpx/{httpx.__version__}"
                },
                follow_redirects=False,
            )

    def __repr__(self) -> str:
        return f"ApiTransport(url={redact_url(self.url)!r}, api_key=SecretStr('**********'))"

    def redact(self, text: str) -> str:
        """Redact the API key and signed URLs from a message before it is surfaced or logged.

        Example:
            ```python
            transport.redact(f"rejected {key} for https://b/o?sig=abc")  # 'rejected *** for ...'
            ```
        """
        return redact_text(text, [self._secret])

    def error(
        self,
        obj: ErrorObject,
        *,
        http_status: int | None = None,
        retry_after: float | None = None,
    ) -> RunwareError:
        """The exception for an API error object, with its text redacted.

        Example:
            ```python
            err = transport.error(reply.errors[0], http_status=400)   # e.g. a PermanentError
            ```
        """
        raw: dict[str, Any] = obj.model_dump(by_alias=True, exclude_none=True)
        for key in ("message", "documentation"):
            if isinstance(raw.get(key), str):
                raw[key] = self.redact(raw[key])
        return error_from_object(raw, http_status=http_status, retry_after=retry_after)

    async def aclose(self) -> None:
        """Close the connection pool.

        Example:
            ```python
            await transport.aclose()
            ```
        """
        if self.http is not None:
            await self.http.aclose()
        if self._downloads is not None:
            await self._downloads.aclose()

    # -- API requests -------------------------------------------------------------------------

    async def post(
        self,
        payload: Sequence[dict[str, Any]],
        task_uuids: Collection[str],
        *,
        request_timeout: float | None = None,
        deadline: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Exchange:
        """POST a task array; retry whole-request transient faults; never raise RunwareError.

        ``deadline`` (event-loop time) stops retrying when the next wait would pass it.

        Example:
            ```python
            exchange = await transport.post([task.to_wire()], [task.task_uuid])
            items, errors = exchange.reply.for_task(task.task_uuid)
            ```
        """
        body = orjson.dumps(list(payload))
        uuids = frozenset(task_uuids)
        if self.halted:
            # The run stopped: nothing more goes to the API (the rows stay for a rerun).
            stopped = TransportError("the run stopped before this request", code="notAttempted")
            return Exchange(None, Reply(), 0, error=stopped, task_uuids=uuids)
        try:
            exchange, requests = await self._retrying(
                lambda: self._post_once(body, uuids, request_timeout, headers), deadline=deadline
            )
        except _Exhausted as exhausted:
            return Exchange(
                None, Reply(), exhausted.requests, error=exhausted.error, task_uuids=uuids
            )
        exchange.requests = requests
        return exchange

    async def _post_once(
        self,
        body: bytes,
        uuids: frozenset[str],
        request_timeout: float | None,
        headers: Mapping[str, str] | None = None,
    ) -> Exchange:
        describe = f"POST {len(uuids)} task(s)"
        async with self.limiter.slot() as slot:
            sent = {**self._api_headers, **headers} if headers else self._api_headers
            if self._downloads is not None:
                answer = await self._aio_post(body, describe, request_timeout, sent)
            else:
                assert self.http is not None
                response = await self._send(
                    self.http.post(
                        self.url,
                        content=body,
                        headers=sent,
                        timeout=self._timeout_for(request_timeout),
                    ),
                    describe=describe,
                    api=True,
                )
                answer = Download(
                    response.status_code,
                    response.reason_phrase,
                    response.headers.get("retry-after"),
                    response.content,
                )
            exchange = Exchange(
                answer.status,
                self._read_reply(answer),
                retry_after=parse_retry_after(answer.retry_after),
                task_uuids=uuids,
            )
            fault = self._whole_request_fault(exchange)
            if isinstance(fault, RateLimitError):
                slot.rate_limited()
                self.stats.rate_limited += 1
            elif fault is None and answer.ok:
                slot.succeeded()
        if fault is not None:
            raise fault
        return exchange

    async def _aio_post(
        self,
        body: bytes,
        describe: str,
        request_timeout: float | None,
        headers: Mapping[str, str],
    ) -> Download:
        assert self._downloads is not None
        self.stats.requests += 1
        read_timeout = None if request_timeout is None else max(0.001, request_timeout)
        health = self.health
        try:
            answer = await self._downloads.post(
                self.url,
                body,
                headers,
                describe=describe,
                read_timeout=read_timeout,
                unreachable=None if health is None else partial(health.unreachable, self.url),
            )
        except TransportError as exc:
            self.stats.statuses["transport"] += 1
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("%s", exc.message)
            raise
        self.stats.statuses[answer.status] += 1
        if health is not None:
            health.answered()
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s -> HTTP %d", describe, answer.status)
        return answer

    def _read_reply(self, response: Download) -> Reply:
        status = response.status
        try:
            reply = parse_reply(orjson.loads(response.body))
        except orjson.JSONDecodeError:
            reply = Reply(problems=["body is not JSON"])
        if status >= 300 and not reply.errors:
            # Synthesise what the SDK does for error bodies that carry no error object (a 3xx
            # too: redirects are not followed, so the Authorization header never moves hosts).
            code, text = (
                ("invalidApiKey", "invalid API key") if status == 401 else ("httpError", "")
            )
            detail = f" ({reply.problems[0]})" if reply.problems else ""
            reply.errors.append(
                ErrorObject(
                    code=code,
                    message=f"HTTP {status} {text or response.reason}{detail}".strip(),
                )
            )
        return reply

    def _whole_request_fault(self, exchange: Exchange) -> TransientError | None:
        status = exchange.status or 0
        reply = exchange.reply
        unscoped = exchange.unscoped_errors()
        if is_transient_status(status):
            first = unscoped[0] if unscoped else (reply.errors[0] if reply.errors else None)
            err = self.error(
                first or ErrorObject(code="httpError"),
                http_status=status,
                retry_after=exchange.retry_after,
            )
            if isinstance(err, TransientError):
                return err
            # A transient status decides over the body's code: the request was not processed.
            cls = RateLimitError if status == 429 else TransientError
            return cls(
                err.message, code=err.code, http_status=status, retry_after=exchange.retry_after
            )
        if status < 300 and not reply.items and not reply.errors and reply.problems:
            return TransportError(
                self.redact(f"unreadable {status} reply: {reply.problems[0]}"),
                code="parseError",
                http_status=status,
            )
        for obj in unscoped:
            err = self.error(obj, http_status=status, retry_after=exchange.retry_after)
            if isinstance(err, TransientError):
                return err
        return None

    # -- output downloads ---------------------------------------------------------------------

    async def get_bytes(self, url: str) -> bytes:
        """Download ``url`` (no API key sent), retrying transient faults; raise RunwareError.

        Example:
            ```python
            png = await transport.get_bytes(item.image_url)
            ```
        """
        try:
            content, _ = await self._retrying(lambda: self._get_once(url))
        except _Exhausted as exhausted:
            raise exhausted.error from None
        return content

    async def _get_once(self, url: str) -> bytes:
        shown = redact_url(url)
        describe = f"GET {shown}"
        async with self.limiter.slot() as slot:
            if self._downloads is not None:
                answer = await self._download(url, describe)
            else:
                assert self.http is not None
                response = await self._send(
                    self.http.get(url, follow_redirects=True), describe=describe
                )
                answer = Download(
                    response.status_code,
                    response.reason_phrase,
                    response.headers.get("retry-after"),
                    response.content,
                )
            if answer.ok:
                slot.succeeded()
                return answer.body
            if answer.status == 429:
                slot.rate_limited()
                self.stats.rate_limited += 1
        status = answer.status
        cls = classify(None, status)
        raise cls(
            self.redact(f"downloading {shown} answered HTTP {status} {answer.reason}"),
            code="httpError",
            http_status=status,
            retry_after=parse_retry_after(answer.retry_after),
        )

    async def _download(self, url: str, describe: str) -> Download:
        assert self._downloads is not None
        self.stats.requests += 1
        try:
            answer = await self._downloads.get(url, describe=describe)
        except TransportError as exc:
            self.stats.statuses["transport"] += 1
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("%s", exc.message)
            raise
        self.stats.statuses[answer.status] += 1
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s -> HTTP %d", describe, answer.status)
        return answer

    # -- shared machinery ---------------------------------------------------------------------

    def _timeout_for(self, seconds: float | None) -> httpx.Timeout:
        # Never pass None to httpx: it would mean "no timeout at all", not "the default".
        if seconds is None:
            return self.timeout
        seconds = max(0.001, seconds)
        connect = self.timeout.connect
        return httpx.Timeout(seconds, connect=min(connect, seconds) if connect else seconds)

    async def _send(
        self, request: Awaitable[httpx.Response], *, describe: str, api: bool = False
    ) -> httpx.Response:
        self.stats.requests += 1
        try:
            response = await request
        except httpx.UnsupportedProtocol as exc:
            self.stats.statuses["transport"] += 1
            raise PermanentError(
                self.redact(f"{describe}: unsupported URL ({exc})"), code="invalidURL"
            ) from None
        except httpx.TransportError as exc:
            self.stats.statuses["transport"] += 1
            timed_out = isinstance(exc, httpx.TimeoutException)
            detail = self.redact(str(exc)) or "no detail"
            if api and self.health is not None and isinstance(exc, _NO_CONNECTION):
                self.health.unreachable(self.url, f"{type(exc).__name__}: {detail}")
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("%s: %s (%s)", describe, type(exc).__name__, detail)
            # `from None`: the httpx exception holds the request, and so the Authorization header.
            raise TransportError(
                f"{describe}: {type(exc).__name__} ({detail})",
                code="requestTimeout" if timed_out else "connectionError",
            ) from None
        self.stats.statuses[response.status_code] += 1
        if api and self.health is not None:
            self.health.answered()
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s -> HTTP %d", describe, response.status_code)
        return response

    async def pause(self, attempt: int, error: RunwareError) -> None:
        """Wait before retry number ``attempt`` (0-based) after ``error``; record the delay.

        Example:
            ```python
            await transport.pause(0, RateLimitError("slow down", retry_after=1.5))  # >= 1.5 s
            ```
        """
        delay = self.policy.delay(attempt, error.retry_after)
        self._record_retry(attempt, delay, error)
        await self._sleep(delay)

    async def _sleep(self, seconds: float) -> None:
        # A stopping run's clients wake at once instead of waiting out a long backoff.
        if self.health is None:
            await asyncio.sleep(seconds)
        else:
            await self.health.pause(seconds)

    @property
    def halted(self) -> bool:
        """Whether the run these requests belong to has stopped them (see health.py)."""
        return self.health is not None and self.health.halted

    def _record_retry(self, attempt: int, delay: float, error: RunwareError) -> None:
        event = RetryEvent(attempt, delay, error.retry_after, error.code, error.http_status)
        self.stats.record_retry(event)
        if self._on_retry is not None:
            self._on_retry(event)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "retry %d in %.3fs after %s (HTTP %s)",
                attempt + 1,
                delay,
                error.code,
                error.http_status,
            )

    async def _retrying(
        self, once: Callable[[], Awaitable[T]], *, deadline: float | None = None
    ) -> tuple[T, int]:
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            try:
                return await once(), attempt + 1
            except TransientError as err:
                delay = self.policy.delay(attempt, err.retry_after)
                if (
                    attempt >= self.policy.max_retries
                    or (deadline is not None and loop.time() + delay > deadline)
                    or self.halted
                ):
                    raise _Exhausted(err, attempt + 1) from None
                self._record_retry(attempt, delay, err)
                await self._sleep(delay)
                if self.halted:  # the run stopped during the wait: leave the row to a rerun
                    raise _Exhausted(err, attempt + 1) from None
                attempt += 1

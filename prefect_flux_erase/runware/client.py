"""`RunwareClient`: FLUX Erase tasks over the Runware REST API, idempotently and observably.

Submission sends several tasks per POST; replies are matched by ``taskUUID``, never by position.
Whole-request transient faults are retried with the same taskUUIDs (see
:mod:`~prefect_flux_erase.runware.transport`), so a submission the server did process before the
connection broke comes back as ``conflictTaskUUID`` and is then collected with ``getResponse``:
a task is never charged twice. Task-scoped errors become that task's :class:`TaskOutcome`.

Example:
    ```python
    async with RunwareClient(api_key, base_url=emulator_url) as client:
        outcomes = await client.submit(tasks)                       # async delivery: "accepted"
        polled = await client.poll({u: 1 for u, o in outcomes.items() if o.needs_poll})
        image = await client.fetch_output(polled[uuid].results[0])
    ```
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

import httpx
from pydantic import SecretStr

from prefect_flux_erase.runware.batches import poll_batch, submit_batch
from prefect_flux_erase.runware.client_stats import ClientStats, RetryEvent
from prefect_flux_erase.runware.errors import (
    AuthenticationError,
    ConflictTaskUUIDError,
    InvalidOptionError,
    PermanentError,
    TransientError,
    TransportError,
)
from prefect_flux_erase.runware.health import ApiHealth
from prefect_flux_erase.runware.ids import task_uuid as derive_task_uuid
from prefect_flux_erase.runware.limiter import AdaptiveLimiter
from prefect_flux_erase.runware.media import decode_inline, to_data_uri
from prefect_flux_erase.runware.models import ImageInferenceTask, ImageUploadTask
from prefect_flux_erase.runware.polling import PollPolicy, PollTracker
from prefect_flux_erase.runware.redaction import redact_url
from prefect_flux_erase.runware.responses import ResultItem, dedupe
from prefect_flux_erase.runware.retry_policy import RetryPolicy
from prefect_flux_erase.runware.task_outcome import TaskOutcome
from prefect_flux_erase.runware.transport import ApiTransport

__all__ = [
    "ClientStats",
    "PollPolicy",
    "RetryEvent",
    "RetryPolicy",
    "RunwareClient",
    "TaskOutcome",
    "run_sync",
]

DEFAULT_BASE_URL = "https://api.runware.ai/v1"


class RunwareClient:
    """Async client of the Runware inference API for FLUX Erase, over one ``httpx.AsyncClient``.

    Args:
        api_key: Runware API key (kept as a ``SecretStr``; sent only as the Bearer header).
        base_url: The REST endpoint (the emulator's URL for offline runs).
        timeout: Seconds to wait for a response (read/write/pool).
        connect_timeout: Seconds to wait for a connection.
        max_retries: Retries of a transient fault, when ``retry_policy`` is not given.
        max_connections: Connection pool size and the in-flight limiter's largest window.
        retry_policy: Backoff of transient faults (wins over ``max_retries``).
        poll_policy: Cadence and budget of ``getResponse`` polling.
        transport: An httpx transport (only to inject faults no real server can produce).
        max_tasks_per_request: Tasks per POST for submissions and polls.
        on_retry: Called with each :class:`RetryEvent` the client schedules.
        limiter: An in-flight limiter to share with other clients (one per run and process
            in the pipeline); default: one of its own, ``max_connections`` wide.
        health: Reachability and stop switch shared with the run's other clients
            (:class:`~prefect_flux_erase.runware.health.ApiHealth`); default: none.

    Example:
        >>> client = RunwareClient("rk-example", base_url="http://127.0.0.1:9/v1")
        >>> "rk-example" in repr(client), client.limiter.window
        (False, 64)
    """

    def __init__(
        self,
        api_key: SecretStr | str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 120.0,
        connect_timeout: float = 10.0,
        max_retries: int = 5,
        max_connections: int = 64,
        retry_policy: RetryPolicy | None = None,
        poll_policy: PollPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        max_tasks_per_request: int = 32,
        on_retry: Callable[[RetryEvent], None] | None = None,
        limiter: AdaptiveLimiter | None = None,
        health: ApiHealth | None = None,
    ) -> None:
        key = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key)
        if not key.get_secret_value():
            raise AuthenticationError("The Runware API key is empty", code="missingApiKey")
        if max_tasks_per_request < 1 or max_connections < 1:
            raise ValueError("max_tasks_per_request and max_connections must be >= 1")
        self.base_url = base_url.rstrip("/")
        self.retry_policy = retry_policy or RetryPolicy(max_retries=max_retries)
        self.poll_policy = poll_policy or PollPolicy()
        self.max_tasks_per_request = max_tasks_per_request
        self.stats = ClientStats()
        self.limiter = limiter or AdaptiveLimiter(max_connections)
        self.health = health
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._transport = ApiTransport(
            key,
            base_url=self.base_url,
            timeout=self._timeout,
            retry_policy=self.retry_policy,
            limiter=self.limiter,
            stats=self.stats,
            max_connections=max_connections,
            transport=transport,
            on_retry=on_retry,
            health=health,
        )

    def __repr__(self) -> str:
        return (
            f"RunwareClient(base_url={redact_url(self.base_url)!r}, "
            f"api_key=SecretStr('**********'), window={self.limiter.window})"
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (idempotent; ``async with`` calls it for you).

        Example:
            ```python
            client = RunwareClient(api_key)
            try:
                await client.run(task)
            finally:
                await client.aclose()
            ```
        """
        await self._transport.aclose()

    # -- submission ---------------------------------------------------------------------------

    async def submit(self, tasks: Sequence[ImageInferenceTask]) -> dict[str, TaskOutcome]:
        """Send tasks (``max_tasks_per_request`` per POST, concurrently); one outcome per task.

        ``done``: sync results; ``accepted``: async ack; ``conflict``: submitted before;
        ``failed``: the task's own error (or, with ``definite=False``, no answer at all).
        A request rejected for some of its tasks is resent without them, so one bad task
        never takes the others down; one rejected without naming a task is split per task.

        Example:
            ```python
            outcomes = await client.submit([task_a, task_b])
            to_poll = {u: 1 for u, o in outcomes.items() if o.needs_poll}
            ```
        """
        seen: set[str] = set()
        for task in tasks:
            if task.task_uuid in seen:
                raise InvalidOptionError(
                    f"taskUUID: {task.task_uuid} appears twice in one submission",
                    parameter="taskUUID",
                )
            seen.add(task.task_uuid)
        size = self.max_tasks_per_request
        batches = [list(tasks[i : i + size]) for i in range(0, len(tasks), size)]
        outcomes: dict[str, TaskOutcome] = {}
        for part in await asyncio.gather(*(submit_batch(self._transport, b) for b in batches)):
            outcomes.update(part)
        return outcomes

    # -- polling ------------------------------------------------------------------------------

    async def poll(
        self,
        expected: Mapping[str, int],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - a budget with a defined result
        policy: PollPolicy | None = None,
        on_round: Callable[[int, int], None] | None = None,
    ) -> dict[str, TaskOutcome]:
        """Collect results with ``getResponse`` until every task is done/failed or time runs out.

        ``expected`` maps each taskUUID to its number of results (``numberResults``). Replies
        are cumulative and deduplicated; both failure forms are understood. Tasks unfinished at
        the deadline (``timeout``, else the policy's) come back as ``timeout`` with a
        ``pollTimeout`` :class:`TransientError`. At least one poll round is always made.
        ``on_round(round_index, unfinished)`` is called after each round (progress, and how
        the pipeline learns when results tend to be ready).

        Example:
            ```python
            outcomes = await client.poll({uuid_a: 1, uuid_b: 2}, timeout=60)
            ```
        """
        policy = policy or self.poll_policy
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (policy.timeout if timeout is None else timeout)
        trackers = {u: PollTracker(u, max(1, n)) for u, n in expected.items()}
        size = self.max_tasks_per_request
        read_timeout = self._timeout.read or policy.timeout
        for rounds, wait in enumerate(policy.delays()):
            pending = [t for t in trackers.values() if not t.finished]
            remaining = deadline - loop.time()
            if not pending or (rounds and remaining <= 0) or self._transport.halted:
                break  # (a halted run leaves its unfinished tasks for a rerun to collect)
            await self._transport._sleep(max(0.0, min(wait, remaining)))
            if self._transport.halted:
                break
            batches = [pending[i : i + size] for i in range(0, len(pending), size)]
            await asyncio.gather(
                *(
                    poll_batch(self._transport, b, deadline=deadline, read_timeout=read_timeout)
                    for b in batches
                )
            )
            if on_round is not None:
                on_round(rounds, sum(not t.finished for t in trackers.values()))
        return {u: t.outcome() for u, t in trackers.items()}

    # -- one task, end to end -----------------------------------------------------------------

    async def run(self, task: ImageInferenceTask) -> list[ResultItem]:
        """Submit one task, poll it if needed, and return its results; raise its error.

        A task that the server reports as failed with a transient error (e.g.
        ``timeoutProvider``) is run again under a new taskUUID derived from the original one
        (:func:`~prefect_flux_erase.runware.ids.task_uuid`), up to the retry policy's
        ``max_retries``. A task whose fate is unknown is never re-run under a new UUID.

        Example:
            ```python
            items = await client.run(settings.to_task(uuid, image=url, mask=mask_uri))
            png = await client.fetch_output(items[0])
            ```
        """
        original = task.task_uuid
        rerun = 0
        while True:
            outcome = (await self.submit([task]))[task.task_uuid]
            if outcome.needs_poll:
                polled = (await self.poll({task.task_uuid: task.effective_number_results}))[
                    task.task_uuid
                ]
                polled.results = dedupe([*outcome.results, *polled.results])
                outcome = polled
            if outcome.state == "done":
                return outcome.results
            error = outcome.error or TransientError("task ended without results", code="noReply")
            if (
                outcome.state == "failed"
                and outcome.definite
                and isinstance(error, TransientError)
                and rerun < self.retry_policy.max_retries
            ):
                await self._transport.pause(rerun, error)
                rerun += 1
                task = task.model_copy(
                    update={"task_uuid": derive_task_uuid(original, "rerun", rerun + 1)}
                )
                continue
            raise error

    # -- prices -------------------------------------------------------------------------------

    async def price(self, tasks: Sequence[ImageInferenceTask]) -> dict[str, float | None]:
        """Ask the API's dry run (``X-Runware-Dry-Run: 1``) what each task would cost.

        Nothing runs where the dry run is supported (an unsettled point, RUNWARE_API §11
        #18). Caution: an API that ignored the header would run and bill the tasks. A task
        without a price in the reply maps to ``None``.

        Example:
            ```python
            costs = await client.price([task])      # {task.task_uuid: 0.03}
            ```
        """
        uuids = [t.task_uuid for t in tasks]
        ex = await self._transport.post(
            [t.to_wire() for t in tasks], uuids, headers={"X-Runware-Dry-Run": "1"}
        )
        if ex.error is not None:
            raise ex.error
        costs: dict[str, float | None] = {}
        for u in uuids:
            items, _errors = ex.reply.for_task(u)
            found = [i.cost for i in items if i.cost is not None]
            costs[u] = round(sum(found), 6) if found else None
        return costs

    # -- uploads and outputs ------------------------------------------------------------------

    async def upload_image(self, data: bytes | str) -> str:
        """Store an image with ``imageUpload`` and return its reusable ``imageUUID``.

        ``data`` is image bytes, or a URL, data URI or base64 string passed through as is.

        Example:
            ```python
            image_uuid = await client.upload_image(png_bytes)
            task = settings.to_task(uuid, image=image_uuid, mask=mask_uuid)
            ```
        """
        image = to_data_uri(data) if isinstance(data, bytes) else data
        upload_uuid = str(uuid.uuid4())
        task = ImageUploadTask(task_uuid=upload_uuid, image=image)
        ex = await self._transport.post([task.to_wire()], [upload_uuid])
        if ex.error is not None:
            raise ex.error
        items, errors = ex.reply.for_task(upload_uuid)
        if errors:
            err = self._transport.error(errors[0], http_status=ex.status)
            if not isinstance(err, ConflictTaskUUIDError):
                raise err
            # Our retry reached a server that had stored the first attempt: read that one.
            outcome = (await self.poll({upload_uuid: 1}))[upload_uuid]
            if outcome.error is not None:
                raise outcome.error
            items = outcome.results
        for item in items:
            if item.image_uuid:
                return item.image_uuid
        if ex.unscoped_errors():
            raise self._transport.error(ex.unscoped_errors()[0], http_status=ex.status)
        raise TransportError("imageUpload reply carried no imageUUID", code="parseError")

    async def fetch_output(self, item: ResultItem) -> bytes:
        """The output image's bytes: decoded from base64/data URI, or downloaded from its URL.

        Downloads retry transient faults; the API key is never sent to the output host.

        Example:
            ```python
            png = await client.fetch_output(items[0])
            ```
        """
        inline = item.image_base64_data or item.image_data_uri
        if inline:
            try:
                return decode_inline(inline)
            except ValueError:
                raise PermanentError(
                    f"result {item.image_uuid or item.task_uuid} carries unreadable base64 data",
                    code="invalidOutput",
                    task_uuid=item.task_uuid,
                ) from None
        url = item.image_url or item.media_url
        if not url:
            raise PermanentError(
                f"result {item.image_uuid or item.task_uuid} has no imageURL or inline data",
                code="missingOutput",
                task_uuid=item.task_uuid,
            )
        return await self._transport.get_bytes(url)


def run_sync(
    task: ImageInferenceTask, api_key: SecretStr | str, **client_options: Any
) -> list[ResultItem]:
    """Blocking :meth:`RunwareClient.run` for scripts: a fresh client on a fresh event loop.

    Example:
        ```python
        items = run_sync(task, "rk-...", base_url="http://127.0.0.1:8080/v1")
        ```
    """

    async def _run() -> list[ResultItem]:
        async with RunwareClient(api_key, **client_options) as client:
            return await client.run(task)

    return asyncio.run(_run())

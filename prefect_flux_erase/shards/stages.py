"""The three stages of one shard, Prefect-free: submit, poll, upload.

Each stage is an ``async`` function over a whole shard: its rows run concurrently on one
backend (one HTTP client, one event loop) in windows of ``job.concurrency`` rows, so no stage
holds more image bytes than one window needs. Stages hand each other a `ShardTickets` — the
shard plus one small `RowTicket` per row — and the last stage commits the shard's results part.

Idempotence: a row's taskUUID is derived from (run key, row key, attempt). Running a stage again
(a Prefect retry, a crashed worker, a rerun of the flow) resubmits the same UUIDs; the API answers
``conflictTaskUUID`` and the row is polled instead of charged again. A new attempt (a new UUID)
starts only after the API said the previous one failed with a transient error.

Example:
    ```python
    tickets = await submit_shard(job, shard)
    tickets = await poll_shard(job, tickets)
    report = await upload_shard(job, tickets)      # writes _parts/shard-NNNNN.parquet
    ```
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from prefect_flux_erase.results.outcome_codes import is_final
from prefect_flux_erase.runware.errors import RunwareError
from prefect_flux_erase.runware.media import ext_for_format
from prefect_flux_erase.runware.redaction import redact_text, redact_url
from prefect_flux_erase.shards.api_backend import RunAborted, RunwareBackend, Store, open_backend
from prefect_flux_erase.shards.api_slots import ApiSlots, slots_for
from prefect_flux_erase.shards.cache_writes import CacheWriter
from prefect_flux_erase.shards.dedupe import mark_planned, submit_unique
from prefect_flux_erase.shards.local_backend import LocalBackend
from prefect_flux_erase.shards.reruns import fingerprints, resume_tickets
from prefect_flux_erase.shards.rows import (
    PreparedRow,
    RowTicket,
    RowTickets,
    prepare_rows,
    ticket_for,
)
from prefect_flux_erase.shards.run_control import RunControl, control_for
from prefect_flux_erase.storage.files import (
    InputReadError,
    is_within,
    join,
    read_bytes,
    safe_key,
    write_bytes,
)

if TYPE_CHECKING:
    from prefect_flux_erase.manifest.plan import ManifestRow, Shard
    from prefect_flux_erase.shards.job import ShardJob

T = TypeVar("T")
R = TypeVar("R")

#: Times one attempt's taskUUID is resubmitted after an unanswered request before giving up.
MAX_RESUBMITS = 3
#: Result downloads (and writes) of one shard at once. Each parallel download opens a
#: connection of its own; past a few the stage pays for new connections more than it gains
#: (on loopback, 64 at once instead of 16 cost the flow ~5-10 % of its throughput).
DOWNLOADS_AT_ONCE = 16

Backend = RunwareBackend | LocalBackend


@dataclass(frozen=True)
class ShardTickets:
    """A shard and where each of its rows stands: what one stage hands the next.

    Example:
        ```python
        st = await submit_shard(job, shard)
        st.counts()          # {'accepted': 98, 'failed': 2}
        ```
    """

    shard: Shard
    tickets: RowTickets

    def counts(self) -> dict[str, int]:
        """Rows per ticket state."""
        return dict(Counter(t.state for t in self.tickets))


@dataclass(frozen=True)
class ShardReport:
    """What one committed shard contributed: counts, spend and the part written.

    ``unfinished`` counts the rows the run stopped before they ended (``notAttempted``,
    ``notFinished``): a rerun runs them. ``stop`` is why the run stopped, when it stopped
    while this shard ran (a run-level fault, an interruption): no new shard should start.

    Example:
        >>> ShardReport(shard_index=0, rows=3, succeeded=2, failed=1).failed
        1
    """

    shard_index: int
    rows: int
    succeeded: int
    failed: int
    resumed: int = 0
    cost: float = 0.0
    part_uri: str | None = None
    error_counts: dict[str, int] = field(default_factory=dict)
    unfinished: int = 0
    stop: RunAborted | None = None


def output_uri(job: ShardJob, row_key: str, k: int) -> str:
    """Where result ``k`` of a row is written: ``{output}/images/{safe_key}[_{k}].{ext}``.

    Example:
        >>> from prefect_flux_erase.runware.options import EraseOptions
        >>> from prefect_flux_erase.shards.job import ShardJob
        >>> job = ShardJob(manifest=None, output="s3://b/out", run_key="k",  # type: ignore
        ...                backend="local", options=EraseOptions(output_format="PNG"))
        >>> output_uri(job, "cat 01", 0)
        's3://b/out/images/cat 01.png'
    """
    settings = job.options
    suffix = f"_{k}" if settings.number_results > 1 else ""
    return join(
        job.images_root, f"{safe_key(row_key)}{suffix}.{ext_for_format(settings.output_format)}"
    )


class UnsafeOutputPath(Exception):
    """An output path that would land outside the output root (never written)."""


def make_store(job: ShardJob) -> Store:
    """The callback that writes one output's bytes to its final place and returns the URI.

    Example:
        ```python
        store = make_store(job)
        uri = await store(ticket, 0, png_bytes)
        ```
    """
    root = job.images_root
    cache = CacheWriter.for_job(job)

    async def store(ticket: RowTicket, k: int, data: bytes) -> str:
        uri = output_uri(job, ticket.row_key, k)
        if not is_within(root, uri):  # the last guard before any write
            raise UnsafeOutputPath(f"{uri} is outside {root}")
        await asyncio.to_thread(write_bytes, uri, data, job.output_storage_options)
        if cache is not None:
            await cache.put(ticket, k, data)
        return uri

    return store


async def _windows(
    items: Sequence[T], size: int, fn: Callable[[Sequence[T]], Awaitable[list[R]]]
) -> list[R]:
    out: list[R] = []
    for start in range(0, len(items), size):
        out.extend(await fn(items[start : start + size]))
    return out


async def _send(
    job: ShardJob,
    backend: Backend,
    tickets: Sequence[RowTicket],
    store: Store,
    before_submit: Callable[[], Awaitable[object]] | None = None,
) -> list[RowTicket]:
    """Validate and submit tickets one window at a time; order is kept.

    ``before_submit`` is awaited once, after the first window is validated and before its
    request (where a shard waits for an API slot). Once the run is stopping, no window is
    sent: its rows come back as they were (a rerun sends them).
    """
    gate = [before_submit] if before_submit is not None else []
    control = control_for(job.run_key)

    async def window(batch: Sequence[RowTicket]) -> list[RowTicket]:
        if control.stop_requested:
            return list(batch)
        prepared = await prepare_rows(
            batch, job, delivery=backend.delivery, keep_decoded=backend.keep_decoded
        )
        if gate and any(isinstance(p, PreparedRow) for p in prepared):
            await gate.pop()()
        # The inputs of this window are released here, before the next window is read.
        return await _submit_prepared(backend, prepared, store, control)

    return await _windows(tickets, job.concurrency, window)


async def _submit_prepared(
    backend: Backend,
    prepared: Sequence[PreparedRow | RowTicket],
    store: Store,
    control: RunControl,
) -> list[RowTicket]:
    """Submit the valid rows of ``prepared``; one ticket per row, in order (invalid rows as
    validation failed them; valid ones unsent if the run is stopping)."""
    if control.stop_requested:
        return [p.ticket if isinstance(p, PreparedRow) else p for p in prepared]
    ready = [p for p in prepared if isinstance(p, PreparedRow)]
    try:
        sent = iter(await submit_unique(backend, ready, store))
    except UnsafeOutputPath as exc:
        sent = iter([p.ticket.failed("unsafeOutputPath", str(exc)) for p in ready])
    return [next(sent) if isinstance(p, PreparedRow) else p for p in prepared]


async def _poll_rows(
    job: ShardJob, backend: Backend, chosen: Sequence[RowTicket], store: Store
) -> list[RowTicket]:
    try:
        return await backend.poll(chosen, job.poll_timeout, store)
    except UnsafeOutputPath as exc:
        return [t.failed("unsafeOutputPath", str(exc)) for t in chosen]


@contextlib.asynccontextmanager
async def _backend(job: ShardJob, backend: Backend | None) -> AsyncIterator[Backend]:
    if backend is not None:
        yield backend
        return
    async with open_backend(job) as opened:
        yield opened


async def submit_shard(job: ShardJob, shard: Shard, backend: Backend | None = None) -> ShardTickets:
    """Stage 1: read the shard's rows, validate each locally, submit the valid ones.

    Bad rows fail here without an API call. With the ``runware`` backend and async delivery
    the first ``job.concurrency`` rows are sent and come back ``accepted``; the others stay
    ``pending`` (never sent) for the poll stage, which keeps that many rows at the API. With
    sync delivery every row comes back ``done``; the ``local`` backend erases them now.

    Example:
        ```python
        st = await submit_shard(job, shard)
        ```
    """
    from prefect_flux_erase.manifest.plan import read_shard

    tickets = [ticket_for(row, job) for row in read_shard(job.manifest, shard)]
    # What an earlier run of this run key committed: settled rows are kept, the others set
    # up to be collected, fetched again or sent again (shards/reruns.py).
    tickets = await asyncio.to_thread(resume_tickets, job, shard, tickets)
    if shard.duplicates:
        tickets = _fail_duplicates(tickets, dict(shard.duplicates))
    tickets = mark_planned(tickets, shard)
    todo = [i for i, t in enumerate(tickets) if t.state == "pending"]
    slots = _slots(job)
    take_slot = None
    if slots is not None:

        async def take_slot() -> bool:
            return await slots.acquire(shard.index, wait_limit=job.poll_timeout)

    try:
        async with _backend(job, backend) as active:
            if job.backend == "runware":
                # The first window only: the poll stage sends the rest as rows come back, so
                # no more than `concurrency` of the shard's rows are at the API at once (a
                # sync delivery's rows come back done, and the lanes send the next ones).
                todo = todo[: job.concurrency]
            sent = await _send(job, active, [tickets[i] for i in todo], make_store(job), take_slot)
    except BaseException:
        if slots is not None:  # no poll stage will follow to give the slot back
            slots.release(shard.index)
        raise
    for i, ticket in zip(todo, sent, strict=True):
        tickets[i] = ticket
    return ShardTickets(shard, RowTickets(tickets))


def _slots(job: ShardJob) -> ApiSlots | None:
    if job.api_slots is None or job.backend != "runware":
        return None
    return slots_for(job.slots_key or job.run_key, job.api_slots)


def _fail_duplicates(tickets: list[RowTicket], first: dict[int, int]) -> list[RowTicket]:
    """Fail the rows whose key an earlier row already has (they would share its taskUUID and
    output file); the first row with the key is processed as usual."""
    return [
        t.failed(
            "duplicateRowKey",
            f"row key {t.row_key!r} is also the key of row {first[t.row_index]}, which is "
            "processed; this row is skipped so that it cannot take that row's result or "
            "overwrite its output. Give every row a unique key (key_column)",
        )
        if t.row_index in first
        else t
        for t in tickets
    ]


def _needs_resend(ticket: RowTicket, job: ShardJob) -> RowTicket | None:
    """The ticket to resubmit (same or next attempt), or ``None`` when the row is settled."""
    if ticket.state == "pending":
        if ticket.submits < MAX_RESUBMITS:
            return ticket  # same attempt, same taskUUID: unanswered before, maybe accepted
        return None
    # max_attempts counts this run's attempts: a rerun gets its own (see RowTicket.base_attempt).
    used = ticket.attempt - ticket.base_attempt
    if ticket.state == "failed" and ticket.retryable and used < job.max_attempts:
        return ticket.next_attempt()
    return None


def _give_up(ticket: RowTicket, control: RunControl) -> RowTicket:
    if ticket.state != "pending" or control.stop_requested:
        return ticket  # a stopping run leaves it pending: it is committed as unfinished
    return ticket.failed(
        ticket.error_code or "unanswered",
        f"no answer from the API after {ticket.submits} submissions "
        f"({ticket.error_message or 'no reply'}); run again with the same arguments to try "
        "again (a task that did run is collected, not charged twice)",
    )


async def poll_shard(
    job: ShardJob, submitted: ShardTickets, backend: Backend | None = None
) -> ShardTickets:
    """Stage 2: wait for every accepted row; retry transient task failures with a new attempt.

    A row whose task failed with a transient error (``timeoutProvider``, ``inferenceError``…)
    gets attempt + 1 (a new taskUUID) up to ``job.max_attempts``; a row whose submission went
    unanswered is resubmitted under the same taskUUID. Inline results are written on arrival.

    Example:
        ```python
        st = await poll_shard(job, await submit_shard(job, shard))
        ```
    """
    slots = _slots(job)
    try:
        return await _poll(job, submitted, backend, control_for(job.run_key))
    finally:
        if slots is not None:  # answered (or given up): the next shard may go
            slots.release(submitted.shard.index)


def _unsent(ticket: RowTicket) -> bool:
    return ticket.state == "pending" and ticket.submits == 0


async def _poll(
    job: ShardJob, submitted: ShardTickets, backend: Backend | None, control: RunControl
) -> ShardTickets:
    tickets = list(submitted.tickets)
    store = make_store(job)
    settings = job.options
    inline = settings.output_type != "URL"
    async with _backend(job, backend) as active:
        queue = deque(i for i, t in enumerate(tickets) if _unsent(t))
        if queue:
            await _slide(job, active, tickets, queue, store, control)
        while True:
            accepted = [i for i, t in enumerate(tickets) if t.state == "accepted"]
            if accepted:
                # URL results are small: poll the whole shard at once. Inline results carry
                # the images: poll a window at a time so at most one window is in memory.
                size = job.concurrency if inline else len(accepted)

                async def poll_window(idx: Sequence[int]) -> list[RowTicket]:
                    return await _poll_rows(job, active, [tickets[i] for i in idx], store)

                polled = await _windows(accepted, size, poll_window)
                for i, ticket in zip(accepted, polled, strict=True):
                    tickets[i] = ticket
            if control.stop_requested:
                break  # nothing new goes out; what is still running is left for a rerun
            resend = {i: r for i, t in enumerate(tickets) if (r := _needs_resend(t, job))}
            if not resend:
                break
            order = sorted(resend)
            sent = await _send(job, active, [resend[i] for i in order], store)
            for i, ticket in zip(order, sent, strict=True):
                tickets[i] = ticket
    return ShardTickets(submitted.shard, RowTickets(_give_up(t, control) for t in tickets))


#: Groups of a shard's window that take turns at the API: while one group's rows are in
#: flight the other's next rows are read and validated, and a slow row holds back only its
#: own group. More lanes mean more, smaller ``getResponse`` requests.
LANES = 2
#: Most rows in one lane: a lane's rows are polled in one ``getResponse`` request (32 tasks)
#: and its answer is written before the lane sends its next rows, so a wider window gets more
#: lanes. Measured at 512 rows in flight and 2 s latency: two lanes of 128 rows reached 0.75
#: of in-flight / latency, eight of 32 rows 0.79 (issue 16).
LANE_ROWS = 32


async def _slide(
    job: ShardJob,
    active: Backend,
    tickets: list[RowTicket],
    queue: deque[int],
    store: Store,
    control: RunControl,
) -> None:
    """Keep at most ``job.concurrency`` rows at the API until ``queue`` (unsent rows) is empty.

    The window is split into :data:`LANES` lanes or more (at most :data:`LANE_ROWS` rows
    each); each polls its rows while reading and validating its next ones, and sends those
    when its rows are answered. ``tickets`` is updated in place; rows left to resend or retry
    are the caller's.
    """
    lanes = max(LANES, -(-job.concurrency // LANE_ROWS))
    size = max(1, -(-job.concurrency // lanes))
    accepted = [i for i, t in enumerate(tickets) if t.state == "accepted"]
    groups = [accepted[k : k + size] for k in range(0, len(accepted), size)]
    groups += [[] for _ in range(lanes - len(groups))]

    def take() -> tuple[list[int], asyncio.Future[list[PreparedRow | RowTicket]] | None]:
        # A stopping run takes no new rows: the lane only sees its rows in flight out.
        upcoming = [
            queue.popleft() for _ in range(0 if control.stop_requested else min(size, len(queue)))
        ]
        if not upcoming:
            return upcoming, None
        ready = prepare_rows(
            [tickets[i] for i in upcoming],
            job,
            delivery=active.delivery,
            keep_decoded=active.keep_decoded,
        )
        return upcoming, asyncio.ensure_future(ready)

    async def lane(current: list[int]) -> None:
        upcoming, ahead = take()
        try:
            while True:
                if current:
                    polled = await _poll_rows(job, active, [tickets[i] for i in current], store)
                    for i, ticket in zip(current, polled, strict=True):
                        tickets[i] = ticket
                if ahead is None:
                    return
                prepared = await ahead
                # The lane's next rows are read and validated while these are at the API (a
                # sync submission holds its rows until they are done).
                sending, (upcoming, ahead) = upcoming, take()
                sent = await _submit_prepared(active, prepared, store, control)
                for i, ticket in zip(sending, sent, strict=True):
                    tickets[i] = ticket
                current = [i for i in sending if tickets[i].state == "accepted"]
        except BaseException:
            if ahead is not None:
                ahead.cancel()
            raise

    await asyncio.gather(*(lane(g) for g in groups))


async def _materialise(
    job: ShardJob, ticket: RowTicket, backend: Backend | None, store: Store
) -> tuple[RowTicket, list[str]]:
    if ticket.state != "done":
        if ticket.state == "pending" and ticket.submits == 0:
            ticket = ticket.failed(
                "notAttempted",
                "the run stopped before this row was sent; run again with the same arguments "
                "to process it",
            )
        elif ticket.state in ("pending", "accepted"):
            ticket = ticket.failed(
                "notFinished",
                "the row was still running when its shard was committed (the run stopped); "
                "run again with the same arguments to collect it by its task UUID (it is not "
                "charged again)",
            )
        return ticket, []
    if ticket.upload_url:
        # The API PUT the bytes to the user's presigned URL: record where, never the signature.
        return ticket, [redact_url(ticket.upload_url) for _ in ticket.results]
    uris: list[str] = []
    try:
        for k, ref in enumerate(ticket.results):
            if ref.written_uri and ref.written_uri != output_uri(job, ticket.row_key, k):
                # Written for another row of equal content: this row gets its own copy.
                data = await asyncio.to_thread(
                    read_bytes, ref.written_uri, job.output_storage_options
                )
                uris.append(await store(ticket, k, data))
                del data
            elif ref.written_uri:
                uris.append(ref.written_uri)
            elif ref.url and backend is not None:
                data = await backend.fetch(ticket, ref)
                uris.append(await store(ticket, k, data))
                del data
            else:
                return ticket.failed(
                    "missingOutput",
                    "the API returned a result without an image; run again with the same "
                    "arguments to fetch it again (it is not charged again)",
                ), []
    except UnsafeOutputPath as exc:
        return ticket.failed("unsafeOutputPath", str(exc)), []
    except RunwareError as exc:
        # One code whatever the transfer's own fault was (it is in the message): the result
        # exists and is paid for, and a rerun fetches it again by the row's task UUID.
        message = redact_text(exc.message)
        return ticket.failed(
            "downloadFailed",
            f"could not download the result ({exc.code or 'error'}: {message}); run again "
            "with the same arguments to fetch it (it is not charged again)",
        ), []
    except InputReadError as exc:
        return ticket.failed(
            "outputWriteFailed",
            f"could not copy the result of an identical row: {exc.message}; rerun the flow "
            "to fetch it again (it is not charged again)",
        ), []
    except OSError as exc:
        message = redact_text(f"{type(exc).__name__}: {exc}")
        return ticket.failed(
            "outputWriteFailed",
            f"could not write the result: {message}; fix the output location or its "
            "storage_options, then run again to fetch it (it is not charged again)",
        ), []
    return ticket, uris


def _redact_signed_urls(rows: Sequence[ManifestRow]) -> None:
    # The manifest's columns are copied into the results: presigned upload targets, and
    # presigned input URLs too. The results must say where each input came from and each
    # output went without granting access to them (a signature is a credential until it
    # expires), so every signed URL is recorded with its signature redacted.
    for row in rows:
        for column, value in row.values.items():
            if isinstance(value, str) and ("?" in value or "@" in value):
                row.values[column] = redact_url(value)


async def upload_shard(
    job: ShardJob,
    polled: ShardTickets,
    backend: Backend | None = None,
    rows: Sequence[ManifestRow] | None = None,
) -> ShardReport:
    """Stage 3: fetch URL results, write them under ``{output}/images``, commit the shard's part.

    Example:
        ```python
        report = await upload_shard(job, await poll_shard(job, await submit_shard(job, shard)))
        ```
    """
    from prefect_flux_erase.manifest.plan import read_shard
    from prefect_flux_erase.results.assemble import write_part

    store = make_store(job)
    need_fetch = any(
        t.state == "done"
        and not t.upload_url
        and any(r.url and not r.written_uri for r in t.results)
        for t in polled.tickets
    )
    semaphore = asyncio.Semaphore(min(job.concurrency, DOWNLOADS_AT_ONCE))
    async with contextlib.AsyncExitStack() as stack:
        active: Backend | None = backend
        if active is None and need_fetch:
            active = await stack.enter_async_context(_backend(job, None))

        async def one(ticket: RowTicket) -> tuple[RowTicket, list[str]]:
            async with semaphore:
                return await _materialise(job, ticket, active, store)

        finished = await asyncio.gather(*(one(t) for t in polled.tickets))
        cache = CacheWriter.for_job(job)
        if cache is not None:
            await asyncio.gather(*(cache.publish(t, uris) for t, uris in finished))
    outcomes = [t.to_outcome(uris) for t, uris in finished]
    manifest_rows = list(rows) if rows is not None else list(read_shard(job.manifest, polled.shard))
    _redact_signed_urls(manifest_rows)
    # What the inputs of each row that failed for good looked like, so that a rerun runs it
    # again once they change (taken at validation when that is where it failed).
    final = [t for t, _ in finished if t.state == "failed" and is_final(t.error_code)]
    seen = {t.row_index: t.fingerprint for t, _ in finished if t.fingerprint is not None}
    missing = [t for t in final if t.row_index not in seen]
    seen.update(await asyncio.to_thread(fingerprints, missing, job) if missing else {})
    part = await asyncio.to_thread(
        partial(
            write_part,
            job.output,
            polled.shard.index,
            job.run_key,
            manifest_rows,
            outcomes,
            job.output_storage_options,
            fingerprints={t.row_index: seen[t.row_index] for t in final if t.row_index in seen},
        )
    )
    failed = [o for o in outcomes if o.status != "succeeded"]
    # Spend and recoveries of this run only: kept rows were counted by the run that did them.
    new = [o for (t, _), o in zip(finished, outcomes, strict=True) if t.state != "kept"]
    control = control_for(job.run_key)
    return ShardReport(
        shard_index=polled.shard.index,
        rows=len(outcomes),
        succeeded=len(outcomes) - len(failed),
        failed=len(failed),
        resumed=sum(1 for o in new if o.resumed),
        cost=round(sum(o.cost or 0.0 for o in new), 6),
        part_uri=str(part) if part is not None else None,
        error_counts=dict(Counter(o.error_code or "unknown" for o in failed)),
        unfinished=sum(1 for o in failed if o.error_code in UNFINISHED_STOP_CODES),
        stop=control.reason if control.stop_requested else None,
    )


#: Codes of rows a stopped run left for a rerun (committed so that done rows stay done).
UNFINISHED_STOP_CODES = frozenset({"notAttempted", "notFinished"})

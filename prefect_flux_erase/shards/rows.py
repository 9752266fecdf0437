"""One row's journey between stages (`RowTicket`) and its local validation (`prepare_row`).

A ticket is the small descriptor a shard's stages pass along: which row, which taskUUID and
attempt, where it stands, and references to its results — never image bytes. `prepare_row`
checks a row before any API call is spent on it: the key is safe, both inputs are readable and
decodable, the image is at least the model's 256 px (on both backends, so that a local run
predicts the API), the mask has the image's size and marks something to erase (an all-black
mask is ``emptyMask``: a paid no-op otherwise), the per-row ``dilatePixels`` and the task
options are valid. A row that fails any check becomes a failed ticket with a stable code and a
message that says what to fix. A single image (``erase_image``) goes through the same checks
(:func:`prepare_checked`).
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, overload

from prefect_flux_erase.engine.imageio import (
    MIN_SIDE,
    DecodedImage,
    ImageInputError,
    check_image,
    decode_image,
    decode_mask,
    header_size,
    mask_has_erase,
)
from prefect_flux_erase.results.row_outcome import RowOutcome
from prefect_flux_erase.runware.errors import InvalidOptionError
from prefect_flux_erase.runware.ids import task_uuid
from prefect_flux_erase.runware.media import to_data_uri
from prefect_flux_erase.runware.redaction import redact_url
from prefect_flux_erase.shards.contents import (
    content_key,
    digest_bytes,
    digest_reference,
    job_fingerprint,
    row_task_key,
)
from prefect_flux_erase.shards.dedupe import BUDGET_EXHAUSTED
from prefect_flux_erase.shards.remote_inputs import InputKind, input_kind
from prefect_flux_erase.storage.files import InputReadError, is_within, read_bytes, write_bytes

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from prefect_flux_erase.manifest.plan import ManifestRow
    from prefect_flux_erase.runware.models import ImageInferenceTask
    from prefect_flux_erase.shards.job import ShardJob

#: ``kept``: an earlier run's outcome of the row stands (a rerun leaves a final or succeeded
#: row alone); the ticket carries it as ``prior``.
TicketState = Literal["pending", "accepted", "done", "failed", "kept"]


@dataclass(frozen=True)
class ResultRef:
    """Where one result of a row is: a URL to fetch, an object already written, or a PUT target.

    ``seed`` and ``nsfw`` are the result's ``seed`` and ``NSFWContent`` when the API sent them.

    Example:
        >>> ResultRef(image_uuid="i", url="https://x/i.jpg", cost=0.03, seed=7).url
        'https://x/i.jpg'
    """

    image_uuid: str | None = None
    url: str | None = None
    written_uri: str | None = None
    cost: float | None = None
    seed: int | None = None
    nsfw: bool | None = None


@dataclass(frozen=True)
class RowTicket:
    """One row's state between stages. Small and picklable: no bytes, no clients.

    Example:
        >>> t = RowTicket(row_index=0, row_key="a", image_uri="a.png", mask_uri="m.png")
        >>> t.state, t.attempt, t.next_attempt().attempt
        ('pending', 1, 2)
    """

    row_index: int
    row_key: str
    image_uri: Any
    mask_uri: Any
    dilate_pixels: Any = None
    upload_url: str | None = None
    attempt: int = 1
    task_uuid: str | None = None
    state: TicketState = "pending"
    results: tuple[ResultRef, ...] = ()
    error_code: str | None = None
    error_message: str | None = None
    retryable: bool = False
    resumed: bool = False
    started: float | None = None
    finished: float | None = None
    submits: int = 0
    #: When the row was last sent (epoch seconds): polling is timed from here.
    sent_at: float | None = None
    #: The row's content key (image bytes, mask bytes, settings): names its task and its
    #: result-cache entry (:mod:`~prefect_flux_erase.shards.contents`).
    content_key: str | None = None
    #: Row index of the row whose erase (and charge) this row shares, planned by the scan.
    shared_with: int | None = None
    #: Given no share of the run's cost cap: never sent (``budgetExhausted``) unless cached.
    unbudgeted: bool = False
    #: Served from the result cache (no request, no charge).
    cached: bool = False
    #: ``imageUpload`` UUIDs of the row's inputs, once uploaded (reused by later attempts).
    image_ref: str | None = None
    mask_ref: str | None = None
    #: Attempts spent by earlier runs of the same run key: this run may use ``max_attempts``
    #: more (a rerun of a row that used them all still gets its retries).
    base_attempt: int = 0
    #: The earlier run's outcome of a ``kept`` row, written to the results unchanged.
    prior: RowOutcome | None = None
    #: What the row's inputs looked like when it failed for good (shards/reruns.py), so
    #: that a rerun can tell whether they were fixed since.
    fingerprint: str | None = None

    def next_attempt(self) -> RowTicket:
        """The same row, moved to a fresh attempt (new taskUUID) after a definite failure."""
        return replace(
            self,
            attempt=self.attempt + 1,
            task_uuid=None,
            state="pending",
            results=(),
            error_code=None,
            error_message=None,
            retryable=False,
            submits=0,
        )

    def failed(self, code: str, message: str, *, retryable: bool = False) -> RowTicket:
        """This ticket, failed with a stable ``code`` and a message saying what to fix."""
        return replace(
            self,
            state="failed",
            error_code=code,
            error_message=message,
            retryable=retryable,
            finished=time.time(),
        )

    def to_outcome(self, output_uris: list[str] | None = None) -> RowOutcome:
        """The row's final record for the results table.

        Example:
            >>> RowTicket(row_index=3, row_key="k", image_uri="a", mask_uri="b").failed(
            ...     "inputNotFound", "a does not exist").to_outcome().error_code
            'inputNotFound'
        """
        if self.state == "kept" and self.prior is not None:
            return self.prior
        succeeded = self.state == "done"
        costs = [r.cost for r in self.results if r.cost is not None]
        if self.cached or self.shared_with is not None:
            costs = [0.0]  # the cache, or the row it shares with, paid for this result
        latency = (
            max(0.0, self.finished - self.started)
            if self.started is not None and self.finished is not None
            else None
        )
        return RowOutcome(
            row_key=self.row_key,
            row_index=self.row_index,
            status="succeeded" if succeeded else "failed",
            output_uri=list(output_uris or []) if succeeded else [],
            image_uuid=[r.image_uuid for r in self.results if r.image_uuid] if succeeded else [],
            source_url=[redact_url(r.url) for r in self.results if r.url] if succeeded else [],
            cost=round(sum(costs), 6) if costs else (0.0 if succeeded else None),
            error_code=None if succeeded else self.error_code,
            error_message=None if succeeded else self.error_message,
            attempts=self.attempt if self.task_uuid or self.submits else 0,
            latency_s=latency,
            task_uuid=self.task_uuid,
            # A row sharing another's task is answered conflictTaskUUID by design, not resumed.
            resumed=self.resumed and self.shared_with is None,
            shared_with=self.shared_with,
            cached=self.cached and succeeded,
            seed=[r.seed for r in self.results] if succeeded else [],
            nsfw_content=[r.nsfw for r in self.results] if succeeded else [],
        )

    def kept(self, prior: RowOutcome) -> RowTicket:
        """This row, settled by an earlier run: ``prior`` is its outcome in the results.

        Example:
            >>> prior = RowOutcome(row_key="k", row_index=3, status="succeeded")
            >>> t = RowTicket(row_index=3, row_key="k", image_uri="a", mask_uri="b").kept(prior)
            >>> t.state, t.to_outcome() is prior
            ('kept', True)
        """
        return replace(self, state="kept", prior=prior)


class RowTickets(Sequence[RowTicket]):
    """An immutable sequence of tickets (a shard's rows) that Prefect passes as one value.

    Prefect walks every task parameter looking for futures and states: through tuples and
    dataclasses, field by field. For a shard's tickets that cost ~2.5 ms per 32 rows per task
    run, twice per stage (measured); a sequence that is neither a tuple nor a dataclass is one
    value to it. Compares, hashes and pickles like the tuple it wraps.

    Example:
        >>> t = RowTicket(row_index=0, row_key="a", image_uri="a.png", mask_uri="m.png")
        >>> tickets = RowTickets([t, t])
        >>> len(tickets), tickets[0].row_key, tickets == RowTickets((t, t))
        (2, 'a', True)
    """

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[RowTicket] = ()) -> None:
        self._items = tuple(items)

    @overload
    def __getitem__(self, index: int) -> RowTicket: ...

    @overload
    def __getitem__(self, index: slice) -> RowTickets: ...

    def __getitem__(self, index: int | slice) -> RowTicket | RowTickets:
        if isinstance(index, slice):
            return RowTickets(self._items[index])
        return self._items[index]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[RowTicket]:
        return iter(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RowTickets):
            return self._items == other._items
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._items)

    def __repr__(self) -> str:
        return f"RowTickets({list(self._items)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (RowTickets, (self._items,))


@dataclass
class PreparedRow:
    """A validated row, ready to send: its task plus the decoded inputs (local engine only).

    Lives only inside one stage's in-flight window, because it holds the inputs.
    """

    ticket: RowTicket
    task: ImageInferenceTask
    image: DecodedImage | None = None
    mask: NDArray[np.bool_] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def ticket_for(row: ManifestRow, job: ShardJob) -> RowTicket:
    """A pending ticket for a manifest row (reads the optional presigned-upload column).

    Example:
        ```python
        ticket = ticket_for(row, job)   # RowTicket(row_index=row.index, row_key=row.key, ...)
        ```
    """
    upload: str | None = None
    # Only the API can PUT to a presigned URL; the local engine writes under the output root.
    if job.upload_url_column and job.backend == "runware":
        value = (row.values or {}).get(job.upload_url_column)
        if isinstance(value, str) and value.strip():
            upload = value.strip()
    return RowTicket(
        row_index=int(row.index),
        row_key=str(row.key),
        image_uri=row.image_uri,
        mask_uri=row.mask_uri,
        dilate_pixels=row.dilate_pixels,
        upload_url=upload,
    )


def check_row_key(key: str) -> str | None:
    """Why a row key cannot name an output file (path traversal), or ``None`` when it can.

    Example:
        >>> check_row_key("photos/cat-01") is None, check_row_key("../../etc/passwd") is not None
        (True, True)
    """
    parts = key.replace("\\", "/").split("/")
    if any(p == ".." for p in parts):
        return (
            f"row key {key!r} contains a '..' path segment; give every row a key without path "
            "traversal (set key_column to a column of plain names)"
        )
    if not key.strip():
        return "row key is empty; give every row a non-empty key (key_column)"
    return None


def row_dilate_pixels(value: Any) -> int | None:
    """The per-row ``dilatePixels`` as an int, ``None`` when the cell is empty.

    Raises:
        InvalidOptionError: for anything that is not a whole number (the range is checked when
            the task is built, with the API's own message).

    Example:
        >>> row_dilate_pixels(12.0), row_dilate_pixels(None), row_dilate_pixels(float("nan"))
        (12, None, None)
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        raise InvalidOptionError(
            f"settings.dilatePixels: must be an integer from 0 to 50; got {value!r}",
            parameter="settings.dilatePixels",
        )
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if hasattr(value, "item"):  # numpy scalars
        return row_dilate_pixels(value.item())
    raise InvalidOptionError(
        f"settings.dilatePixels: must be an integer from 0 to 50; got {value!r}",
        parameter="settings.dilatePixels",
    )


def build_row_task(
    ticket: RowTicket, job: ShardJob, *, image: str, mask: str, delivery: str | None
) -> ImageInferenceTask:
    """The row's validated ``imageInference`` task (``InvalidOptionError`` if an option is bad).

    Example:
        ```python
        task = build_row_task(ticket, job, image="data:...", mask="data:...", delivery="async")
        ```
    """
    overrides: dict[str, Any] = {}
    dilate = row_dilate_pixels(ticket.dilate_pixels)
    if dilate is not None:
        overrides["settings"] = {"dilatePixels": dilate}
    if delivery is not None:
        overrides["deliveryMethod"] = delivery
    if ticket.upload_url:
        overrides["uploadEndpoint"] = ticket.upload_url
    # Rows of equal content derive one taskUUID: the API erases (and bills) it once.
    content = ticket.content_key if job.dedupe else None
    name = row_task_key(content) if content else ticket.row_key
    uuid = ticket.task_uuid or task_uuid(job.run_key, name, ticket.attempt)
    return job.options.to_task(uuid, image=image, mask=mask, overrides=overrides)


@dataclass
class _Inputs:
    """A row's two inputs as they will be sent, their digests, and the decoded pixels."""

    image: str
    mask: str
    image_digest: bytes
    mask_digest: bytes
    decoded: DecodedImage | None = None
    mask_pixels: NDArray[np.bool_] | None = None


def _read_input(
    value: Any, kind: InputKind, ref: str | None, job: ShardJob
) -> tuple[str, bytes, bytes | None]:
    """(what to send, digest, bytes read or None) for one input; ``value`` may be the bytes
    themselves (a single image given as bytes)."""
    if ref is not None:  # uploaded by an earlier attempt: neither read nor sent again
        return ref, b"", None
    if kind != "file":
        text = str(value).strip()
        return text, digest_reference(kind, text), None
    data = value if isinstance(value, bytes) else read_bytes(value, job.input_storage_options)
    return "", digest_bytes(data), data


def _local_reference(value: Any) -> str:
    """What a local row's task shows for an input (the engine erases the decoded pixels)."""
    return "<bytes>" if isinstance(value, bytes) else str(value)


def _read_and_decode(ticket: RowTicket, job: ShardJob, keep_decoded: bool) -> _Inputs:
    """Read a row's inputs and validate them; decode the pixels only if they are needed.

    The local engine needs the pixels. A row sent to the API travels as its file's own
    bytes, so only the checks are needed: :func:`check_image` and :func:`mask_has_erase`
    fail with the same codes as the full decode, at a fraction of its cost. Inputs the API
    fetches itself (an image UUID, a URL passed through) are not read: the API validates them.
    """
    spec = job.manifest
    image_kind = input_kind(ticket.image_uri, spec.image_column, job) if spec else "file"
    mask_kind = input_kind(ticket.mask_uri, spec.mask_column, job) if spec else "file"
    image_sent, image_digest, image_bytes = _read_input(
        ticket.image_uri, image_kind, ticket.image_ref, job
    )
    mask_sent, mask_digest, mask_bytes = _read_input(
        ticket.mask_uri, mask_kind, ticket.mask_ref, job
    )
    # The model's minimum side is known: an image below it would only come back rejected.
    # The local engine could erase it, but checks it all the same: a local dry run then
    # predicts what the API will refuse.
    min_side = MIN_SIDE
    image: DecodedImage | None = None
    mask: NDArray[np.bool_] | None = None
    erases = True
    if keep_decoded:
        # The local engine reads every input (no remote kinds without the runware backend).
        assert image_bytes is not None
        assert mask_bytes is not None
        image = decode_image(image_bytes, parameter="inputs.image", min_side=min_side)
        mask = decode_mask(mask_bytes, image.size, parameter="inputs.mask")
        erases = bool(mask.any())
    elif image_bytes is not None:
        size = check_image(image_bytes, parameter="inputs.image", min_side=min_side)
        if mask_bytes is not None:
            erases = mask_has_erase(mask_bytes, size, parameter="inputs.mask")
    elif mask_bytes is not None:
        # The image is remote: the mask can still be checked against its own size.
        own = header_size(mask_bytes, parameter="inputs.mask")
        erases = mask_has_erase(mask_bytes, own, parameter="inputs.mask")
    if not erases:
        # A mask that keeps everything asks for a no-op: never pay for it.
        raise ImageInputError(
            "inputs.mask: the mask is all black, so there is nothing to erase; paint the "
            "object to remove white (255) in the mask, or drop the row",
            code="emptyMask",
            parameter="inputs.mask",
        )
    local = keep_decoded
    return _Inputs(
        image=image_sent
        or (_local_reference(ticket.image_uri) if local else to_data_uri(image_bytes or b"")),
        mask=mask_sent
        or (_local_reference(ticket.mask_uri) if local else to_data_uri(mask_bytes or b"")),
        image_digest=image_digest,
        mask_digest=mask_digest,
        decoded=image,
        mask_pixels=mask,
    )


async def prepare_row(
    ticket: RowTicket, job: ShardJob, *, delivery: str | None, keep_decoded: bool
) -> PreparedRow | RowTicket:
    """Validate one row locally and build its task; a bad row comes back as a failed ticket.

    Reading and decoding run in a worker thread, so a shard's other rows keep moving.

    Args:
        ticket: The row (a pending ticket; its attempt picks the taskUUID).
        job: Run parameters (settings, storage options, ``pass_urls``).
        delivery: ``deliveryMethod`` to send, or ``None`` to keep the settings' choice.
        keep_decoded: Keep the decoded image and mask (the local engine needs them).

    Example:
        ```python
        prepared = await prepare_row(ticket, job, delivery="async", keep_decoded=False)
        if isinstance(prepared, RowTicket):   # failed: prepared.error_code says why
            ...
        ```
    """
    return await asyncio.to_thread(_prepare, ticket, job, delivery, keep_decoded)


async def prepare_rows(
    tickets: Sequence[RowTicket], job: ShardJob, *, delivery: str | None, keep_decoded: bool
) -> list[PreparedRow | RowTicket]:
    """:func:`prepare_row` for many rows, in order, a few worker threads each taking a run.

    One thread hop per row cost more CPU than checking a small local file (~0.4 ms); the rows
    are split into as many runs as the event loop's default pool has threads, so reads from
    object stores still go out that many at a time, as they did one row per thread.

    Example:
        ```python
        prepared = await prepare_rows(tickets, job, delivery="async", keep_decoded=False)
        ```
    """
    if not tickets:
        return []
    runs = min(len(tickets), _POOL_THREADS)
    size = -(-len(tickets) // runs)
    chunks = [tickets[i : i + size] for i in range(0, len(tickets), size)]

    def run(chunk: Sequence[RowTicket]) -> list[PreparedRow | RowTicket]:
        return [_prepare(t, job, delivery, keep_decoded) for t in chunk]

    done = await asyncio.gather(*(asyncio.to_thread(run, c) for c in chunks))
    return [row for chunk in done for row in chunk]


#: Threads of asyncio's default executor (``min(32, cpus + 4)``): runs of rows at once.
_POOL_THREADS = min(32, (os.cpu_count() or 1) + 4)


def _invalid(ticket: RowTicket, job: ShardJob, code: str, message: str) -> RowTicket:
    """The row failed validation: note what its inputs look like now, so that a rerun runs it
    again once they are fixed (read right after they were found wanting)."""
    from prefect_flux_erase.results.outcome_codes import is_final
    from prefect_flux_erase.shards.reruns import row_fingerprint

    failed = ticket.failed(code, message)
    return replace(failed, fingerprint=row_fingerprint(ticket, job)) if is_final(code) else failed


def _prepare(
    ticket: RowTicket, job: ShardJob, delivery: str | None, keep_decoded: bool
) -> PreparedRow | RowTicket:
    problem = check_row_key(ticket.row_key)
    if problem is not None:
        return ticket.failed("unsafeRowKey", problem)
    for uri, column in ((ticket.image_uri, "image"), (ticket.mask_uri, "mask")):
        if uri is None or (isinstance(uri, float) and math.isnan(uri)) or uri == "":
            code = "missingInputsImage" if column == "image" else "missingInputsMask"
            return ticket.failed(
                code, f"the row has no {column} URI; fill in the manifest's {column} column"
            )
    try:
        return prepare_checked(ticket, job, delivery=delivery, keep_decoded=keep_decoded)
    except InputReadError as exc:
        return _invalid(ticket, job, exc.code, exc.message)
    except ImageInputError as exc:
        return _invalid(ticket, job, exc.code, exc.message)
    except InvalidOptionError as exc:
        return _invalid(ticket, job, exc.code or "invalidOption", redact_url(exc.message))


def prepare_checked(
    ticket: RowTicket, job: ShardJob, *, delivery: str | None, keep_decoded: bool
) -> PreparedRow | RowTicket:
    """Check a row's option, read and validate its inputs, build its task: the one row path.

    Manifest rows come here through :func:`prepare_row` (which turns the errors into failed
    tickets); a single image (:func:`~prefect_flux_erase.shards.single_image.erase_single`)
    comes here directly, with its inputs as URIs or bytes, so an input that a manifest run
    fails is refused by ``erase_image`` with the same code. A ticket comes back instead of a
    prepared row when the row is done from the result cache or over the cost cap.

    Raises:
        InputReadError, ImageInputError, InvalidOptionError: the first problem, with its code.

    Example:
        ```python
        prepared = prepare_checked(ticket, job, delivery=None, keep_decoded=True)
        ```
    """
    dilate = row_dilate_pixels(ticket.dilate_pixels)
    if dilate is not None and not 0 <= dilate <= 50:
        raise InvalidOptionError(
            f"settings.dilatePixels: must be an integer from 0 to 50; got {dilate}",
            parameter="settings.dilatePixels",
        )
    if job.cache is not None and ticket.content_key and not ticket.upload_url:
        # A content erased before (this run or another) is copied, not paid for again.
        served = serve_from_cache(ticket, job)
        if served is not None:
            return served
    inputs = _read_and_decode(ticket, job, keep_decoded)
    if ticket.content_key is None and job.content_keyed:
        ticket = replace(
            ticket,
            content_key=content_key(
                inputs.image_digest,
                inputs.mask_digest,
                dilate=job.options.dilate_pixels if dilate is None else dilate,
                fingerprint=job_fingerprint(job),
                upload_url=ticket.upload_url,
            ),
        )
        if job.cache is not None and not ticket.upload_url:
            served = serve_from_cache(ticket, job)
            if served is not None:
                return served
    if ticket.unbudgeted:
        return ticket.failed(
            BUDGET_EXHAUSTED,
            "not sent: the run's cost cap (max_cost_usd) was reached before this row; "
            "run again with a higher cap to erase it (rows already erased are not "
            "charged again)",
        )
    task = build_row_task(ticket, job, image=inputs.image, mask=inputs.mask, delivery=delivery)
    stamped = replace(ticket, task_uuid=task.task_uuid)
    if keep_decoded:
        return PreparedRow(stamped, task, image=inputs.decoded, mask=inputs.mask_pixels)
    return PreparedRow(stamped, task)


def serve_from_cache(ticket: RowTicket, job: ShardJob) -> RowTicket | None:
    """The row done from the result cache (its results copied to its own output files), or
    ``None`` on a miss (no entry, an unreadable one, or a result object gone).

    Example:
        ```python
        done = serve_from_cache(ticket, job)     # ticket.cached, ticket.results[0].written_uri
        ```
    """
    from prefect_flux_erase.results.cache import ResultCache
    from prefect_flux_erase.shards.stages import output_uri

    assert job.cache is not None
    assert ticket.content_key is not None
    cache = ResultCache(job.cache, job.cache_options)
    entry = cache.get(ticket.content_key)
    if entry is None or len(entry.results) != job.options.number_results:
        return None
    refs = []
    try:
        for k in range(len(entry.results)):
            data = cache.read_result(entry, k)
            uri = output_uri(job, ticket.row_key, k)
            if not is_within(job.images_root, uri):
                return None
            write_bytes(uri, data, job.output_storage_options)
            refs.append(ResultRef(written_uri=uri, cost=0.0))
    except InputReadError:
        return None
    now = time.time()
    return replace(
        ticket, state="done", cached=True, results=tuple(refs), started=now, finished=now
    )

"""What a rerun does with each row of a shard that an earlier run of the same run key committed.

The rules are :mod:`~prefect_flux_erase.results.outcome_codes`'s, applied row by row:

- a row that succeeded, or failed with a **final** code, is kept as it is (no request) —
  unless its inputs changed since it failed (:func:`row_fingerprint`: the row's URIs and
  per-row options, and the size and version tag (ETag, generation, mtime…) of its image and
  mask), or ``retry_failed`` names its code: then it is validated again and, if valid, sent
  as its next attempt (a new task UUID);
- a row whose paid result never reached the output (``refetch``) is polled by its task UUID
  with ``getResponse`` and its output fetched again: no new task, no new charge;
- any other failed row (``resume``) is sent again under the task UUID it last used: a task
  that already ran is collected through ``conflictTaskUUID``, never charged twice, and one
  that failed moves on to its next attempt.

The endpoint (base URL) plays no part in any of this: a row that failed because the endpoint
was wrong is retryable, whatever endpoint the rerun uses.

Example:
    ```python
    tickets = resume_tickets(job, shard, [ticket_for(row, job) for row in rows])
    ```
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from prefect_flux_erase import storage
from prefect_flux_erase.results.outcome_codes import is_final, rerun_action, retried_by_request
from prefect_flux_erase.results.row_outcome import RowOutcome

if TYPE_CHECKING:
    from prefect_flux_erase.manifest.plan import Shard
    from prefect_flux_erase.shards.job import ShardJob
    from prefect_flux_erase.shards.rows import RowTicket

#: fsspec ``info`` fields that change when an object's content is replaced, most telling first
#: (S3 ETag, GCS generation and md5, Azure etag, a local file's mtime, memory's creation).
_VERSION_FIELDS = (
    "ETag",
    "etag",
    "generation",
    "md5Hash",
    "VersionId",
    "version_id",
    "mtime",
    "LastModified",
    "last_modified",
    "updated",
    "created",
)
#: Input fingerprints taken at once (each a metadata request on object stores).
_LOOKUPS_AT_ONCE = 16


def input_fingerprint(uri: Any, storage_options: Mapping[str, Any] | None = None) -> str:
    """What one input looks like now, cheaply: its size and version tag (no bytes read).

    ``missing`` when it does not exist, ``none`` for an empty cell, ``unknown`` when its
    metadata cannot be read (a denied HEAD, say): a later reading that differs counts as a
    change.

    Example:
        >>> from prefect_flux_erase import storage
        >>> storage.write_bytes("memory://doc/fp/a.png", b"one")
        >>> before = input_fingerprint("memory://doc/fp/a.png")
        >>> storage.write_bytes("memory://doc/fp/a.png", b"three")
        >>> before != input_fingerprint("memory://doc/fp/a.png")
        True
        >>> input_fingerprint("memory://doc/fp/nothing.png"), input_fingerprint(None)
        ('missing', 'none')
    """
    if not isinstance(uri, str) or not uri.strip():
        return "none"
    try:
        fs, path = storage.resolve(uri.strip(), storage_options)
        with contextlib.suppress(Exception):  # a listing cached earlier must not answer
            fs.invalidate_cache(path)
        info = fs.info(path)
    except FileNotFoundError:
        return "missing"
    except Exception:
        return "unknown"
    tag = next((f"{k}={info[k]}" for k in _VERSION_FIELDS if info.get(k) is not None), "")
    return f"{info.get('size')}:{tag}"


def row_fingerprint(ticket: RowTicket, job: ShardJob) -> str:
    """A short digest of a row's inputs: its URIs, per-row options and the inputs' own
    fingerprints. Equal digests mean a rerun would send the same request.

    Example:
        >>> from prefect_flux_erase.runware.options import EraseOptions
        >>> from prefect_flux_erase.shards.job import ShardJob
        >>> from prefect_flux_erase.shards.rows import RowTicket
        >>> job = ShardJob(manifest=None, output="memory://o", run_key="k",  # type: ignore
        ...                backend="local", options=EraseOptions())
        >>> t = RowTicket(row_index=0, row_key="a", image_uri="memory://doc/x.png",
        ...               mask_uri="memory://doc/x-mask.png")
        >>> len(row_fingerprint(t, job))
        20
    """
    options = job.input_storage_options
    parts = [
        str(ticket.image_uri),
        str(ticket.mask_uri),
        str(ticket.dilate_pixels),
        ticket.upload_url or "",
        input_fingerprint(ticket.image_uri, options),
        input_fingerprint(ticket.mask_uri, options),
    ]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:20]


def fingerprints(tickets: Sequence[RowTicket], job: ShardJob) -> dict[int, str]:
    """:func:`row_fingerprint` of many rows, a few lookups at once; by row index.

    Example:
        ```python
        fingerprints(failed_final_rows, job)       # {17: "3be0…", 42: "91c2…"}
        ```
    """
    if not tickets:
        return {}
    with ThreadPoolExecutor(max_workers=min(_LOOKUPS_AT_ONCE, len(tickets))) as pool:
        digests = pool.map(lambda t: row_fingerprint(t, job), tickets)
        return {t.row_index: d for t, d in zip(tickets, digests, strict=True)}


def changed_rows(
    tickets: Sequence[RowTicket], stored: Mapping[int, str], job: ShardJob
) -> set[int]:
    """Indexes of the rows whose inputs differ from the fingerprint stored when they failed.

    A row without a stored fingerprint (a part written before fingerprints) is taken as
    unchanged: running it again could be charged, and nothing says it would now succeed.

    Example:
        ```python
        changed_rows(final_rows, footer.inputs, job)   # {17}
        ```
    """
    known = [t for t in tickets if t.row_index in stored]
    now = fingerprints(known, job)
    return {i for i, digest in now.items() if digest != stored[i]}


def resume_tickets(job: ShardJob, shard: Shard, tickets: list[RowTicket]) -> list[RowTicket]:
    """The shard's tickets, with what an earlier run of the run key committed applied.

    Without a committed part of this run key (a first run, or a crash before the commit) the
    tickets come back as they are. Blocking (it reads the part and looks at inputs).

    Example:
        ```python
        tickets = await asyncio.to_thread(resume_tickets, job, shard, tickets)
        ```
    """
    from prefect_flux_erase.results.assemble import read_part_outcomes

    found = read_part_outcomes(job.output, shard.index, job.run_key, job.output_storage_options)
    if found is None:
        return tickets
    prior, footer = found
    codes = job.retry_failed

    def earlier(ticket: RowTicket) -> RowOutcome | None:
        outcome = prior.get(ticket.row_index)
        # A manifest rewritten in place may hold another row at this index: start it afresh.
        return outcome if outcome is not None and outcome.row_key == ticket.row_key else None

    looked_at = [
        t
        for t in tickets
        if (p := earlier(t)) is not None
        and p.status != "succeeded"
        and is_final(p.error_code)
        and not retried_by_request(p.error_code, codes)
    ]
    changed = changed_rows(looked_at, footer.inputs, job)
    out: list[RowTicket] = []
    for ticket in tickets:
        p = earlier(ticket)
        if p is None:
            out.append(ticket)
        elif p.status == "succeeded":
            out.append(ticket.kept(p))
        else:
            out.append(_rerun(ticket, p, job, changed, footer.inputs.get(ticket.row_index)))
    return out


def _rerun(
    ticket: RowTicket,
    prior: RowOutcome,
    job: ShardJob,
    changed: set[int],
    fingerprint: str | None,
) -> RowTicket:
    action = rerun_action(prior.error_code, backend=job.backend)
    spent = prior.attempts
    if action == "keep":
        if ticket.row_index in changed or retried_by_request(prior.error_code, job.retry_failed):
            # Inputs fixed, or asked for: the next attempt, so that the request is a new one
            # (the task under the last UUID holds the old answer).
            return replace(ticket, attempt=spent + 1, base_attempt=spent)
        return replace(ticket.kept(prior), fingerprint=fingerprint)
    attempt = max(1, spent)
    if action == "refetch" and prior.task_uuid:
        # Generated and paid for: collect it again with getResponse, never resubmit it.
        return replace(
            ticket,
            state="accepted",
            attempt=attempt,
            base_attempt=attempt - 1,
            task_uuid=prior.task_uuid,
            resumed=True,
        )
    return replace(ticket, attempt=attempt, base_attempt=attempt - 1)

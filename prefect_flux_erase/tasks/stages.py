"""The shard stage tasks: `submit_erase`, `poll_erase`, `upload_erased`.

One Prefect task run per shard and stage, never one per image: inside a task the shard's rows
run concurrently on one client and one event loop (:mod:`prefect_flux_erase.shards.stages`).

Every stage task:

- is a plain (sync) task that runs its stage on an event loop of its own
  (:func:`~prefect_flux_erase.shards.stage_loop.run_stage`, which also enforces the stage's
  timeout): an ``async`` task submitted from the sync flow would get a fresh event loop and a
  fresh Prefect API client per task run (~25 ms of CPU each, more than a small shard's rows);
- retries only transient faults
  (:func:`~prefect_flux_erase.tasks.stage_options.retry_if_transient`), with exponential
  backoff and jitter; a retry is safe because task UUIDs are deterministic;
- uses ``cache_policy=NO_CACHE``: polling must never be answered from a cache, and a rerun must
  look at the output location, not at Prefect's cache, to know what is done;
- sets ``cache_result_in_memory=False``. In Prefect 3.9 that flag only keeps a *persisted*
  result out of the result store's in-memory cache; results are not persisted here (no cache
  policy, no result storage), so the return value still reaches the next stage through the
  future's state. What a stage returns is deliberately small — a `ShardTickets` of one
  `RowTicket` per row or a `ShardReport` — because image bytes live in the output location
  from the moment they exist; the same small descriptors pickle cheaply to Dask or Ray workers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from prefect import get_run_logger, task
from prefect.exceptions import MissingContextError

from prefect_flux_erase.manifest.plan import Shard
from prefect_flux_erase.shards.job import ShardJob
from prefect_flux_erase.shards.stage_loop import (
    POLL_TIMEOUT,
    SUBMIT_TIMEOUT,
    UPLOAD_TIMEOUT,
    run_stage,
)
from prefect_flux_erase.shards.stages import (
    ShardReport,
    ShardTickets,
    poll_shard,
    submit_shard,
    upload_shard,
)
from prefect_flux_erase.tasks.stage_options import stage_task_options

T = TypeVar("T")


def _logger() -> logging.Logger | logging.LoggerAdapter[Any]:
    # `.fn(...)` calls (tests, custom flows) run outside a task run: log to the package logger.
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("prefect_flux_erase.tasks")


def _limited(job: ShardJob, stage: Callable[[], Coroutine[Any, Any, T]], timeout: float) -> T:
    """Run a stage inside the run's global concurrency limit, if one is named.

    The stage occupies as many slots as it may have requests in flight, so the limit caps
    in-flight API requests across shards and across flow runs.
    """
    if job.concurrency_limit is None or job.backend != "runware":
        return run_stage(stage(), timeout)
    from prefect.concurrency.sync import concurrency

    with concurrency(job.concurrency_limit, occupy=job.concurrency, strict=False):
        return run_stage(stage(), timeout)


@task(
    name="submit_erase",
    task_run_name="submit_erase-shard-{shard.index}",
    **stage_task_options(),
)
def submit_erase(job: ShardJob, shard: Shard) -> ShardTickets:
    """Validate a shard's rows locally and submit the valid ones (stage 1 of 3).

    Bad rows (unreadable or undecodable input, mask of the wrong size, invalid per-row
    ``dilate_pixels``, unsafe key) fail here with a stable code, without an API call. Valid rows
    are sent with deterministic taskUUIDs and async delivery; the ``local`` backend erases them.

    Args:
        job: The run's parameters (backend, settings, output, concurrency).
        shard: The rows to process.

    Returns:
        One ticket per row: ``accepted``, ``done``, ``pending`` (unanswered) or ``failed``.

    Example:
        ```python
        submitted = submit_erase.fn(job, shard)       # or submit_erase.submit(job, shard)
        ```
    """
    logger = _logger()
    result = _limited(job, lambda: submit_shard(job, shard), SUBMIT_TIMEOUT)
    logger.debug("shard %d submitted: %s", shard.index, _counts(result))
    return result


@task(
    name="poll_erase",
    task_run_name="poll_erase-shard-{submitted.shard.index}",
    **stage_task_options(),
)
def poll_erase(job: ShardJob, submitted: ShardTickets) -> ShardTickets:
    """Wait until every submitted row of a shard is done, failed or past its deadline (stage 2).

    Rows whose task failed with a transient error get a new attempt (a new taskUUID) up to
    ``job.max_attempts``; unanswered submissions are resent under the same taskUUID.

    Example:
        ```python
        polled = poll_erase.fn(job, submitted)
        ```
    """
    logger = _logger()
    result = _limited(job, lambda: poll_shard(job, submitted), POLL_TIMEOUT)
    logger.debug("shard %d polled: %s", submitted.shard.index, _counts(result))
    return result


@task(
    name="upload_erased",
    task_run_name="upload_erased-shard-{polled.shard.index}",
    **stage_task_options(),
)
def upload_erased(job: ShardJob, polled: ShardTickets) -> ShardReport:
    """Write a shard's results to the output and commit its results part (stage 3 of 3).

    URL results are downloaded and written to ``{output}/images/{safe_key(row_key)}.{ext}``;
    rows with a presigned ``upload_url`` record it (signature redacted) instead.

    Example:
        ```python
        report = upload_erased.fn(job, polled)
        report.succeeded, report.part_uri
        ```
    """
    logger = _logger()
    report = _limited(job, lambda: upload_shard(job, polled), UPLOAD_TIMEOUT)
    logger.info(
        "shard %d committed: %d rows, %d succeeded, %d failed%s",
        report.shard_index,
        report.rows,
        report.succeeded,
        report.failed,
        f" ({_codes(report.error_counts)})" if report.error_counts else "",
    )
    return report


def _counts(st: ShardTickets) -> str:
    return ", ".join(f"{n} {state}" for state, n in sorted(st.counts().items()))


def _codes(counts: dict[str, int]) -> str:
    return ", ".join(f"{code} x{n}" for code, n in sorted(counts.items()))

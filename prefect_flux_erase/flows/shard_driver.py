"""Drive shards through submit → poll → upload on the flow's task runner, a few at a time.

Each shard is a chain of three task runs. The driver keeps at most ``max_in_flight`` shards *at
the API* (submitting or polling) and starts a shard's next stage the moment its previous one
finishes. A shard whose rows are all answered no longer counts: while it downloads and commits
its results (up to ``max_in_flight`` shards at once), the next shard is already submitting, so
the API's in-flight window stays full instead of idling through every commit. Tasks are
submitted only once their input exists: no worker slot is ever held by a task waiting for its
upstream, on a thread pool, Dask or Ray alike.

With ``prefetch`` (and the job's API slots, :mod:`~prefect_flux_erase.shards.api_slots`), that
many shards more start their submit stage: they read and validate their rows while the window
is full and send them the moment a slot frees, so no answered shard leaves a gap.
"""

from __future__ import annotations

import queue
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from prefect.futures import PrefectFuture

from prefect_flux_erase.flows.prefect_internals import (
    forget_cancel_event,
    forget_result_links,
    thread_pool_workers,
)
from prefect_flux_erase.manifest.plan import Shard
from prefect_flux_erase.memory import trim_native_heap
from prefect_flux_erase.run.executor import ShardFailure, ShardRunResult
from prefect_flux_erase.shards.api_backend import RunAborted
from prefect_flux_erase.shards.api_slots import forget as forget_slots
from prefect_flux_erase.shards.job import ShardJob
from prefect_flux_erase.shards.run_control import control_for
from prefect_flux_erase.shards.stages import ShardReport
from prefect_flux_erase.tasks.stages import poll_erase, submit_erase, upload_erased


def _start(
    stage: str, job: ShardJob, value: Any, events: queue.Queue[tuple[str, int, PrefectFuture[Any]]]
) -> None:
    shard_index = value.index if stage == "submit" else value.shard.index
    stage_task: Any = {"submit": submit_erase, "poll": poll_erase, "upload": upload_erased}[stage]
    # Plain values, not quote(): DaskTaskRunner does not unwrap quoted arguments.
    future: PrefectFuture[Any] = stage_task.submit(job, value)
    future.add_done_callback(lambda f: events.put((stage, shard_index, f)))


def drive_shards(
    job: ShardJob,
    shards: Iterable[Shard],
    *,
    max_in_flight: int,
    on_report: Callable[[ShardReport], None] | None = None,
    prefetch: int = 0,
) -> ShardRunResult:
    """Run every shard's three stages on the current flow's task runner; never raises per shard.

    A shard whose stage fails (after its own retries) is recorded in ``failures`` and left
    uncommitted. ``prefetch`` shards beyond ``max_in_flight`` may be submitting at once; only
    give it with API slots on the job (see the module docstring). Once the run stops (a
    rejected API key, no credits, the API unreachable, an interruption or a cancellation; see
    :mod:`~prefect_flux_erase.shards.run_control`) no new shard starts; shards already running
    wind down and commit what they have.

    Example:
        ```python
        result = drive_shards(job, plan.shards, max_in_flight=4, on_report=print)
        ```
    """
    pending = deque(shards)
    polled: deque[Any] = deque()  # shards answered, waiting for an upload slot
    events: queue.Queue[tuple[str, int, PrefectFuture[Any]]] = queue.Queue()
    result = ShardRunResult()
    control = control_for(job.run_key)
    at_api = 0  # shards submitting or polling
    uploading = 0

    def fill() -> None:
        nonlocal at_api, uploading
        while polled and uploading < max_in_flight:
            answered = polled.popleft()
            _start("upload", job, answered, events)
            forget_result_links(answered)
            uploading += 1
        # New shards wait while answered ones queue for an upload slot: storage, not the
        # API, is the bottleneck then, and piling up answered shards would not help.
        while (
            pending
            and at_api < max_in_flight + prefetch
            and not polled
            and result.aborted is None
            and not control.stop_requested
        ):
            _start("submit", job, pending.popleft(), events)
            at_api += 1

    fill()
    while at_api or uploading or polled:
        stage, shard_index, future = events.get()
        forget_cancel_event(getattr(future, "task_run_id", None))
        if stage == "upload":
            uploading -= 1
        elif stage == "poll":
            at_api -= 1
        try:
            value = future.result()
            del future  # its state holds the result: keep only the value from here on
        except Exception as exc:  # a failed stage: record it, keep the other shards going
            if stage == "submit":
                at_api -= 1
            result.failures.append(ShardFailure(shard_index, stage, f"{type(exc).__name__}: {exc}"))
            if isinstance(exc, RunAborted) and result.aborted is None:
                result.aborted = exc
            fill()
            continue
        if stage == "submit":
            _start("poll", job, value, events)
            forget_result_links(value)
        elif stage == "poll":
            polled.append(value)
        else:
            forget_result_links(value)
            result.reports.append(value)
            if value.stop is not None and result.aborted is None:
                result.aborted = value.stop
            trim_native_heap()  # a shard's stages are done: their freed memory can go back
            if on_report is not None:
                on_report(value)
        fill()
    return result


def thread_runner_allows(threads: int) -> bool:
    """Whether the current flow runs its tasks on a thread pool of at least ``threads`` workers.

    API slots (and so prefetching) work between threads of one process; on Dask or Ray, or on
    a pool too small for every shard the driver keeps going, they stay off.

    Example:
        >>> thread_runner_allows(4)      # outside a flow run: no
        False
    """
    workers = thread_pool_workers()
    return workers is not None and workers >= threads


class PrefectShardExecutor:
    """The Prefect face's :class:`~prefect_flux_erase.run.executor.ShardExecutor`: each shard
    stage is a Prefect task run on the flow's task runner (threads, Dask, Ray), with Prefect's
    retries, and the run's global concurrency limit when one is named.

    Example:
        ```python
        summary = execute_run(spec, PrefectShardExecutor(concurrency_limit="runware-api"))
        ```
    """

    def __init__(self, *, concurrency_limit: str | None = None) -> None:
        self.concurrency_limit = concurrency_limit

    def run_shards(
        self,
        job: ShardJob,
        shards: Iterable[Shard],
        *,
        max_in_flight: int,
        on_report: Callable[[ShardReport], None],
    ) -> ShardRunResult:
        """Drive the shards (:func:`drive_shards`) on the current flow's task runner."""
        job = replace(job, concurrency_limit=self.concurrency_limit)
        # One shard more reads and validates its rows while the API window is full (API
        # slots): only on a thread pool with a thread for every shard kept going.
        threads = 2 * max_in_flight + 1
        prefetch = 1 if job.backend == "runware" and thread_runner_allows(threads) else 0
        if prefetch:
            job = replace(job, api_slots=max_in_flight, slots_key=uuid.uuid4().hex)
        try:
            return drive_shards(
                job, shards, max_in_flight=max_in_flight, on_report=on_report, prefetch=prefetch
            )
        finally:
            forget_slots(job.slots_key)

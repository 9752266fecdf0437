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

import contextlib
import dataclasses
import queue
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from prefect.futures import PrefectFuture

from prefect_flux_erase.manifest.plan import Shard
from prefect_flux_erase.manifest.reader import trim_native_heap
from prefect_flux_erase.shards.job import ShardJob
from prefect_flux_erase.shards.stages import ShardReport
from prefect_flux_erase.tasks.stages import poll_erase, submit_erase, upload_erased


@dataclass
class ShardFailure:
    """A shard whose stage failed after its retries: it stays uncommitted (a rerun resumes it).

    Example:
        >>> ShardFailure(3, "poll", "TransientError: 503").describe()
        'shard 3 (poll): TransientError: 503'
    """

    shard_index: int
    stage: str
    message: str

    def describe(self) -> str:
        """One line for logs and the flow's failure message."""
        return f"shard {self.shard_index} ({self.stage}): {self.message}"


@dataclass
class DriveResult:
    """What driving the shards produced: one report per committed shard, and the failures."""

    reports: list[ShardReport] = field(default_factory=list)
    failures: list[ShardFailure] = field(default_factory=list)
    aborted: BaseException | None = None


def thread_runner_allows(threads: int) -> bool:
    """Whether the current flow runs its tasks on a thread pool of at least ``threads`` workers.

    API slots (and so prefetching) work between threads of one process; on Dask or Ray, or on
    a pool too small for every shard the driver keeps going, they stay off.

    Example:
        >>> thread_runner_allows(4)      # outside a flow run: no
        False
    """
    from prefect.context import FlowRunContext
    from prefect.task_runners import ThreadPoolTaskRunner

    context = FlowRunContext.get()
    runner = getattr(context, "task_runner", None)
    if not isinstance(runner, ThreadPoolTaskRunner):
        return False
    return int(getattr(runner, "_max_workers", 0) or 0) >= threads


def _forget_finished(future: PrefectFuture[Any] | None = None) -> None:
    """Drop the cancel event a thread-pool runner keeps for a finished stage run.

    The runner keeps one per task run for the whole flow run: three per shard, a thousand
    shards in a long run. Best effort: bookkeeping must never fail a run.
    """
    from prefect.context import FlowRunContext

    with contextlib.suppress(Exception):
        context = FlowRunContext.get()
        events = getattr(getattr(context, "task_runner", None), "_cancel_events", None)
        task_run_id = getattr(future, "task_run_id", None)
        if isinstance(events, dict) and task_run_id is not None:
            events.pop(task_run_id, None)


def _unlink(value: Any) -> None:
    """Forget Prefect's link from ``value`` (a stage's result) and its fields to their run's
    state: once the next stage has been submitted with it, nothing looks it up again."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    linked = getattr(context, "run_results", None)
    if not isinstance(linked, dict):
        return
    # Task threads add entries meanwhile: only single-key operations here (atomic in
    # CPython), never an iteration over the dict.
    parts = [value]
    if dataclasses.is_dataclass(value):
        parts += [getattr(value, f.name) for f in dataclasses.fields(value)]
    for part in parts:  # all alive here, so no other object can have their ids
        with contextlib.suppress(Exception):  # best effort: never fail a run over this
            entry = linked.get(id(part))
            ref = entry[2] if isinstance(entry, tuple) and len(entry) > 2 else None
            if entry is not None and (ref is None or ref() is part):
                linked.pop(id(part), None)


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
) -> DriveResult:
    """Run every shard's three stages on the current flow's task runner; never raises per shard.

    A shard whose stage fails (after its own retries) is recorded in ``failures`` and left
    uncommitted. ``prefetch`` shards beyond ``max_in_flight`` may be submitting at once; only
    give it with API slots on the job (see the module docstring). A run-wide abort (rejected
    API key, no credits) stops new shards from starting; shards already running finish and
    commit.

    Example:
        ```python
        result = drive_shards(job, plan.shards, max_in_flight=4, on_report=print)
        ```
    """
    from prefect_flux_erase.shards.api_backend import RunAborted

    pending = deque(shards)
    polled: deque[Any] = deque()  # shards answered, waiting for an upload slot
    events: queue.Queue[tuple[str, int, PrefectFuture[Any]]] = queue.Queue()
    result = DriveResult()
    at_api = 0  # shards submitting or polling
    uploading = 0

    def fill() -> None:
        nonlocal at_api, uploading
        while polled and uploading < max_in_flight:
            answered = polled.popleft()
            _start("upload", job, answered, events)
            _unlink(answered)
            uploading += 1
        # New shards wait while answered ones queue for an upload slot: storage, not the
        # API, is the bottleneck then, and piling up answered shards would not help.
        while (
            pending and at_api < max_in_flight + prefetch and not polled and result.aborted is None
        ):
            _start("submit", job, pending.popleft(), events)
            at_api += 1

    fill()
    while at_api or uploading or polled:
        stage, shard_index, future = events.get()
        _forget_finished(future)
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
            _unlink(value)
        elif stage == "poll":
            polled.append(value)
        else:
            _unlink(value)
            result.reports.append(value)
            trim_native_heap()  # a shard's stages are done: their freed memory can go back
            if on_report is not None:
                on_report(value)
        fill()
    return result

"""Drive shards through submit → poll → upload on the flow's task runner, a few at a time.

Each shard is a chain of three task runs. The driver keeps at most ``max_in_flight`` chains
going and starts a shard's next stage the moment its previous one finishes, so one shard's
polling overlaps other shards' submission and upload and the in-flight window never idles
waiting for a slow shard. Tasks are submitted only once their input exists: no worker slot is
ever held by a task waiting for its upstream, on a thread pool, Dask or Ray alike.
"""

from __future__ import annotations

import queue
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from prefect.futures import PrefectFuture

from prefect_flux_erase.manifest import Shard
from prefect_flux_erase.pipeline.config import ShardJob
from prefect_flux_erase.pipeline.shard import ShardReport
from prefect_flux_erase.tasks.shard import poll_erase, submit_erase, upload_erased

_NEXT_STAGE = {"submit": "poll", "poll": "upload"}


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
) -> DriveResult:
    """Run every shard's three stages on the current flow's task runner; never raises per shard.

    A shard whose stage fails (after its own retries) is recorded in ``failures`` and left
    uncommitted. A run-wide abort (rejected API key, no credits) stops new shards from starting;
    shards already running finish and commit.

    Example:
        ```python
        result = drive_shards(job, plan.shards, max_in_flight=4, on_report=print)
        ```
    """
    from prefect_flux_erase.pipeline.backends import RunAborted

    pending = deque(shards)
    events: queue.Queue[tuple[str, int, PrefectFuture[Any]]] = queue.Queue()
    result = DriveResult()
    active = 0

    def fill() -> None:
        nonlocal active
        while pending and active < max_in_flight and result.aborted is None:
            _start("submit", job, pending.popleft(), events)
            active += 1

    fill()
    while active:
        stage, shard_index, future = events.get()
        try:
            value = future.result()
        except Exception as exc:  # a failed stage: record it, keep the other shards going
            active -= 1
            result.failures.append(ShardFailure(shard_index, stage, f"{type(exc).__name__}: {exc}"))
            if isinstance(exc, RunAborted) and result.aborted is None:
                result.aborted = exc
            fill()
            continue
        next_stage = _NEXT_STAGE.get(stage)
        if next_stage is not None:
            _start(next_stage, job, value, events)
            continue
        active -= 1
        result.reports.append(value)
        if on_report is not None:
            on_report(value)
        fill()
    return result

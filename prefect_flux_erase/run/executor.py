"""How a run's shards are executed: a small interface, and the core's own asyncio executor.

A run's rules (plan, skip committed, assemble, threshold) are the front door's; *where* each
shard's stages run is an executor's. The interface is one method, :meth:`ShardExecutor.
run_shards`: run every shard through submit → poll → upload, at most ``max_in_flight`` at the
API at once, call ``on_report`` as each shard commits, and return the failures instead of
raising. Once the run's control (:mod:`~prefect_flux_erase.shards.run_control`) says the run
is stopping — a run-level fault, an interruption, a cancellation — no new shard starts, and a
report's ``stop`` says why (set ``aborted`` from it). Three implementations:

- :class:`AsyncioShardExecutor` (here, the default): every shard on one event loop in this
  process, with the stage retries of :func:`run_shard_stage`.
- the Prefect flow's (:mod:`prefect_flux_erase.flows.shard_driver`): one Prefect task run per
  stage, on the flow's task runner (threads, Dask, Ray), with Prefect's retries.
- Airflow maps shards onto task instances itself (:mod:`prefect_flux_erase.airflow`) and calls
  :func:`arun_shard` in each.

Example:
    ```python
    result = AsyncioShardExecutor().run_shards(job, shards, max_in_flight=4, on_report=print)
    result.failures          # shards left uncommitted (a rerun resumes them)
    ```
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from prefect_flux_erase.manifest.plan import Shard
from prefect_flux_erase.memory import trim_native_heap
from prefect_flux_erase.shards.api_backend import RunAborted
from prefect_flux_erase.shards.job import ShardJob
from prefect_flux_erase.shards.run_control import RunControl, RunStopped, control_for
from prefect_flux_erase.shards.stage_loop import (
    POLL_TIMEOUT,
    SUBMIT_TIMEOUT,
    UPLOAD_TIMEOUT,
    run_stage,
)
from prefect_flux_erase.shards.stages import ShardReport, poll_shard, submit_shard, upload_shard
from prefect_flux_erase.storage.faults import is_transient_fault

T = TypeVar("T")

#: Retries of a stage after a transient fault (the API or the storage unreachable, a timeout).
STAGE_RETRIES = 3
#: First delay between stage retries in seconds, doubled each time and jittered by up to 50 %.
STAGE_RETRY_DELAY = 2.0


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
        """One line for logs and the run's failure message."""
        return f"shard {self.shard_index} ({self.stage}): {self.message}"


@dataclass
class ShardRunResult:
    """What running the shards produced: one report per committed shard, and the failures.

    ``aborted`` holds why the run stopped (a run-level fault such as a rejected API key, or
    an interruption): once it is seen, no further shard starts.

    Example:
        >>> result = ShardRunResult(failures=[ShardFailure(1, "submit", "OSError: down")])
        >>> len(result.reports), result.failures[0].describe()
        (0, 'shard 1 (submit): OSError: down')
    """

    reports: list[ShardReport] = field(default_factory=list)
    failures: list[ShardFailure] = field(default_factory=list)
    aborted: BaseException | None = None


class ShardExecutor(Protocol):
    """Runs a run's shards; never raises for one shard's failure.

    Example:
        ```python
        class Serial:
            def run_shards(self, job, shards, *, max_in_flight, on_report):
                ...
        ```
    """

    def run_shards(
        self,
        job: ShardJob,
        shards: Iterable[Shard],
        *,
        max_in_flight: int,
        on_report: Callable[[ShardReport], None],
    ) -> ShardRunResult:
        """Run every shard's three stages; report each committed shard; return the failures."""
        ...


async def run_shard_stage(
    stage: Callable[[], Awaitable[T]],
    *,
    timeout: float,  # noqa: ASYNC109 (a budget per attempt, not for the whole call)
    retries: int = STAGE_RETRIES,
    delay: float = STAGE_RETRY_DELAY,
) -> T:
    """Run one stage with a timeout, again after a transient fault (up to ``retries`` times).

    A retry is safe: task UUIDs are deterministic, so rows already sent are recovered through
    ``conflictTaskUUID``, not charged again. Permanent faults and run-wide aborts are raised at
    once.

    Example:
        >>> async def stage() -> int:
        ...     return 7
        >>> asyncio.run(run_shard_stage(stage, timeout=5))
        7
    """
    attempt = 0
    while True:
        try:
            async with asyncio.timeout(timeout):
                return await stage()
        except Exception as exc:
            if attempt >= retries or isinstance(exc, RunAborted):
                raise
            if not is_transient_fault(exc):
                raise
            wait = delay * 2**attempt
            await asyncio.sleep(wait + random.uniform(0, 0.5 * wait))
            attempt += 1


async def arun_shard(
    job: ShardJob,
    shard: Shard,
    *,
    at_api: AbstractAsyncContextManager[object] | None = None,
    committing: AbstractAsyncContextManager[object] | None = None,
    raise_on_stop: bool = True,
) -> ShardReport:
    """One shard end to end — submit, poll, upload and commit its results part — with the
    stage retries of :func:`run_shard_stage`.

    ``at_api`` is held while the shard submits and polls, ``committing`` while it uploads
    (e.g. semaphores shared by an executor's shards). A failed stage raises
    :class:`StageFailed`, which names the stage. When the run stopped while the shard ran (a
    run-level fault, an interruption) the shard commits what it has and then raises
    :class:`~prefect_flux_erase.shards.run_control.RunStopped` (a one-shard task, as Airflow
    maps them, fails with what to fix); an executor that reads the report's ``stop`` itself
    passes ``raise_on_stop=False``.

    Example:
        ```python
        report = await arun_shard(job, shard)
        report.succeeded, report.part_uri
        ```
    """
    stage = "submit"
    try:
        async with at_api or contextlib.nullcontext():
            submitted = await run_shard_stage(
                lambda: submit_shard(job, shard), timeout=SUBMIT_TIMEOUT
            )
            stage = "poll"
            polled = await run_shard_stage(lambda: poll_shard(job, submitted), timeout=POLL_TIMEOUT)
        stage = "upload"
        async with committing or contextlib.nullcontext():
            report = await run_shard_stage(
                lambda: upload_shard(job, polled), timeout=UPLOAD_TIMEOUT
            )
    except Exception as exc:
        raise StageFailed(shard.index, stage, exc) from exc
    if raise_on_stop and report.stop is not None:
        raise RunStopped(
            report.stop, done_rows=report.rows - report.unfinished, total_rows=report.rows
        )
    return report


class _NotStarted(Exception):
    """The run stopped while this shard waited for its turn: it never started (no part)."""


class _StartGate:
    """An executor's "shards at the API" semaphore that lets no shard in once the run stops."""

    def __init__(self, capacity: int, control: RunControl) -> None:
        self._semaphore = asyncio.Semaphore(capacity)
        self._control = control

    async def __aenter__(self) -> None:
        await self._semaphore.acquire()
        if self._control.stop_requested:
            self._semaphore.release()
            raise _NotStarted

    async def __aexit__(self, *exc: object) -> None:
        self._semaphore.release()


class StageFailed(Exception):
    """A shard's stage failed after its retries; ``cause`` is the stage's own error.

    Example:
        >>> str(StageFailed(2, "poll", TimeoutError("slow")))
        'shard 2 (poll): TimeoutError: slow'
    """

    def __init__(self, shard_index: int, stage: str, cause: BaseException) -> None:
        self.failure = ShardFailure(shard_index, stage, f"{type(cause).__name__}: {cause}")
        self.cause = cause
        super().__init__(self.failure.describe())

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.failure.shard_index, self.failure.stage, self.cause))


class AsyncioShardExecutor:
    """Every shard on one event loop in this process: the core's default executor.

    At most ``max_in_flight`` shards are at the API (submitting or polling) and as many more
    may be downloading and committing their results, as with the Prefect flow's driver.

    Example:
        ```python
        result = AsyncioShardExecutor().run_shards(job, shards, max_in_flight=4,
                                                   on_report=print)
        ```
    """

    def run_shards(
        self,
        job: ShardJob,
        shards: Iterable[Shard],
        *,
        max_in_flight: int,
        on_report: Callable[[ShardReport], None],
    ) -> ShardRunResult:
        """Run the shards on an event loop of their own (see :meth:`arun_shards`)."""
        return run_stage(
            self.arun_shards(job, shards, max_in_flight=max_in_flight, on_report=on_report)
        )

    async def arun_shards(
        self,
        job: ShardJob,
        shards: Iterable[Shard],
        *,
        max_in_flight: int,
        on_report: Callable[[ShardReport], None],
    ) -> ShardRunResult:
        """The same, on the running event loop.

        Example:
            ```python
            result = await AsyncioShardExecutor().arun_shards(job, shards, max_in_flight=4,
                                                              on_report=print)
            ```
        """
        result = ShardRunResult()
        control = control_for(job.run_key)
        at_api = _StartGate(max_in_flight, control)
        committing = asyncio.Semaphore(max_in_flight)
        queue: Iterator[Shard] = iter(shards)

        async def one(shard: Shard) -> None:
            try:
                report = await arun_shard(
                    job, shard, at_api=at_api, committing=committing, raise_on_stop=False
                )
            except StageFailed as failed:  # a failed shard: record it, keep the others going
                if isinstance(failed.cause, _NotStarted):
                    return  # left for a rerun, like the shards never taken
                result.failures.append(failed.failure)
                if isinstance(failed.cause, RunAborted) and result.aborted is None:
                    result.aborted = failed.cause
                return
            result.reports.append(report)
            trim_native_heap()  # a shard's stages are done: their freed memory can go back
            on_report(report)
            if report.stop is not None and result.aborted is None:
                result.aborted = report.stop

        async def worker() -> None:
            # Shards are taken one at a time, so a run of many shards never holds them all.
            while result.aborted is None and not control.stop_requested:
                shard = next(queue, None)
                if shard is None:
                    return
                await one(shard)

        await asyncio.gather(*(worker() for _ in range(2 * max_in_flight)))
        return result

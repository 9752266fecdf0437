"""Running a stage's coroutine from sync code: one event loop per call, with a timeout.

Used by the core's executor, the Prefect tasks and the Airflow operators. The Prefect tasks
are sync functions around ``async`` pipeline code: an ``async`` task submitted from a sync flow
would get a fresh event loop *and* a fresh Prefect API client per task run (measured here at
~25 ms of CPU each); a sync task reuses the flow's client and runs its coroutine on a loop of
its own. Prefect's ``timeout_seconds`` cannot interrupt a sync task in a worker thread (and
warns so on every run), so the timeout is enforced here, on the loop, where cancelling the
coroutine works.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

#: Stage timeouts, in seconds: generous, because a shard waits for a model; a hung stage is
#: cut off and retried (its rows are recovered by taskUUID, not charged again). They are
#: enforced on the stage's own event loop (``run_stage`` and the core executor's
#: ``run_shard_stage``), which cancels the stage's awaits; Prefect's ``timeout_seconds``
#: cannot interrupt a sync task in a worker thread.
SUBMIT_TIMEOUT = 1800.0
POLL_TIMEOUT = 3600.0
UPLOAD_TIMEOUT = 1800.0


def run_stage(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run a stage coroutine to completion from sync code, on an event loop of its own.

    In a worker thread (the usual case) the loop runs right here; when the caller's thread
    already runs an event loop (a stage task called from async code), it runs in a new thread.
    Past ``timeout`` seconds the stage is cancelled and ``TimeoutError`` (transient: the stage
    task retries) is raised.

    Example:
        >>> async def stage() -> int:
        ...     return 3
        >>> run_stage(stage(), timeout=60)
        3
    """

    async def bounded() -> T:
        scope = asyncio.timeout(timeout)
        try:
            async with scope:
                return await coro
        except TimeoutError:
            if scope.expired():
                raise TimeoutError(f"the stage did not finish within {timeout} s") from None
            raise

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _run_on_new_loop(bounded())
    context = contextvars.copy_context()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="flux-erase-stage") as pool:
        return pool.submit(context.run, _run_on_new_loop, bounded()).result()


class _SharedPool(ThreadPoolExecutor):
    """The worker threads of every stage's ``asyncio.to_thread`` calls, kept for the process.

    ``asyncio.run`` gives each new event loop a default executor of its own and joins its
    threads when the loop closes: a few threads created and destroyed per stage, thousands in
    a long run, each scattering its allocations over the C allocator's per-thread arenas.
    Stages share this pool instead; closing a loop leaves it running.
    """

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Kept for the next stage (the interpreter stops the threads at exit)."""


_POOL = _SharedPool(max_workers=32, thread_name_prefix="flux-erase-io")


def _run_on_new_loop(coro: Coroutine[Any, Any, T]) -> T:
    with asyncio.Runner() as runner:
        runner.get_loop().set_default_executor(_POOL)
        return runner.run(coro)

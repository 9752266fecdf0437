"""`LocalBackend`: rows erased in this process by the embedded engine, in a thread or process pool.

It speaks the same verbs as :class:`~prefect_flux_erase.shards.api_backend.RunwareBackend`, so the
stages, tickets and results schema do not change with the backend. Like a ``sync`` delivery,
``submit`` returns each row done (its image already written) or failed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from types import TracebackType
from typing import TYPE_CHECKING, Any

from prefect_flux_erase.shards.rows import PreparedRow, ResultRef, RowTicket

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from prefect_flux_erase.shards.api_backend import Store
    from prefect_flux_erase.shards.job import ShardJob

_PROCESS_POOL: concurrent.futures.ProcessPoolExecutor | None = None


def _process_pool() -> concurrent.futures.ProcessPoolExecutor:
    global _PROCESS_POOL
    if _PROCESS_POOL is None:
        # spawn, not fork: forking a process that runs Prefect's threads can deadlock.
        _PROCESS_POOL = concurrent.futures.ProcessPoolExecutor(
            max_workers=os.cpu_count() or 2, mp_context=multiprocessing.get_context("spawn")
        )
    return _PROCESS_POOL


def erase_and_encode(
    engine: str,
    rgb: NDArray[np.uint8],
    alpha: NDArray[np.uint8] | None,
    mask: NDArray[np.bool_],
    dilate_pixels: int,
    seed: int,
    output_format: str,
    quality: int,
) -> bytes:
    """Run a local engine on decoded inputs and encode the result (picklable, for any pool).

    Example:
        >>> import numpy as np
        >>> rgb = np.zeros((4, 4, 3), np.uint8); mask = np.zeros((4, 4), bool)
        >>> erase_and_encode("echo", rgb, None, mask, 0, 1, "PNG", 95)[:4]
        b'\\x89PNG'
    """
    from prefect_flux_erase.engine.imageio import encode_image

    # By keyword: the local engine takes dilate_pixels and seed keyword-only.
    out = resolve_engine(engine)(rgb, mask, dilate_pixels=dilate_pixels, seed=seed)
    return encode_image(out, output_format, quality, alpha)


def resolve_engine(name: str) -> Callable[..., Any]:
    """The engine function ``(rgb, mask, dilate_pixels, seed) -> rgb`` called ``name``.

    Example:
        >>> resolve_engine("echo").__name__
        'echo_fill'
    """
    if name == "echo":
        from prefect_flux_erase.engine.echo import echo_fill

        return echo_fill
    import importlib

    engine_pkg = importlib.import_module("prefect_flux_erase.engine")
    get_engine: Callable[[str], Callable[..., Any]] = engine_pkg.get_engine
    return get_engine(name)


def result_seed(task_uuid: str, k: int) -> int:
    """The seed of result ``k`` of a task: derived from its taskUUID, so reruns reproduce it.

    Example:
        >>> result_seed("3f9a3c3e-2b7e-4a51-9d1b-6d6f0a2f8e11", 0)
        1067072574
    """
    return (int(task_uuid.replace("-", "")[:8], 16) + k) & 0x7FFFFFFF


class LocalBackend:
    """Rows are erased in this process by the embedded engine, in a thread or process pool.

    Like a ``sync`` delivery: ``submit`` returns each row done (its image written) or failed;
    ``poll`` has nothing to wait for; costs are 0.0 and there is no source URL.

    Example:
        ```python
        async with LocalBackend(job) as backend:
            tickets = await backend.submit(prepared, store)
        ```
    """

    delivery: str | None = None
    keep_decoded = True

    def __init__(self, job: ShardJob) -> None:
        self.job = job
        self._thread_pool: concurrent.futures.ThreadPoolExecutor | None = None

    async def __aenter__(self) -> LocalBackend:
        resolve_engine(self.job.local_engine)  # fail early on an unknown engine name
        if self.job.local_executor == "thread":
            self._thread_pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=min(self.job.concurrency, os.cpu_count() or 2),
                thread_name_prefix="flux-erase-engine",
            )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._thread_pool is not None:
            self._thread_pool.shutdown(wait=True)
            self._thread_pool = None

    async def _erase_one(self, p: PreparedRow, store: Store) -> RowTicket:
        assert p.image is not None
        assert p.mask is not None
        settings = self.job.options
        task = p.task
        dilate = (
            task.settings.dilate_pixels
            if task.settings is not None and task.settings.dilate_pixels is not None
            else 10
        )
        executor: concurrent.futures.Executor = (
            self._thread_pool if self._thread_pool is not None else _process_pool()
        )
        loop = asyncio.get_running_loop()
        ticket = replace(p.ticket, started=p.ticket.started or time.time(), submits=1)
        refs = []
        try:
            for k in range(task.effective_number_results):
                data = await loop.run_in_executor(
                    executor,
                    erase_and_encode,
                    self.job.local_engine,
                    p.image.rgb,
                    p.image.alpha,
                    p.mask,
                    dilate,
                    result_seed(task.task_uuid, k),
                    settings.output_format,
                    settings.output_quality,
                )
                refs.append(ResultRef(written_uri=await store(ticket, k, data), cost=0.0))
                del data
        except (ValueError, RuntimeError, MemoryError) as exc:
            return ticket.failed(
                "engineError",
                f"the local engine failed on this row: {exc}; once fixed, run again with "
                "retry_failed=['engineError'] (--retry-failed engineError)",
            )
        return replace(ticket, state="done", results=tuple(refs), finished=time.time())

    async def submit(self, prepared: Sequence[PreparedRow], store: Store) -> list[RowTicket]:
        """Erase a window of validated rows and write their outputs (see :class:`ShardBackend`)."""
        return list(await asyncio.gather(*(self._erase_one(p, store) for p in prepared)))

    async def poll(
        self,
        tickets: Sequence[RowTicket],
        timeout: float,  # noqa: ASYNC109 - a budget with a defined result, not a cancel
        store: Store,
    ) -> list[RowTicket]:
        """Nothing is ever left running by :meth:`submit`: return the tickets as they are."""
        return list(tickets)

    async def fetch(self, ticket: RowTicket, ref: ResultRef) -> bytes:
        """Local results are written by :meth:`submit`; there is never a URL to fetch."""
        raise RuntimeError("the local backend has no result URLs to fetch")

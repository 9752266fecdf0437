"""Adding a run's results to the cross-run result cache as the shard stages write them.

Each result a row's task returns is written to the cache (:class:`~prefect_flux_erase.results.
cache.ResultCache`) when it is written to the row's output, under the task's UUID; the entry is
published once every result of the row is written, by the upload stage. A cache that cannot be
written is logged and skipped: the run's own outputs never depend on it.

Example:
    ```python
    writer = CacheWriter.for_job(job)
    if writer is not None:
        await writer.put(ticket, 0, png)          # in the store callback
        await writer.publish(ticket, uris)        # when the row is committed
    ```
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from prefect_flux_erase.results.cache import ResultCache
from prefect_flux_erase.runware.media import ext_for_format
from prefect_flux_erase.runware.redaction import redact_text

if TYPE_CHECKING:
    from prefect_flux_erase.shards.job import ShardJob
    from prefect_flux_erase.shards.rows import RowTicket

_log = logging.getLogger("prefect_flux_erase.cache")


class CacheWriter:
    """Writes one job's results into its result cache (see the module docstring).

    Example:
        ```python
        CacheWriter.for_job(job)       # None when the job has no cache
        ```
    """

    def __init__(self, cache: ResultCache, ext: str) -> None:
        self.cache = cache
        self.ext = ext

    @classmethod
    def for_job(cls, job: ShardJob) -> CacheWriter | None:
        """The job's writer, or ``None`` without a cache."""
        if job.cache is None:
            return None
        return cls(
            ResultCache(job.cache, job.cache_options), ext_for_format(job.options.output_format)
        )

    @staticmethod
    def wants(ticket: RowTicket) -> bool:
        """Whether the row's results belong in the cache: erased for it (not served from the
        cache, not another row's), with bytes this run sees (no presigned upload target)."""
        return bool(
            ticket.content_key
            and ticket.task_uuid
            and not ticket.cached
            and ticket.shared_with is None
            and not ticket.upload_url
        )

    async def put(self, ticket: RowTicket, k: int, data: bytes) -> None:
        """Write result ``k`` of the row (not visible until :meth:`publish`)."""
        if not self.wants(ticket):
            return
        assert ticket.content_key is not None
        assert ticket.task_uuid is not None
        try:
            await asyncio.to_thread(
                self.cache.put_result, ticket.content_key, ticket.task_uuid, k, self.ext, data
            )
        except Exception as exc:  # the cache is an optimisation: never fail a row for it
            _log.warning("could not write to the result cache: %s", redact_text(str(exc)))

    async def publish(self, ticket: RowTicket, uris: list[str]) -> None:
        """Publish the row's entry once all its results are written."""
        if not self.wants(ticket) or ticket.state != "done" or not uris:
            return
        assert ticket.content_key is not None
        assert ticket.task_uuid is not None
        costs = [r.cost for r in ticket.results if r.cost is not None]
        try:
            await asyncio.to_thread(
                self.cache.publish,
                ticket.content_key,
                ticket.task_uuid,
                count=len(uris),
                ext=self.ext,
                cost=round(sum(costs), 6) if costs else None,
            )
        except Exception as exc:
            _log.warning("could not publish a result cache entry: %s", redact_text(str(exc)))

"""Rows of equal content inside a shard's stages: one task sent, every row its own result.

Rows whose image bytes, mask bytes and settings are equal carry the same content key and so
the same taskUUID (:func:`~prefect_flux_erase.shards.rows.build_row_task`). Across shards and
processes the API itself dedupes them: the first submission runs and is billed, the others are
answered ``conflictTaskUUID`` and polled for the same results. Inside one window of a stage the
rows would go out in one request, where a repeated taskUUID is an error; :func:`submit_unique`
sends each task once and gives every row of it the answer.

The plan's scan says which row is the first of each content (``Shard.shared``):
:func:`mark_planned` stamps the others, which then record ``shared_with`` and a cost of 0.
The cost cap's decision (``Shard.unbudgeted``) is stamped here too.

Example:
    ```python
    tickets = mark_planned(tickets, shard)
    sent = await submit_unique(backend, prepared, store)
    ```
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prefect_flux_erase.manifest.plan import Shard
    from prefect_flux_erase.shards.api_backend import Store
    from prefect_flux_erase.shards.local_backend import LocalBackend
    from prefect_flux_erase.shards.rows import PreparedRow, RowTicket
    from prefect_flux_erase.shards.stages import Backend


#: The code of rows the cost cap kept from being sent (not final: a rerun continues them).
BUDGET_EXHAUSTED = "budgetExhausted"


def in_ranges(row: int, ranges: Sequence[tuple[int, int]]) -> bool:
    """Whether ``row`` falls in one of the ``[start, stop)`` ranges.

    Example:
        >>> in_ranges(5, ((0, 3), (5, 9))), in_ranges(4, ((0, 3), (5, 9)))
        (True, False)
    """
    return any(start <= row < stop for start, stop in ranges)


def mark_planned(tickets: list[RowTicket], shard: Shard) -> list[RowTicket]:
    """Stamp the plan's decisions on a shard's tickets: whose erase a row shares, and which
    rows the cost cap keeps from being sent.

    Example:
        >>> from prefect_flux_erase.manifest.plan import Shard
        >>> from prefect_flux_erase.shards.rows import RowTicket
        >>> t = [RowTicket(row_index=i, row_key=str(i), image_uri="a", mask_uri="m")
        ...      for i in range(3)]
        >>> s = Shard(0, "m.parquet", 0, 3, 0, shared=((2, 0),), unbudgeted=((1, 2),))
        >>> [(x.shared_with, x.unbudgeted) for x in mark_planned(t, s)]
        [(None, False), (None, True), (0, False)]
    """
    if not shard.shared and not shard.unbudgeted:
        return tickets
    shared = dict(shard.shared)
    return [
        replace(
            t,
            shared_with=shared.get(t.row_index),
            unbudgeted=in_ranges(t.row_index, shard.unbudgeted),
        )
        for t in tickets
    ]


def _answered_like(ticket: RowTicket, answer: RowTicket) -> RowTicket:
    """``ticket`` given the answer its task got when sent for another row of equal content."""
    return replace(
        ticket,
        task_uuid=answer.task_uuid,
        state=answer.state,
        results=answer.results,
        error_code=answer.error_code,
        error_message=answer.error_message,
        retryable=answer.retryable,
        resumed=answer.resumed,
        started=ticket.started or answer.started,
        finished=answer.finished,
        sent_at=answer.sent_at,
        submits=ticket.submits + 1,
        image_ref=answer.image_ref,
        mask_ref=answer.mask_ref,
    )


async def submit_unique(
    backend: Backend | LocalBackend, prepared: Sequence[PreparedRow], store: Store
) -> list[RowTicket]:
    """``backend.submit`` with each taskUUID sent once; one ticket per row, in order.

    Example:
        ```python
        tickets = await submit_unique(backend, prepared, store)
        ```
    """
    first: dict[str, int] = {}
    unique: list[PreparedRow] = []
    for p in prepared:
        if p.task.task_uuid not in first:
            first[p.task.task_uuid] = len(unique)
            unique.append(p)
    if len(unique) == len(prepared):
        return await backend.submit(prepared, store)
    answers = await backend.submit(unique, store)
    out = []
    for p in prepared:
        at = first[p.task.task_uuid]
        out.append(answers[at] if unique[at] is p else _answered_like(p.ticket, answers[at]))
    return out

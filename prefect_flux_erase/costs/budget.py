"""The cost cap: a run never sends a row that could take its spend above ``max_cost_usd``.

Before anything is sent, the cap is shared out in manifest order: each row that will be billed
(first with its content, not in the result cache) reserves the most it can cost — every
result, at the unsettled reference-image price, the largest size when its size is unknown —
while the reservations fit under the cap. The first row that does not fit, and every billed
row after it, gets none. Rows sharing a reserved row's content ride on its reservation.

A row without a reservation is never sent: it ends ``budgetExhausted``. That code is not final:
its shard stays uncommitted, so running again with a higher cap sends exactly those rows (rows
already erased are recovered by their taskUUID, not charged again). Since every reservation is
an upper bound and reservations never exceed the cap, spent + in flight stays under the cap in
every process of the run at every moment, without any shared counter: the decision travels with
each shard (:attr:`~prefect_flux_erase.manifest.plan.Shard.unbudgeted`).

The cap is per run invocation: what this call may spend.

Example:
    ```python
    budget = allocate(scan, max_cost_usd=25.0)
    shards = annotate_shards(run.todo, scan, budget)
    ```
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from prefect_flux_erase.errors import FluxEraseError
from prefect_flux_erase.shards.dedupe import BUDGET_EXHAUSTED

if TYPE_CHECKING:
    from prefect_flux_erase.costs.scan import ContentScan
    from prefect_flux_erase.manifest.plan import Shard
    from prefect_flux_erase.results.summary import EraseSummary

__all__ = ["BUDGET_EXHAUSTED", "Budget", "BudgetExhausted", "allocate", "annotate_shards"]


@dataclass(frozen=True)
class Budget:
    """How the cap was shared out: which rows may be sent, and what they may cost.

    Example:
        >>> import numpy as np
        >>> b = Budget(cap_usd=1.0, reserved_usd=0.9, budgeted=np.array([True, False]),
        ...            left_rows=1)
        >>> b.left_rows
        1
    """

    cap_usd: float | None
    reserved_usd: float
    #: Per scanned row: may it be sent (its own or its content's first row's reservation).
    budgeted: NDArray[np.bool_]
    #: Rows that would be billed but got no reservation.
    left_rows: int


def allocate(scan: ContentScan, max_cost_usd: float | None) -> Budget:
    """Share ``max_cost_usd`` out over the scanned rows, in row order (see the module doc).

    ``None`` is no cap: every row may be sent.

    Example:
        ```python
        budget = allocate(scan, 10.0)
        budget.left_rows           # billed rows the cap leaves for a later run
        ```
    """
    if max_cost_usd is None:
        return Budget(None, 0.0, np.ones(scan.rows, np.bool_), 0)
    cap = round(max_cost_usd * 1e6)
    spent = 0
    reserved_rows: list[int] = []
    left = 0
    stopped = False
    for pos in np.flatnonzero(scan.billed):
        high = scan.row_cost_micro(int(pos))[1]
        if not stopped and spent + high <= cap:
            spent += high
            reserved_rows.append(int(scan.index[pos]))
        else:
            stopped = True  # in manifest order: no later row jumps the queue
            left += 1
    reserved = np.asarray(reserved_rows, np.int64)
    budgeted = np.isin(scan.leader, reserved) & scan.usable & ~scan.cached
    return Budget(max_cost_usd, spent / 1e6, budgeted, left)


def _ranges(rows: NDArray[np.int64]) -> tuple[tuple[int, int], ...]:
    """Sorted row indexes as ``[start, stop)`` runs."""
    if not len(rows):
        return ()
    breaks = np.flatnonzero(np.diff(rows) != 1)
    starts = np.concatenate(([rows[0]], rows[breaks + 1]))
    stops = np.concatenate((rows[breaks] + 1, [rows[-1] + 1]))
    return tuple((int(a), int(b)) for a, b in zip(starts, stops, strict=True))


def annotate_shards(
    shards: Sequence[Shard], scan: ContentScan, budget: Budget | None = None
) -> list[Shard]:
    """The shards with the scan's decisions: ``shared`` (row, row whose erase it uses) and,
    under a cap, ``unbudgeted`` (row ranges without a reservation).

    Example:
        ```python
        todo = annotate_shards(run.todo, scan, allocate(scan, 10.0))
        ```
    """
    out = []
    for shard in shards:
        lo = np.searchsorted(scan.index, shard.global_start)
        hi = np.searchsorted(scan.index, shard.global_start + shard.num_rows)
        rows, leaders = scan.index[lo:hi], scan.leader[lo:hi]
        follows = (leaders >= 0) & (leaders != rows)
        shared = tuple(
            (int(r), int(lead)) for r, lead in zip(rows[follows], leaders[follows], strict=True)
        )
        unbudgeted: tuple[tuple[int, int], ...] = ()
        if budget is not None and budget.cap_usd is not None:
            unbudgeted = _ranges(rows[~budget.budgeted[lo:hi]])
        out.append(replace(shard, shared=shared, unbudgeted=unbudgeted))
    return out


class BudgetExhausted(FluxEraseError):
    """The run stopped at its cost cap: some rows were not sent (``budgetExhausted``).

    Everything else is done and written; ``summary`` says how many rows are left. Running
    again with a higher ``max_cost_usd`` sends exactly those rows; nothing is charged twice.

    Example:
        >>> from prefect_flux_erase.results.summary import EraseSummary
        >>> s = EraseSummary(rows=10, succeeded=6, failed=4, results_uri="r.parquet",
        ...                  budget_exhausted=4, max_cost_usd=0.2, total_cost=0.18)
        >>> err = BudgetExhausted(s)
        >>> str(err).split(" (")[0], err.code
        ('the cost cap of $0.2000 was reached: 4 of 10 rows were not sent', 'budgetExhausted')
    """

    code: str
    summary: EraseSummary

    def __init__(self, summary: EraseSummary) -> None:
        cap = summary.max_cost_usd or 0.0
        super().__init__(
            f"the cost cap of ${cap:.4f} was reached: {summary.budget_exhausted} of "
            f"{summary.rows} rows were not sent (${summary.total_cost:.4f} spent); run again "
            "with a higher cap to erase them (rows already erased are not charged again); "
            f"see {summary.results_uri}",
            code=BUDGET_EXHAUSTED,
            summary=summary,
        )

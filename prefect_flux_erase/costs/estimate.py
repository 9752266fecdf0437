"""The cost estimate: what a run will bill, before it runs, from image headers alone.

:func:`~prefect_flux_erase.run.estimate.estimate_cost` (and ``flux-erase estimate``) scans
the manifest (:mod:`~prefect_flux_erase.costs.scan`) and prices every row that will be billed
with the documented price (:mod:`~prefect_flux_erase.runware.pricing`): $0.03 for the first output
megapixel plus $0.004 per further megapixel, sizes rounded up, inputs over 4 MP resized, times
``numberResults``. Rows that repeat an earlier row's content, rows the result cache holds and
rows that would fail locally cost nothing. Whether the input also counts as a reference image
($0.004/MP) is unsettled (RUNWARE_API §11 #16), so the estimate is a range: ``low_usd``
without, ``high_usd`` with; rows whose size cannot be known (Runware image UUIDs) are priced
from 1 MP to 4 MP. No API request is made, unless ``verify`` asks the API's dry run for the
price of each image size.

Every run of the ``runware`` backend makes the same estimate first, logs it, and records it
in its :class:`~prefect_flux_erase.results.summary.EraseSummary` next to the actual cost.

Example:
    ```python
    from prefect_flux_erase.run import estimate_cost

    est = estimate_cost("manifest.parquet", options=EraseOptions(number_results=2))
    print(est.describe())   # 1,000 rows, 100 distinct contents: 100 results billed ... $3.00
    ```
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from prefect_flux_erase.costs.budget import Budget
    from prefect_flux_erase.costs.scan import ContentScan
    from prefect_flux_erase.shards.job import ShardJob


@dataclass(frozen=True)
class CostEstimate:
    """What a run will bill (see the module docstring). Amounts in USD.

    Example:
        >>> est = CostEstimate(rows=3, distinct=2, billed_rows=2, results_billed=2,
        ...                    low_usd=0.06, high_usd=0.068)
        >>> est.describe()
        '3 rows, 2 distinct contents: 2 results billed, $0.0600 (up to $0.0680 if the input is also billed as a reference image)'
    """  # noqa: E501

    rows: int
    distinct: int
    billed_rows: int
    results_billed: int
    low_usd: float
    high_usd: float
    number_results: int = 1
    shared_rows: int = 0
    cached_rows: int = 0
    unusable_rows: int = 0
    unknown_size_rows: int = 0
    output_megapixels: int = 0
    skipped_rows: int = 0
    max_cost_usd: float | None = None
    reserved_usd: float | None = None
    rows_over_cap: int = 0
    verified_usd: float | None = None

    def describe(self) -> str:
        """One line for logs and the CLI."""
        parts = [f"{self.rows:,} rows, {self.distinct:,} distinct contents"]
        notes = []
        if self.shared_rows:
            notes.append(f"{self.shared_rows:,} share another row's erase")
        if self.cached_rows:
            notes.append(f"{self.cached_rows:,} from the cache")
        if self.unusable_rows:
            notes.append(f"{self.unusable_rows:,} fail locally")
        if self.skipped_rows:
            notes.append(f"{self.skipped_rows:,} already done")
        if notes:
            parts[0] += f" ({', '.join(notes)})"
        money = f"${self.low_usd:.4f}"
        if self.high_usd > self.low_usd + 1e-9:
            why = (
                "if the input is also billed as a reference image"
                if not self.unknown_size_rows
                else "for inputs of unknown size and the input billed as a reference image"
            )
            money += f" (up to ${self.high_usd:.4f} {why})"
        parts.append(f"{self.results_billed:,} results billed, {money}")
        text = ": ".join(parts)
        if self.verified_usd is not None:
            text += f"; the API's dry run prices it at ${self.verified_usd:.4f}"
        if self.max_cost_usd is not None:
            text += f"; cap ${self.max_cost_usd:.4f}"
            if self.rows_over_cap:
                text += f": {self.rows_over_cap:,} rows left for a later run"
        return text

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def estimate_from_scan(
    scan: ContentScan, *, skipped_rows: int = 0, budget: Budget | None = None
) -> CostEstimate:
    """The estimate of a scanned run (and of its cap's share-out, if any).

    Example:
        ```python
        est = estimate_from_scan(scan_contents(job, shards))
        ```
    """
    from prefect_flux_erase.costs.scan import UNKNOWN_SIZE

    billed = np.flatnonzero(scan.billed)
    low = high = 0
    for pos in billed:
        a, b = scan.row_cost_micro(int(pos))
        low += a
        high += b
    usable = scan.usable
    return CostEstimate(
        rows=scan.rows,
        distinct=scan.distinct,
        billed_rows=len(billed),
        results_billed=len(billed) * scan.number_results,
        low_usd=round(low / 1e6, 6),
        high_usd=round(high / 1e6, 6),
        number_results=scan.number_results,
        shared_rows=scan.shared_rows,
        cached_rows=int(np.count_nonzero(scan.cached & usable)),
        unusable_rows=int(np.count_nonzero(~usable)),
        unknown_size_rows=int(np.count_nonzero(scan.status[billed] == UNKNOWN_SIZE)),
        output_megapixels=scan.output_megapixels(),
        skipped_rows=skipped_rows,
        max_cost_usd=budget.cap_usd if budget is not None else None,
        reserved_usd=budget.reserved_usd if budget is not None and budget.cap_usd else None,
        rows_over_cap=budget.left_rows if budget is not None else 0,
    )


def verify_with_dry_run(job: ShardJob, scan: ContentScan) -> float | None:
    """The API's own price for the billed rows: one dry-run task (``X-Runware-Dry-Run: 1``)
    per distinct image size, times the rows of that size. ``None`` when some billed row's size
    is unknown or the API gave no price.

    Caution: an API that ignored the header would run (and bill) those tasks: one per size.

    Example:
        ```python
        verify_with_dry_run(job, scan)     # 3.0
        ```
    """
    from prefect_flux_erase.costs.scan import UNKNOWN_SIZE

    billed = np.flatnonzero(scan.billed)
    if job.runware is None or np.any(scan.status[billed] == UNKNOWN_SIZE):
        return None
    counts = Counter((int(scan.width[p]), int(scan.height[p])) for p in billed)
    if not counts:
        return 0.0
    prices = asyncio.run(_dry_run_prices(job, scan, list(counts)))
    if any(prices.get(size) is None for size in counts):
        return None
    return round(sum(count * (prices[size] or 0.0) for size, count in counts.items()), 6)


async def _dry_run_prices(
    job: ShardJob, scan: ContentScan, sizes: list[tuple[int, int]]
) -> dict[tuple[int, int], float | None]:
    from prefect_flux_erase.runware.ids import task_uuid
    from prefect_flux_erase.runware.media import to_data_uri
    from prefect_flux_erase.storage import read_bytes

    assert job.runware is not None
    tasks = {}
    for size in sizes:
        image, mask, image_kind, mask_kind, dilate, _upload = scan.samples[size]
        inputs = []
        for value, kind in ((image, image_kind), (mask, mask_kind)):
            inputs.append(
                value
                if kind != "file"
                else to_data_uri(read_bytes(value, job.input_storage_options))
            )
        uuid = task_uuid(job.run_key, f"dry-run:{size[0]}x{size[1]}", 1)
        tasks[size] = job.options.to_task(
            uuid,
            image=inputs[0],
            mask=inputs[1],
            overrides={"settings": {"dilatePixels": dilate}, "includeCost": True},
        )
    async with job.runware.open_client() as client:
        costs = await client.price(list(tasks.values()))
    return {size: costs.get(task.task_uuid) for size, task in tasks.items()}

"""Money: know the cost before a run, cap it, and never pay twice for the same pixels.

- :class:`CostEstimate` (made by :func:`prefect_flux_erase.run.estimate_cost`): what a
  manifest will bill, from image headers alone (no API request), at the documented price, as a
  range where the price is unsettled.
- ``max_cost_usd`` (:mod:`~prefect_flux_erase.costs.budget`): a run never sends a row that
  could take its spend above the cap; rows left end ``budgetExhausted`` and a rerun continues.
- Dedupe (content keys: :mod:`~prefect_flux_erase.shards.contents`): rows of identical
  image, mask and settings are erased and billed once, each with its own output.
- The cross-run result cache (:mod:`~prefect_flux_erase.results.cache`, ``cache=URI``).

Every rule lives here, in the core: the Prefect flow, the CLI, the front door and the Airflow
face pass options through.

Example:
    ```python
    from prefect_flux_erase.run import estimate_cost

    print(estimate_cost("manifest.parquet").describe())
    ```
"""

from prefect_flux_erase.costs.budget import BUDGET_EXHAUSTED, Budget, BudgetExhausted, allocate
from prefect_flux_erase.costs.estimate import CostEstimate, estimate_from_scan
from prefect_flux_erase.costs.scan import ContentScan, scan_contents

__all__ = [
    "BUDGET_EXHAUSTED",
    "Budget",
    "BudgetExhausted",
    "ContentScan",
    "CostEstimate",
    "allocate",
    "estimate_from_scan",
    "scan_contents",
]

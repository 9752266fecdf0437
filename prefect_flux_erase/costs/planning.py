"""The cost step of planning a run: scan, estimate, share the cap out, mark shared rows.

:func:`~prefect_flux_erase.run.plan.plan_run` calls :func:`plan_costs` for every ``runware``
run with rows left, so every face (the Prefect flow, the CLI, plain Python, the Airflow DAG)
gets the same estimate, the same cap and the same dedupe. The decisions travel with the shards
(``Shard.shared``, ``Shard.unbudgeted``), so shard workers in other processes need nothing else.

Example:
    ```python
    run = plan_costs(RunPlan(spec=spec, job=job, plan=plan, todo=todo))
    run.estimate.describe()
    ```
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from prefect_flux_erase.costs.budget import allocate, annotate_shards
from prefect_flux_erase.costs.estimate import estimate_from_scan, verify_with_dry_run
from prefect_flux_erase.costs.scan import scan_contents

if TYPE_CHECKING:
    from prefect_flux_erase.run.plan import RunPlan


def plan_costs(run: RunPlan) -> RunPlan:
    """``run`` with its estimate, and its rows left annotated with the scan's decisions.

    Reads every input of the rows left once (streamed, headers only parsed); makes no API
    request unless ``verify_estimate`` asks for the dry-run check.

    Example:
        ```python
        run = plan_costs(run)
        run.todo[0].shared, run.todo[0].unbudgeted
        ```
    """
    spec = run.spec
    scan = scan_contents(run.job, run.todo)
    budget = allocate(scan, spec.max_cost_usd)
    estimate = estimate_from_scan(scan, skipped_rows=run.skipped_rows, budget=budget)
    if spec.verify_estimate:
        estimate = replace(estimate, verified_usd=verify_with_dry_run(run.job, scan))
    todo = annotate_shards(run.todo, scan, budget)
    return replace(run, todo=todo, estimate=estimate)

"""The cost step of planning a run (scan, estimate, share the cap out, mark shared rows), and
:func:`estimate_cost`, the same step alone, for a manifest nobody runs yet.

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
from typing import TYPE_CHECKING, Any

from prefect_flux_erase.costs.budget import allocate, annotate_shards
from prefect_flux_erase.costs.estimate import (
    CostEstimate,
    estimate_from_scan,
    verify_with_dry_run,
)
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


#: Stands for the output of an estimate given none (never read or written).
_NO_OUTPUT = "memory://flux-erase-estimate/no-output"


def estimate_cost(manifest: str, *, output: str | None = None, **options: Any) -> CostEstimate:
    """What erasing ``manifest`` on the Runware API will bill, without running it.

    Every option of :class:`~prefect_flux_erase.run.spec.RunSpec` that shapes the bill
    applies: ``options`` (``EraseOptions``: ``number_results``, ``dilate_pixels``…), the
    columns, ``storage_options``, ``pass_urls``, ``dedupe``, ``cache`` (rows it holds cost
    nothing), ``max_cost_usd`` (how many rows the cap would leave). With ``output``, rows an
    earlier run of the same run key committed are left out (what a rerun would still bill).
    No API key is needed and no request is made, unless ``verify_estimate=True`` asks the
    API's dry run (``runware=RunwareConfig(...)`` or ``RUNWARE_API_KEY``).

    Raises:
        RunConfigError: an invalid option. ManifestError: a missing or unreadable manifest.

    Example:
        ```python
        est = estimate_cost("s3://bucket/m.parquet", storage_options={"anon": False},
                            options=EraseOptions(number_results=2))
        est.low_usd, est.high_usd, est.distinct
        ```
    """
    from prefect_flux_erase.manifest.keys import mark_duplicate_keys
    from prefect_flux_erase.manifest.plan import plan_manifest
    from prefect_flux_erase.results.assemble import committed_shards
    from prefect_flux_erase.run.plan import RunPlan, build_job
    from prefect_flux_erase.run.spec import RunSpec

    options.setdefault("backend", "runware")
    spec = RunSpec(manifest, output or _NO_OUTPUT, **options)
    spec = spec.check(require_key=bool(spec.verify_estimate))
    job = build_job(spec)
    plan = mark_duplicate_keys(
        job.manifest, plan_manifest(job.manifest, shard_size=spec.shard_size)
    )
    done = committed_shards(spec.output, job.run_key, spec.out_storage_options) if output else set()
    todo = [s for s in plan.shards if s.index not in done]
    run = RunPlan(spec=spec, job=job, plan=plan, todo=todo)
    if not todo:
        return CostEstimate(
            rows=0,
            distinct=0,
            billed_rows=0,
            results_billed=0,
            low_usd=0.0,
            high_usd=0.0,
            number_results=spec.options.number_results,
            skipped_rows=run.skipped_rows,
            max_cost_usd=spec.max_cost_usd,
        )
    estimate = plan_costs(run).estimate
    assert estimate is not None
    return estimate

"""The front door: run a whole manifest in plain Python, with any orchestrator or none.

- :func:`run_manifest` / :func:`arun_manifest`: the whole run (plan → skip committed → shards →
  results → report → summary), on the core's asyncio executor unless given another.
- The steps, for orchestrators that run them as separate units (the Airflow DAG):
  :func:`plan_run`, :func:`build_job`, :func:`arun_shard`, :func:`finish_run`,
  :func:`check_threshold`, with :func:`shard_to_dict` / :func:`shard_from_dict` to pass shards
  around as JSON.
- :class:`ShardExecutor`: the interface an orchestrator implements to run shards its own way.
- Stopping: :func:`interrupt_runs` (a signal handler's call: every run in the process stops
  cleanly and raises :class:`RunStopped`), :func:`stop_run` (one run, e.g. cancelled by its
  orchestrator). A run-level fault (the API unreachable, the key rejected, no credits) stops
  a run the same way by itself.

Nothing here imports Prefect or Airflow.

Example:
    ```python
    from prefect_flux_erase.run import run_manifest

    summary = run_manifest("manifest.parquet", "erased/", backend="local")
    print(summary.describe())
    ```
"""

from prefect_flux_erase.costs.budget import BudgetExhausted
from prefect_flux_erase.costs.estimate import CostEstimate
from prefect_flux_erase.results.summary import EraseSummary
from prefect_flux_erase.run.estimate import estimate_cost, plan_costs
from prefect_flux_erase.run.executor import (
    AsyncioShardExecutor,
    ShardExecutor,
    ShardFailure,
    ShardRunResult,
    StageFailed,
    arun_shard,
    run_shard_stage,
)
from prefect_flux_erase.run.manifest_run import (
    RunStopped,
    ShardsFailed,
    TooManyFailedRows,
    arun_manifest,
    check_threshold,
    describe_plan,
    execute_run,
    finish_run,
    run_manifest,
)
from prefect_flux_erase.run.plan import (
    RunPlan,
    build_job,
    manifest_spec,
    plan_run,
    shard_from_dict,
    shard_to_dict,
)
from prefect_flux_erase.run.progress import Progress, listen
from prefect_flux_erase.run.spec import RunConfigError, RunSpec, default_options
from prefect_flux_erase.runware.config import RunwareConfig
from prefect_flux_erase.runware.options import EraseOptions
from prefect_flux_erase.shards.api_backend import RunAborted
from prefect_flux_erase.shards.run_control import (
    clear_interrupt,
    interrupt_runs,
    stop_run,
)

__all__ = [
    "AsyncioShardExecutor",
    "BudgetExhausted",
    "CostEstimate",
    "EraseOptions",
    "EraseSummary",
    "Progress",
    "RunAborted",
    "RunConfigError",
    "RunPlan",
    "RunSpec",
    "RunStopped",
    "RunwareConfig",
    "ShardExecutor",
    "ShardFailure",
    "ShardRunResult",
    "ShardsFailed",
    "StageFailed",
    "TooManyFailedRows",
    "arun_manifest",
    "arun_shard",
    "build_job",
    "check_threshold",
    "clear_interrupt",
    "default_options",
    "describe_plan",
    "estimate_cost",
    "execute_run",
    "finish_run",
    "interrupt_runs",
    "listen",
    "manifest_spec",
    "plan_costs",
    "plan_run",
    "run_manifest",
    "run_shard_stage",
    "shard_from_dict",
    "shard_to_dict",
    "stop_run",
]

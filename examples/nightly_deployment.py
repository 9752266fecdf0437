"""Clean yesterday's images every night: a deployment of ``erase_manifest`` on a cron schedule.

A dataset keeps one manifest per day under ``{dataset}/manifests/YYYY-MM-DD.parquet``. The
``nightly_erase`` flow erases the day's manifest into ``{dataset}/erased/YYYY-MM-DD``; since the
output is per day, rerunning a night (a retry, a manual run) resumes it instead of paying twice.

Run:
    python examples/nightly_deployment.py                 # serve: runs at 02:00 UTC every day
    prefect deployment run 'nightly-erase/nightly-erase'  # from another shell: run one now

The same flow deploys to a work pool with ``examples/prefect.yaml``.
"""

# No `from __future__ import annotations` here: Prefect loads this file by path to run a
# deployment, and pydantic could then not resolve the string annotations of the flow's
# parameters (`Literal`): every deployed run would fail its parameter validation.

import datetime as dt
from typing import Any, Literal

from prefect import flow
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron

from prefect_flux_erase import (
    EraseSummary,
    FluxEraseSettings,
    RunwareCredentials,
    erase_manifest,
)

NIGHTLY = Cron("0 2 * * *", timezone="UTC")  # every day at 02:00 UTC
DEFAULT_PARAMETERS: dict[str, Any] = {
    "dataset": "s3://datasets/street-scenes",
    "backend": "runware",
    "credentials_block": "runware",
    "max_failed_fraction": 0.01,
}


@flow(name="nightly-erase", log_prints=True)
def nightly_erase(
    dataset: str,
    day: str | None = None,
    backend: Literal["local", "runware"] = "runware",
    credentials_block: str = "runware",
    settings_block: str | None = None,
    max_failed_fraction: float = 0.01,
) -> EraseSummary:
    """Erase the masked objects of one day's manifest (yesterday's by default).

    Args:
        dataset: Root URI of the dataset (``manifests/`` and ``erased/`` live under it).
        day: ``YYYY-MM-DD``; default yesterday (UTC), the day that just ended.
        backend: ``runware`` (the API) or ``local`` (the embedded engine, offline).
        credentials_block: Name of a saved ``RunwareCredentials`` block (``runware`` only).
        settings_block: Name of a saved ``FluxEraseSettings`` block; default the model's options.
        max_failed_fraction: Share of failed rows above which the run ends ``Failed``.
    """
    day = day or (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()
    credentials = RunwareCredentials.load(credentials_block) if backend == "runware" else None
    settings = (
        FluxEraseSettings.load(settings_block)
        if settings_block
        else FluxEraseSettings(include_cost=True)
    )
    summary = erase_manifest(
        f"{dataset}/manifests/{day}.parquet",
        f"{dataset}/erased/{day}",
        backend=backend,
        credentials=credentials,
        settings=settings,
        max_failed_fraction=max_failed_fraction,
    )
    assert isinstance(summary, EraseSummary)
    print(f"{day}: {summary.describe()}")
    return summary


def build_deployment(**parameters: Any) -> RunnerDeployment:
    """The nightly deployment: ``nightly_erase`` on a cron schedule, with default parameters."""
    deployment = nightly_erase.to_deployment(
        name="nightly-erase",
        schedule=NIGHTLY,
        parameters={**DEFAULT_PARAMETERS, **parameters},
        tags=["flux-erase", "nightly"],
        description="Erase the masked objects of yesterday's manifest.",
    )
    assert isinstance(deployment, RunnerDeployment)  # called from sync code: not a coroutine
    return deployment


if __name__ == "__main__":
    # Serve until stopped: the process polls for scheduled runs and executes them itself.
    nightly_erase.serve(
        name="nightly-erase",
        schedule=NIGHTLY,
        parameters=DEFAULT_PARAMETERS,
        tags=["flux-erase", "nightly"],
    )

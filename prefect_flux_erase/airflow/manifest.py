"""A manifest, the Airflow way: a plan task, one mapped task per shard, a finalize task.

The three operators call the core's front door (:mod:`prefect_flux_erase.run`) one step each, so
every rule (duplicate keys, the run key, skipping committed shards, the failure threshold) is
the one the Prefect flow and plain Python use:

- :class:`FluxErasePlanOperator` reads the manifest, skips the shards an earlier run with the
  same run key committed (the resume step) and returns the others as JSON shard descriptors.
  More shards than Airflow's ``[core] max_map_length`` is an error that names the setting and
  the ``shard_size`` that fits.
- :class:`FluxEraseShardOperator`, mapped over those descriptors with dynamic task mapping,
  runs one shard: submit, poll, upload, commit its part. A retry of a shard re-sends the same
  deterministic taskUUIDs: the API answers ``conflictTaskUUID`` for rows it already has, and
  they are collected, not billed again.
- :class:`FluxEraseFinalizeOperator` assembles ``results.parquet`` and ``report.html``, returns
  the summary, and declares the results as an Airflow ``Asset`` outlet so downstream DAGs can
  be scheduled on it; more failed rows than ``max_failed_fraction`` fail it (and the DAG run),
  as they fail the Prefect flow, after the results are written.

:func:`flux_erase_manifest` wires the three in a task group.

Example:
    ```python
    from prefect_flux_erase.airflow import flux_erase_manifest

    with DAG("clean_photos", schedule="@daily", start_date=datetime(2026, 1, 1)):
        flux_erase_manifest(manifest="s3://photos/manifest.parquet",
                            output="s3://photos/erased", backend="runware",
                            shard_size=100, max_failed_fraction=0.01, retries=1)
    ```
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

from airflow.sdk import Asset, BaseOperator, TaskGroup
from airflow.sdk.configuration import conf
from airflow.sdk.exceptions import AirflowFailException

from prefect_flux_erase.airflow.hooks import FluxEraseHook
from prefect_flux_erase.airflow.provider_info import DEFAULT_CONN_ID
from prefect_flux_erase.errors import FluxEraseError
from prefect_flux_erase.results.assemble import RESULTS_FILE
from prefect_flux_erase.run import (
    RunConfigError,
    RunSpec,
    TooManyFailedRows,
    arun_shard,
    build_job,
    check_threshold,
    default_options,
    describe_plan,
    finish_run,
    plan_run,
    shard_from_dict,
    shard_to_dict,
)
from prefect_flux_erase.runware.options import EraseOptions
from prefect_flux_erase.shards.job import DEFAULT_POLL_TIMEOUT

if TYPE_CHECKING:
    from airflow.sdk import Context

    from prefect_flux_erase.results.summary import EraseSummary

#: Failures kept in the finalize task's XCom (all of them are in results.parquet).
XCOM_FAILURES = 20


class TooManyShards(FluxEraseError, AirflowFailException):
    """The manifest plans into more shards than Airflow maps; the message says what to change.

    An ``AirflowFailException``: the plan task fails without retries (a retry cannot help).

    Codes: ``tooManyShards``.

    Example:
        >>> str(TooManyShards(5000, 1024, 100, 500_000)).split(";")[0]
        '500000 rows in shards of 100 make 5000 shards, more than max_map_length (1024)'
    """

    default_code = "tooManyShards"

    def __init__(self, shards: int, limit: int, shard_size: int, rows: int) -> None:
        fitting = max(shard_size + 1, math.ceil(rows / limit))
        super().__init__(
            f"{rows} rows in shards of {shard_size} make {shards} shards, more than "
            f"max_map_length ({limit}); Airflow maps at most [core] max_map_length task "
            f"instances: use shard_size={fitting} or more, or raise max_map_length "
            "(AIRFLOW__CORE__MAX_MAP_LENGTH)",
            shards=shards,
            limit=limit,
        )


class _ManifestRunOperator(BaseOperator):
    """The run's parameters, shared by the plan, shard and finalize operators (see
    :func:`flux_erase_manifest` for each argument)."""

    template_fields: Sequence[str] = ("manifest", "output_uri")

    def __init__(
        self,
        *,
        manifest: str,
        output: str,
        backend: Literal["local", "runware"] = "runware",
        flux_erase_conn_id: str = DEFAULT_CONN_ID,
        options: EraseOptions | Mapping[str, Any] | None = None,
        image_column: str = "image_uri",
        mask_column: str = "mask_uri",
        key_column: str | None = None,
        storage_options: Mapping[str, Any] | None = None,
        output_storage_options: Mapping[str, Any] | None = None,
        shard_size: int = 100,
        concurrency: int = 16,
        max_attempts: int = 3,
        poll_timeout: float = DEFAULT_POLL_TIMEOUT,
        max_failed_fraction: float = 0.0,
        pass_urls: bool = False,
        report: bool = True,
        local_engine: str = "local",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.manifest = manifest
        # Not ``self.output``: that is BaseOperator's XComArg of this task's return value.
        self.output_uri = output
        self.backend = backend
        self.flux_erase_conn_id = flux_erase_conn_id
        self.options = (
            options
            if isinstance(options, EraseOptions)
            else default_options()
            if options is None
            else EraseOptions.model_validate(dict(options))
        )
        self.image_column = image_column
        self.mask_column = mask_column
        self.key_column = key_column
        self.storage_options = dict(storage_options) if storage_options is not None else None
        self.output_storage_options = (
            dict(output_storage_options) if output_storage_options is not None else None
        )
        self.shard_size = shard_size
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self.poll_timeout = poll_timeout
        self.max_failed_fraction = max_failed_fraction
        self.pass_urls = pass_urls
        self.report = report
        self.local_engine = local_engine
        # Checked when the DAG is parsed, without the connection (no lookups at parse time):
        # the key is checked when a task runs.
        try:
            replace(self.run_spec(None), backend="local").check()
        except RunConfigError as exc:
            raise ValueError(f"{self.task_id}: {exc}") from None
        if backend not in ("local", "runware"):
            raise ValueError(
                f"{self.task_id}: backend must be 'local' or 'runware'; got {backend!r}"
            )

    def run_spec(self, runware: Any = None) -> RunSpec:
        """The core's description of this run (``runware``: the connection's settings).

        Example:
            ```python
            spec = self.run_spec(FluxEraseHook(conn_id).get_conn())
            ```
        """
        return RunSpec(
            manifest=self.manifest,
            output=self.output_uri,
            backend=self.backend,
            runware=runware,
            options=self.options,
            image_column=self.image_column,
            mask_column=self.mask_column,
            key_column=self.key_column,
            storage_options=self.storage_options,
            output_storage_options=self.output_storage_options,
            shard_size=self.shard_size,
            concurrency=self.concurrency,
            max_attempts=self.max_attempts,
            poll_timeout=self.poll_timeout,
            max_failed_fraction=self.max_failed_fraction,
            pass_urls=self.pass_urls,
            report=self.report,
            local_engine=self.local_engine,
        )

    def checked_spec(self) -> RunSpec:
        """The spec with the connection's settings (``runware`` backend), checked.

        Example:
            ```python
            spec = self.checked_spec()
            ```
        """
        runware = (
            FluxEraseHook(self.flux_erase_conn_id).get_conn() if self.backend == "runware" else None
        )
        try:
            return self.run_spec(runware).check()
        except RunConfigError as exc:
            raise AirflowFailException(f"[{exc.code}] {exc}") from None


class FluxErasePlanOperator(_ManifestRunOperator):
    """Plan the run; return the shards still to run, as JSON descriptors (the mapped input).

    Example:
        ```python
        plan = FluxErasePlanOperator(task_id="plan", manifest="s3://b/m.parquet",
                                     output="s3://b/out")
        shards = FluxEraseShardOperator.partial(task_id="shard", manifest=..., output=...)\\
            .expand(shard=plan.output)
        ```
    """

    ui_color = "#d9e8f7"

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """Plan, log what will run, refuse more shards than Airflow maps."""
        run = plan_run(self.checked_spec())
        describe_plan(run)  # the core's logger: Airflow puts it in the task log
        limit = conf.getint("core", "max_map_length")
        if len(run.plan.shards) > limit:
            raise TooManyShards(len(run.plan.shards), limit, run.spec.shard_size, run.plan.num_rows)
        return [shard_to_dict(shard) for shard in run.todo]


class FluxEraseShardOperator(_ManifestRunOperator):
    """Run one shard through the API (or the local engine) and commit its results part.

    Args:
        shard: A descriptor from :class:`FluxErasePlanOperator` (mapped with ``.expand``).

    Example:
        ```python
        FluxEraseShardOperator.partial(task_id="shard", manifest=m, output=o, retries=1)\\
            .expand(shard=plan.output)
        ```
    """

    ui_color = "#e8e4f7"

    def __init__(self, *, shard: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shard = shard

    def execute(self, context: Context) -> dict[str, Any]:
        """Submit, poll, upload and commit one shard; return its counts (a small XCom)."""
        job = build_job(self.checked_spec())
        shard = shard_from_dict(dict(self.shard))
        report = asyncio.run(arun_shard(job, shard))
        self.log.info(
            "shard %d: %d rows, %d succeeded, %d failed, %d resumed, cost %.4f",
            report.shard_index,
            report.rows,
            report.succeeded,
            report.failed,
            report.resumed,
            report.cost,
        )
        return {
            "shard": report.shard_index,
            "rows": report.rows,
            "succeeded": report.succeeded,
            "failed": report.failed,
            "resumed": report.resumed,
            "cost": round(report.cost, 6),
            "error_counts": dict(report.error_counts),
        }


class FluxEraseFinalizeOperator(_ManifestRunOperator):
    """Assemble ``results.parquet`` and the report; apply ``max_failed_fraction``.

    Its outlet (the results ``Asset``) gets an event with the counts, so a DAG scheduled on
    it runs after each finished run.

    Example:
        ```python
        FluxEraseFinalizeOperator(task_id="finalize", manifest=m, output=o,
                                  outlets=[Asset("s3://b/out/results.parquet")])
        ```
    """

    ui_color = "#d9f0e0"

    def execute(self, context: Context) -> dict[str, Any]:
        """Finish the run; fail (no retry) when too many rows failed, after writing results."""
        run = plan_run(self.checked_spec())
        started = getattr(context.get("dag_run"), "start_date", None)
        elapsed = time.time() - started.timestamp() if started is not None else 0.0
        summary = finish_run(run, elapsed_s=elapsed)
        self.log.info("%s", summary.describe())
        self._mark_outlets(context, summary)
        try:
            check_threshold(summary, run.spec.max_failed_fraction)
        except TooManyFailedRows as exc:
            raise AirflowFailException(f"[{exc.code}] {exc}") from None
        return _summary_xcom(summary)

    def _mark_outlets(self, context: Context, summary: EraseSummary) -> None:
        events = context.get("outlet_events")
        if events is None:
            return
        for outlet in self.outlets:
            if isinstance(outlet, Asset):
                events[outlet].extra = {
                    "rows": summary.rows,
                    "succeeded": summary.succeeded,
                    "failed": summary.failed,
                    "results_uri": summary.results_uri,
                    "run_key": summary.run_key,
                }


def _summary_xcom(summary: EraseSummary) -> dict[str, Any]:
    data = summary.as_dict()
    data["failures"] = list(data.get("failures", []))[:XCOM_FAILURES]
    return data


def results_asset(output: str) -> Asset:
    """The ``Asset`` of a run's ``results.parquet`` (a local path becomes a ``file://`` URI).

    Example:
        >>> results_asset("s3://photos/erased").uri
        's3://photos/erased/results.parquet'
    """
    root = output.rstrip("/")
    if "://" not in root:
        root = "file://" + os.path.abspath(root)
    return Asset(uri=f"{root}/{RESULTS_FILE}")


def flux_erase_manifest(
    *,
    manifest: str,
    output: str,
    backend: Literal["local", "runware"] = "runware",
    flux_erase_conn_id: str = DEFAULT_CONN_ID,
    options: EraseOptions | Mapping[str, Any] | None = None,
    image_column: str = "image_uri",
    mask_column: str = "mask_uri",
    key_column: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    output_storage_options: Mapping[str, Any] | None = None,
    shard_size: int = 100,
    concurrency: int = 16,
    max_attempts: int = 3,
    poll_timeout: float = DEFAULT_POLL_TIMEOUT,
    max_failed_fraction: float = 0.0,
    pass_urls: bool = False,
    report: bool = True,
    local_engine: str = "local",
    asset: Asset | None = None,
    group_id: str = "flux_erase",
    **task_kwargs: Any,
) -> TaskGroup:
    """Erase every row of a Parquet manifest: plan → mapped shards → finalize, in a task group.

    Call it inside a DAG. Shards already committed by an earlier run with the same arguments
    are skipped (0 requests); a failed shard fails the DAG run after its retries, and running
    the DAG again resumes it without billing any row twice.

    Args:
        manifest: URI of the Parquet manifest (templated; any fsspec backend).
        output: Root URI of ``images/``, ``_parts/``, ``results.parquet``, ``report.html``
            (templated; give ``asset`` when it is).
        backend: ``"runware"`` (the API through ``flux_erase_conn_id``) or ``"local"``.
        flux_erase_conn_id: The ``flux_erase`` connection (base URL and API key).
        options: FLUX Erase options (``EraseOptions`` or a dict of its fields).
        image_column, mask_column, key_column: The manifest's columns.
        storage_options: fsspec options for the manifest and the inputs.
        output_storage_options: fsspec options for ``output`` (default ``storage_options``).
        shard_size: Rows per shard, i.e. per mapped task instance.
        concurrency: Rows in flight at once inside one shard.
        max_attempts: TaskUUIDs a row may use after transient task failures on the server.
        poll_timeout: Seconds a submitted row may stay unfinished before ``pollTimeout``.
        max_failed_fraction: Largest failed/total share for the DAG run to succeed.
        pass_urls: Send public http(s) inputs as URLs instead of their bytes.
        report: Write ``report.html``.
        local_engine: Engine of the ``local`` backend.
        asset: The finalize task's outlet (default: the ``Asset`` of
            ``{output}/results.parquet``).
        group_id: The task group's id.
        **task_kwargs: Passed to all three operators (``retries``, ``retry_delay``, ``pool``…).

    Returns:
        The task group, for dependencies (``start >> flux_erase_manifest(...) >> notify``).

    Example:
        ```python
        with DAG("clean", schedule="@daily", start_date=datetime(2026, 1, 1), catchup=False):
            flux_erase_manifest(manifest="s3://b/m.parquet", output="s3://b/out", retries=1)
        ```
    """
    if asset is None:
        if "{{" in output:
            raise ValueError(
                "output is templated, so the results' Asset cannot be named when the DAG is "
                "parsed: pass asset=Asset('s3://.../results') to flux_erase_manifest"
            )
        asset = results_asset(output)
    common: dict[str, Any] = {
        "manifest": manifest,
        "output": output,
        "backend": backend,
        "flux_erase_conn_id": flux_erase_conn_id,
        "options": options,
        "image_column": image_column,
        "mask_column": mask_column,
        "key_column": key_column,
        "storage_options": storage_options,
        "output_storage_options": output_storage_options,
        "shard_size": shard_size,
        "concurrency": concurrency,
        "max_attempts": max_attempts,
        "poll_timeout": poll_timeout,
        "max_failed_fraction": max_failed_fraction,
        "pass_urls": pass_urls,
        "report": report,
        "local_engine": local_engine,
        **task_kwargs,
    }
    with TaskGroup(group_id=group_id) as group:
        plan = FluxErasePlanOperator(task_id="plan", **common)
        shards = FluxEraseShardOperator.partial(task_id="shard", **common).expand(shard=plan.output)
        # Runs when every shard committed, or when there was none left to run (all skipped).
        finalize = FluxEraseFinalizeOperator(
            task_id="finalize", outlets=[asset], trigger_rule="none_failed", **common
        )
        plan >> shards >> finalize
    return group

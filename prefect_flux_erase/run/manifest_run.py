"""The front door: run a whole manifest — plan, skip committed, run shards, assemble, report.

:func:`run_manifest` (and :func:`arun_manifest`) are the orchestrator-neutral way to erase a
manifest: plain Python, no Prefect or Airflow needed, with the guarantees of every face (every
row once in ``results.parquet``, deterministic task UUIDs, resume without double charges). The
Prefect flow :func:`~prefect_flux_erase.flows.erase_manifest` is :func:`execute_run` with
Prefect's executor and artifacts; the Airflow DAG calls the same steps one task at a time
(:func:`~prefect_flux_erase.run.plan.plan_run`, :func:`~prefect_flux_erase.run.executor.
arun_shard`, :func:`finish_run`, :func:`check_threshold`).

Example:
    ```python
    from prefect_flux_erase.run import run_manifest

    summary = run_manifest("manifest.parquet", "erased/", backend="local")
    print(summary.describe())
    ```
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from prefect_flux_erase.costs.budget import BUDGET_EXHAUSTED, BudgetExhausted
from prefect_flux_erase.errors import FluxEraseError
from prefect_flux_erase.results.assemble import (
    assemble_results,
    failed_in_parts,
    shadowed_columns,
)
from prefect_flux_erase.results.summary import EraseSummary
from prefect_flux_erase.run.executor import (
    AsyncioShardExecutor,
    ShardExecutor,
    ShardFailure,
    ShardRunResult,
)
from prefect_flux_erase.run.plan import RunPlan, plan_run
from prefect_flux_erase.run.progress import Progress, current_listener, report_progress
from prefect_flux_erase.run.spec import RunSpec
from prefect_flux_erase.runware.redaction import redact_url
from prefect_flux_erase.shards.api_backend import RunAborted
from prefect_flux_erase.shards.run_control import RunStopped as RunStopped
from prefect_flux_erase.shards.run_control import end_run, start_run
from prefect_flux_erase.shards.stages import ShardReport

_log = logging.getLogger("prefect_flux_erase.run")

Logger = logging.Logger | logging.LoggerAdapter[Any]


class TooManyFailedRows(FluxEraseError):
    """More rows failed than ``max_failed_fraction`` allows; ``summary`` has everything.

    The results, the report and every row's code are written before this is raised: catch it
    to read them.

    Example:
        ```python
        try:
            summary = run_manifest("m.parquet", "out", max_failed_fraction=0.01)
        except TooManyFailedRows as exc:
            summary = exc.summary
        print(summary.describe())
        ```
    """

    code: str
    summary: EraseSummary
    max_failed_fraction: float

    def __init__(self, summary: EraseSummary, max_failed_fraction: float) -> None:
        where = summary.results_uri + (f" and {summary.report_uri}" if summary.report_uri else "")
        super().__init__(
            f"{summary.failed} of {summary.rows} rows failed ({summary.failed_fraction:.1%} > "
            f"max_failed_fraction {max_failed_fraction:.1%}); see {where}",
            code="tooManyFailedRows",
            summary=summary,
            max_failed_fraction=max_failed_fraction,
        )


class ShardsFailed(FluxEraseError):
    """Some shards could not be processed (after their retries); the run can be resumed.

    Committed shards stay committed: running again with the same arguments skips them and
    charges no row twice.

    Example:
        >>> err = ShardsFailed([ShardFailure(3, "poll", "TransientError: 503")], shards=10,
        ...                    committed=9)
        >>> str(err).startswith("1 of 10 shards could not be processed")
        True
    """

    code: str
    failures: list[ShardFailure]
    shards: int
    committed: int

    def __init__(self, failures: list[ShardFailure], *, shards: int, committed: int) -> None:
        super().__init__(
            f"{len(failures)} of {shards} shards could not be processed (first: "
            f"{failures[0].describe()}). {committed} shards were committed; run again with the "
            "same arguments to resume: committed shards are skipped and no row is charged twice.",
            code="shardsFailed",
            failures=failures,
            shards=shards,
            committed=committed,
        )


def describe_plan(run: RunPlan, log: Logger = _log) -> None:
    """Log what the run is about to do, and the manifest's problems that do not stop it.

    Example:
        ```python
        describe_plan(plan_run(spec))
        ```
    """
    plan = run.plan
    log.info(
        "run %s on the %s backend: %d rows in %d shards, %d already committed; output %s",
        run.run_key,
        run.spec.backend,
        plan.num_rows,
        len(plan.shards),
        run.shards_skipped,
        redact_url(run.spec.output),
    )
    shadowed = shadowed_columns(plan)
    if shadowed:
        log.warning(
            "manifest column(s) %s share a name with the pipeline's result columns and are not "
            "carried to the results (the pipeline writes its own); rename them to keep them",
            ", ".join(shadowed),
        )
    if run.estimate is not None:
        log.info("cost estimate: %s", run.estimate.describe())
    if run.duplicate_rows:
        log.warning(
            "%d rows repeat an earlier row's key (%s); they fail with duplicateRowKey and only "
            "the first row with each key is erased",
            run.duplicate_rows,
            run.spec.key_column or "row_key",
        )


def finish_run(run: RunPlan, *, elapsed_s: float = 0.0) -> EraseSummary:
    """Assemble ``results.parquet`` from every shard's part, write the report, summarise.

    It does not judge the outcome: :func:`check_threshold` does.

    Raises:
        ResultsError: a shard has no committed part (``missingParts``: run again).

    Example:
        ```python
        summary = finish_run(run, elapsed_s=12.5)
        ```
    """
    spec = run.spec
    out_options = spec.out_storage_options
    results = assemble_results(spec.output, run.plan, out_options)
    summary = EraseSummary(
        rows=results.rows,
        succeeded=results.succeeded,
        failed=results.failed,
        resumed=results.resumed,
        results_uri=results.results_uri,
        total_cost=results.total_cost,
        p50_latency_s=results.p50_latency_s,
        p95_latency_s=results.p95_latency_s,
        elapsed_s=elapsed_s,
        run_key=run.run_key,
        backend=spec.backend,
        output=spec.output,
        shards=len(run.plan.shards),
        shards_skipped=run.shards_skipped,
        error_counts=dict(results.error_counts),
        failures=[dict(f) for f in results.failures],
        estimate=run.estimate.as_dict() if run.estimate is not None else None,
        max_cost_usd=spec.max_cost_usd,
        budget_exhausted=results.error_counts.get(BUDGET_EXHAUSTED, 0),
        cached=results.cached,
        shared=results.shared,
    )
    if spec.report:
        from prefect_flux_erase.results.report import current_report, write_report

        title = "FLUX Erase run"
        # Nothing ran: the report of the run that committed these shards still holds.
        report_uri = (
            None
            if run.todo
            else current_report(spec.output, out_options, title=title, summary=results)
        ) or write_report(
            spec.output, out_options, title=title, summary=results, estimate=summary.estimate
        )
        summary = replace(summary, report_uri=str(report_uri))
    return summary


def check_threshold(summary: EraseSummary, max_failed_fraction: float) -> EraseSummary:
    """Return ``summary`` when its failed share is within ``max_failed_fraction``; raise
    :class:`TooManyFailedRows` (which carries it) otherwise.

    Example:
        >>> s = EraseSummary(rows=4, succeeded=3, failed=1, results_uri="r.parquet")
        >>> check_threshold(s, 0.25).failed
        1
        >>> check_threshold(s, 0.0)
        Traceback (most recent call last):
        ...
        prefect_flux_erase.run.manifest_run.TooManyFailedRows: 1 of 4 rows failed (25.0% > max_failed_fraction 0.0%); see r.parquet
    """  # noqa: E501
    if summary.cap_reached:  # rows left by the cost cap: not failures, but not done either
        raise BudgetExhausted(summary)
    if not summary.ok(max_failed_fraction):
        raise TooManyFailedRows(summary, max_failed_fraction)
    return summary


class _Tally:
    """Rows finished so far, for the progress listener (and the Prefect progress artifact)."""

    def __init__(self, run: RunPlan, on_progress: Callable[[Progress], None] | None) -> None:
        self.run_key = run.run_key
        # The first report says what the run will cost (the CLI prints it before the bar).
        self.message = f"estimate: {run.estimate.describe()}" if run.estimate else ""
        self.total = run.plan.num_rows
        self.done = run.skipped_rows
        # Rows of skipped shards are done; those that failed there still count as failed.
        todo = {s.index for s in run.todo}
        skipped = [s.index for s in run.plan.shards if s.index not in todo]
        self.failed = failed_in_parts(run.spec.output, skipped, run.spec.out_storage_options)
        self.cost = 0.0
        self.listener = current_listener()
        self.on_progress = on_progress
        self.emit()

    def add(self, shard: ShardReport) -> None:
        # Rows a stopped run left unfinished are not done: a rerun runs them.
        self.done += shard.rows - shard.unfinished
        self.failed += shard.failed - shard.unfinished
        self.cost += shard.cost
        self.emit()

    def emit(self) -> None:
        progress = Progress(
            self.done, self.total, self.failed, self.cost, self.message, run_key=self.run_key
        )
        self.message = ""
        report_progress(progress, self.listener)
        if self.on_progress is not None:
            self.on_progress(progress)


def execute_run(
    spec: RunSpec,
    executor: ShardExecutor | None = None,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    on_summary: Callable[[EraseSummary], None] | None = None,
    log: Logger = _log,
) -> EraseSummary:
    """Run ``spec`` end to end with ``executor`` (default: the core's asyncio executor).

    Plan → skip committed shards → run the others → assemble ``results.parquet`` → report →
    summary → threshold. ``on_summary`` sees the summary before the threshold is applied (to
    publish it either way). ``on_progress`` is called with the rows finished so far (skipped
    shards included) after the plan and as each shard commits; a listener installed with
    :func:`~prefect_flux_erase.run.progress.listen` is told too.

    Raises:
        RunConfigError, ManifestError: before any row runs.
        RunStopped: a run-level fault (the API unreachable, the key rejected, no credits), an
            interruption or a cancellation stopped the run; what was done is committed, and
            running again resumes.
        ShardsFailed: some shards could not be processed (committed ones stay; rerun).
        BudgetExhausted: the cost cap left rows unsent (carries the summary; rerun with a
            higher ``max_cost_usd`` to continue).
        TooManyFailedRows: over ``max_failed_fraction`` (carries the summary).

    Example:
        ```python
        summary = execute_run(RunSpec("m.parquet", "out", backend="local"))
        ```
    """
    started = time.monotonic()
    run = plan_run(spec)
    # The run's stop switch, API health and request window in this process, fresh for it.
    control = start_run(run.run_key)
    try:
        describe_plan(run, log)
        tally = _Tally(run, on_progress)
        result: ShardRunResult = (executor or AsyncioShardExecutor()).run_shards(
            run.job,
            run.todo,
            max_in_flight=run.spec.max_shards_in_flight,
            on_report=tally.add,
        )
        reason = result.aborted or control.reason
    finally:
        end_run(run.run_key)
    if reason is not None:
        if not isinstance(reason, RunAborted):  # an executor's own exception: keep its text
            reason = RunAborted(
                f"interrupted: {type(reason).__name__}: {reason}", code="interrupted"
            )
        stopped = RunStopped(reason, done_rows=tally.done, total_rows=tally.total)
        log.error("%s", stopped.message)
        raise stopped
    if result.failures:
        for failure in result.failures[:10]:
            log.error("%s", failure.describe())
        raise ShardsFailed(result.failures, shards=len(run.todo), committed=len(result.reports))
    summary = finish_run(run, elapsed_s=time.monotonic() - started)
    log.info("%s", summary.describe())
    if on_summary is not None:
        on_summary(summary)
    return check_threshold(summary, run.spec.max_failed_fraction)


def run_manifest(
    manifest: str,
    output: str,
    *,
    executor: ShardExecutor | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    **options: Any,
) -> EraseSummary:
    """Erase the masked object of every row of a Parquet manifest, in plain Python.

    Every option of :class:`~prefect_flux_erase.run.spec.RunSpec` is a keyword
    (``backend``, ``runware``, ``options``, ``shard_size``, ``max_failed_fraction``…). The
    results are ``{output}/results.parquet`` (every row once, with its status and code),
    ``{output}/images/`` and ``{output}/report.html``. Running it again with the same
    arguments resumes: committed shards make no request, nothing is charged twice.

    Raises:
        RunConfigError, ManifestError: before any row runs.
        RunStopped: the run stopped early — ``code`` ``apiUnreachable``, ``invalidApiKey``,
            ``insufficientCredits``, ``interrupted`` or ``cancelled`` — with what to fix;
            run again to resume.
        ShardsFailed: some shards could not be processed (run again to resume).
        TooManyFailedRows: more rows failed than ``max_failed_fraction`` allows; its
            ``summary`` holds the counts and where the results are.

    Example:
        ```python
        from prefect_flux_erase.run import run_manifest, TooManyFailedRows

        try:
            summary = run_manifest("manifest.parquet", "erased/", backend="local")
        except TooManyFailedRows as exc:
            summary = exc.summary
        print(summary.describe())
        ```
    """
    spec = RunSpec(manifest=manifest, output=output, **options)
    return execute_run(spec, executor, on_progress=on_progress)


async def arun_manifest(
    manifest: str,
    output: str,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    **options: Any,
) -> EraseSummary:
    """:func:`run_manifest` for async code: the same run, awaited.

    The shards run on an event loop of their own in a worker thread, so the caller's loop
    stays responsive.

    Example:
        ```python
        summary = await arun_manifest("manifest.parquet", "erased/", backend="local")
        ```
    """
    return await asyncio.to_thread(
        run_manifest, manifest, output, on_progress=on_progress, **options
    )

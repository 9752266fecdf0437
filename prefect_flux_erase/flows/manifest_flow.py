"""`erase_manifest`: erase every row of a Parquet manifest, resumably, and report on it."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.client.schemas.objects import State
from prefect.states import Completed, Failed

from prefect_flux_erase.blocks.credentials import RunwareCredentials
from prefect_flux_erase.blocks.settings import FluxEraseSettings
from prefect_flux_erase.flows.progress import Progress, current_listener, report_progress
from prefect_flux_erase.flows.shard_driver import drive_shards, thread_runner_allows
from prefect_flux_erase.flows.summary import EraseSummary, ProgressArtifact, publish_summary
from prefect_flux_erase.flows.validation import (
    check_concurrency_limit,
    check_run_options,
    resolve_credentials,
)
from prefect_flux_erase.manifest.keys import mark_duplicate_keys
from prefect_flux_erase.manifest.plan import ManifestSpec, plan_manifest
from prefect_flux_erase.runware.polling import PollPolicy
from prefect_flux_erase.runware.redaction import redact_url
from prefect_flux_erase.runware.retry_policy import RetryPolicy
from prefect_flux_erase.shards.api_slots import forget as forget_slots
from prefect_flux_erase.shards.job import DEFAULT_POLL_TIMEOUT, ShardJob, compute_run_key
from prefect_flux_erase.shards.stages import ShardReport


def default_settings() -> FluxEraseSettings:
    """The pipeline's default options: the API's defaults, plus ``includeCost`` to report spend.

    Example:
        >>> default_settings().include_cost
        True
    """
    return FluxEraseSettings(include_cost=True)


@flow(name="erase_manifest", log_prints=False, validate_parameters=False)
def erase_manifest(
    manifest: str,
    output: str,
    *,
    backend: Literal["local", "runware"] = "local",
    credentials: RunwareCredentials | None = None,
    settings: FluxEraseSettings | None = None,
    image_column: str = "image_uri",
    mask_column: str = "mask_uri",
    key_column: str | None = None,
    storage_options: dict[str, Any] | None = None,
    output_storage_options: dict[str, Any] | None = None,
    shard_size: int = 100,
    concurrency: int = 16,
    max_shards_in_flight: int = 4,
    max_attempts: int = 3,
    poll_timeout: float = DEFAULT_POLL_TIMEOUT,
    max_failed_fraction: float = 0.0,
    pass_urls: bool = False,
    concurrency_limit: str | None = None,
    report: bool = True,
    poll_policy: PollPolicy | None = None,
    retry_policy: RetryPolicy | None = None,
    local_engine: str = "local",
) -> EraseSummary | State[Any]:
    """Erase the masked object of every row of a Parquet manifest.

    Plans the manifest into shards, skips shards already committed by an earlier run with the
    same run key (no API calls for them), runs the others through ``submit_erase`` →
    ``poll_erase`` → ``upload_erased`` on the flow's task runner, and writes
    ``{output}/results.parquet``: every manifest row once, with its pass-through columns and
    ``status``, ``output_uri``, ``cost``, ``error_code``, ``error_message``, ``attempts``,
    ``latency_s``…

    Args:
        manifest: URI of the Parquet manifest (file, directory or glob; any fsspec backend).
        output: Root URI for ``images/``, ``_parts/``, ``results.parquet`` and ``report.html``.
        backend: ``"local"`` (embedded engine, offline) or ``"runware"`` (the API, or the
            emulator through ``credentials.base_url``). Never chosen implicitly.
        credentials: API key and base URL; default ``RUNWARE_API_KEY``/``RUNWARE_BASE_URL``.
        settings: FLUX Erase options; default ``FluxEraseSettings(include_cost=True)``.
        image_column: Manifest column of image URIs.
        mask_column: Manifest column of mask URIs (white = erase).
        key_column: Column of unique row keys (names outputs and task UUIDs); default
            ``row_key`` when present, else a key derived from position and URIs.
        storage_options: fsspec options for the manifest and the input images.
        output_storage_options: fsspec options for ``output`` (default: ``storage_options``).
        shard_size: Rows per shard (per task run).
        concurrency: Rows in flight at once inside one shard.
        max_shards_in_flight: Shards at the API at once (submitted, not all answered); up to
            as many more may be downloading and committing their results meanwhile, and on a
            thread-pool runner one more reads and validates its rows ahead.
        max_attempts: Task UUIDs a row may use after transient task failures.
        poll_timeout: Seconds a submitted row may stay unfinished on the server before it
            fails with ``pollTimeout`` (a rerun collects it later without a second charge).
        max_failed_fraction: Largest failed/total share for the run to end ``Completed``.
        pass_urls: Send public http(s) inputs as URLs instead of inline bytes.
        concurrency_limit: Name of a Prefect global concurrency limit capping in-flight
            requests across shards and flow runs.
        report: Write ``report.html`` and link it as an artifact.
        poll_policy: ``getResponse`` cadence (the client's default when ``None``).
        retry_policy: Backoff of the client's per-request retries (its default when ``None``).
        local_engine: Engine of the ``local`` backend.

    Returns:
        An :class:`~prefect_flux_erase.flows.summary.EraseSummary` when the run is within
        ``max_failed_fraction``; otherwise the flow run ends ``Failed`` with the counts and the
        results location in its message.

    Example:
        ```python
        from prefect_flux_erase import erase_manifest

        summary = erase_manifest("s3://bucket/batch/manifest.parquet", "s3://bucket/erased",
                                 backend="runware", max_failed_fraction=0.01)
        print(summary.describe())
        ```
    """
    started = time.monotonic()
    logger = get_run_logger()
    listener = current_listener()
    settings = settings or default_settings()
    check_run_options(
        backend=backend,
        shard_size=shard_size,
        concurrency=concurrency,
        max_shards_in_flight=max_shards_in_flight,
        max_attempts=max_attempts,
        max_failed_fraction=max_failed_fraction,
        poll_timeout=poll_timeout,
    )
    credentials = resolve_credentials(backend, credentials)
    if backend == "runware":
        check_concurrency_limit(concurrency_limit, concurrency)
    output = output.rstrip("/") or output
    out_options = output_storage_options if output_storage_options is not None else storage_options
    spec = ManifestSpec(
        manifest,
        storage_options=dict(storage_options or {}),
        image_column=image_column,
        mask_column=mask_column,
        key_column=key_column,
    )
    # Rows sharing a key would share a task UUID and an output file: the first one runs.
    plan = mark_duplicate_keys(spec, plan_manifest(spec, shard_size=shard_size))
    run_key = compute_run_key(
        manifest=manifest,
        output=output,
        settings=settings,
        backend=backend,
        columns={"image": image_column, "mask": mask_column, "key": key_column},
    )
    job = ShardJob(
        manifest=spec,
        output=output,
        run_key=run_key,
        backend=backend,
        settings=settings,
        credentials=credentials,
        output_storage_options=out_options,
        input_storage_options=storage_options,
        concurrency=concurrency,
        max_attempts=max_attempts,
        poll_timeout=poll_timeout,
        pass_urls=pass_urls,
        concurrency_limit=concurrency_limit,
        poll_policy=poll_policy,
        retry_policy=retry_policy,
        local_engine=local_engine,
    )

    from prefect_flux_erase.results.assemble import assemble_results, committed_shards

    committed = set(committed_shards(output, run_key, out_options))
    todo = [s for s in plan.shards if s.index not in committed]
    skipped_rows = sum(s.num_rows for s in plan.shards if s.index in committed)
    logger.info(
        "run %s on the %s backend: %d rows in %d shards, %d already committed; output %s",
        run_key,
        backend,
        plan.num_rows,
        len(plan.shards),
        len(plan.shards) - len(todo),
        redact_url(output),
    )
    if plan.shadowed:
        logger.warning(
            "manifest column(s) %s share a name with the pipeline's result columns and are not "
            "carried to the results (the pipeline writes its own); rename them to keep them",
            ", ".join(plan.shadowed),
        )
    duplicates = sum(len(s.duplicates) for s in plan.shards)
    if duplicates:
        logger.warning(
            "%d rows repeat an earlier row's key (%s); they fail with duplicateRowKey and only "
            "the first row with each key is erased",
            duplicates,
            key_column or "row_key",
        )
    progress = ProgressArtifact(run_key, total_rows=plan.num_rows, done_rows=skipped_rows)
    tally = {"done": skipped_rows, "failed": 0, "cost": 0.0}
    report_progress(Progress(skipped_rows, plan.num_rows), listener)

    def on_report(shard: ShardReport) -> None:
        tally["done"] += shard.rows
        tally["failed"] += shard.failed
        tally["cost"] += shard.cost
        progress.update(done_rows=int(tally["done"]), failed_rows=int(tally["failed"]))
        report_progress(
            Progress(int(tally["done"]), plan.num_rows, int(tally["failed"]), tally["cost"]),
            listener,
        )

    # One shard more reads and validates its rows while the API window is full (API slots):
    # only on a thread pool with a thread for every shard kept going.
    threads = 2 * max_shards_in_flight + 1
    prefetch = 1 if backend == "runware" and thread_runner_allows(threads) else 0
    if prefetch:
        job = replace(job, api_slots=max_shards_in_flight, slots_key=uuid.uuid4().hex)
    try:
        driven = drive_shards(
            job,
            todo,
            max_in_flight=max_shards_in_flight,
            on_report=on_report,
            prefetch=prefetch,
        )
    finally:
        forget_slots(job.slots_key)
        progress.flush()
    if driven.failures:
        for failure in driven.failures[:10]:
            logger.error("%s", failure.describe())
        return Failed(
            message=(
                f"{len(driven.failures)} of {len(todo)} shards could not be processed (first: "
                f"{driven.failures[0].describe()}). {len(driven.reports)} shards were committed; "
                "run again with the same arguments to resume: committed shards are skipped and "
                "no row is charged twice."
            )
        )

    results = assemble_results(output, plan, out_options)
    summary = EraseSummary(
        rows=results.rows,
        succeeded=results.succeeded,
        failed=results.failed,
        resumed=results.resumed,
        results_uri=results.results_uri,
        total_cost=results.total_cost,
        p50_latency_s=results.p50_latency_s,
        p95_latency_s=results.p95_latency_s,
        elapsed_s=time.monotonic() - started,
        run_key=run_key,
        backend=backend,
        output=output,
        shards=len(plan.shards),
        shards_skipped=len(plan.shards) - len(todo),
        error_counts=dict(results.error_counts),
        failures=[dict(f) for f in results.failures],
    )
    if report:
        from prefect_flux_erase.results.report import current_report, write_report

        title = "FLUX Erase run"
        # Nothing ran: the report of the run that committed these shards still holds.
        report_uri = (
            None if todo else current_report(output, out_options, title=title, summary=results)
        ) or write_report(output, out_options, title=title, summary=results)
        summary = replace(summary, report_uri=str(report_uri))
    publish_summary(summary)
    logger.info("%s", summary.describe())
    if not summary.ok(max_failed_fraction):
        return Failed(
            message=(
                f"{summary.failed} of {summary.rows} rows failed "
                f"({summary.failed_fraction:.1%} > max_failed_fraction "
                f"{max_failed_fraction:.1%}); see {summary.results_uri}"
                + (f" and {summary.report_uri}" if summary.report_uri else "")
            ),
            data=summary,
        )
    return Completed(message=summary.describe(), data=summary)

"""`erase_manifest`: the Prefect flow over the core's front door.

A thin adapter: it turns the blocks into the core's plain models, runs
:func:`~prefect_flux_erase.run.manifest_run.execute_run` with
:class:`~prefect_flux_erase.flows.shard_driver.PrefectShardExecutor` (a Prefect task run per
shard stage), and shows the run as Prefect artifacts. Every rule of the run is the core's.
"""

from __future__ import annotations

from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.client.schemas.objects import State
from prefect.states import Cancelled, Completed, Failed

from prefect_flux_erase.blocks.credentials import API_KEY_ENV, RunwareCredentials
from prefect_flux_erase.blocks.settings import FluxEraseSettings
from prefect_flux_erase.flows.artifacts import ProgressArtifact, publish_summary
from prefect_flux_erase.flows.cancellation import CancellationWatch
from prefect_flux_erase.flows.concurrency_limit import check_concurrency_limit
from prefect_flux_erase.flows.shard_driver import PrefectShardExecutor
from prefect_flux_erase.results.summary import EraseSummary
from prefect_flux_erase.run.manifest_run import RunStopped, execute_run
from prefect_flux_erase.run.plan import build_job
from prefect_flux_erase.run.progress import Progress
from prefect_flux_erase.run.spec import RunConfigError, RunSpec, default_options
from prefect_flux_erase.runware.config import RunwareConfig
from prefect_flux_erase.runware.polling import PollPolicy
from prefect_flux_erase.runware.retry_policy import RetryPolicy
from prefect_flux_erase.shards.job import DEFAULT_POLL_TIMEOUT


def default_settings() -> FluxEraseSettings:
    """The pipeline's default options as a block (the core's
    :func:`~prefect_flux_erase.run.spec.default_options`): the API's defaults, plus
    ``includeCost`` to report spend.

    Example:
        >>> default_settings().include_cost
        True
    """
    return FluxEraseSettings(**default_options().model_dump())


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
    pass_urls: bool | list[str] = False,
    concurrency_limit: str | None = None,
    report: bool = True,
    poll_policy: PollPolicy | None = None,
    retry_policy: RetryPolicy | None = None,
    local_engine: str = "local",
    max_cost_usd: float | None = None,
    cache: str | None = None,
    cache_storage_options: dict[str, Any] | None = None,
    dedupe: bool = True,
    upload_inputs: bool = False,
    verify_estimate: bool = False,
    allow_private_hosts: list[str] | None = None,
    retry_failed: bool | list[str] = False,
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
        pass_urls: Send public http(s) inputs as URLs for the API to fetch, never downloaded
            by the pipeline: ``True`` for both input columns, or a list of column names.
        concurrency_limit: Name of a Prefect global concurrency limit capping in-flight
            requests across shards and flow runs.
        report: Write ``report.html`` and link it as an artifact.
        poll_policy: ``getResponse`` cadence (the client's default when ``None``).
        retry_policy: Backoff of the client's per-request retries (its default when ``None``).
        local_engine: Engine of the ``local`` backend.
        max_cost_usd: Most this run may spend (USD); rows that could take it over are not
            sent and end ``budgetExhausted`` (the flow run fails; rerun with a higher cap).
        cache: URI of a cross-run result cache: contents erased before are copied from it
            instead of paid for again. ``None`` (default): no cache.
        cache_storage_options: fsspec options of ``cache`` (default: the output's).
        dedupe: Erase rows of identical image, mask and settings once (default ``True``).
        upload_inputs: Upload each input once with ``imageUpload`` and send its UUID.
        verify_estimate: Check the estimate with the API's dry run (one request per size).
        allow_private_hosts: Hosts whose URLs ``pass_urls`` may pass although they look
            private (loopback, private networks); none by default.
        retry_failed: Run failed rows again although their code is final: ``True`` for
            every failed row, or a list of codes (``["uploadFailed"]``). Rows that failed with
            a retryable code are run again anyway, and so are final ones whose inputs changed
            (see Resume and idempotency in the docs).

    Returns:
        An :class:`~prefect_flux_erase.results.summary.EraseSummary` when the run is within
        ``max_failed_fraction``.

    Raises:
        BudgetExhausted: the cost cap left rows unsent (the flow run ends ``Failed``); its
            ``summary`` says how many; everything else is written.
        TooManyFailedRows: more rows failed than ``max_failed_fraction`` allows (the flow run
            ends ``Failed``); its ``summary`` holds the counts and where the results and the
            report are, all written before it is raised.
        ShardsFailed: some shards could not be processed after their retries; committed ones
            stay committed, so running again resumes.
        RunStopped: a run-level fault (``apiUnreachable``, ``invalidApiKey``,
            ``insufficientCredits``: the flow run ends ``Failed``) or an interruption (it ends
            ``Cancelled``) stopped the run; what was done is committed and running again
            resumes. A flow run cancelled through Prefect's API stops the same way.
        RunConfigError, ManifestError: an invalid option or manifest, before any row runs.

    Example:
        ```python
        from prefect_flux_erase import TooManyFailedRows, erase_manifest

        try:
            summary = erase_manifest("s3://bucket/batch/manifest.parquet", "s3://bucket/erased",
                                     backend="runware", max_failed_fraction=0.01)
        except TooManyFailedRows as exc:
            summary = exc.summary
        print(summary.describe())
        ```
    """
    logger = get_run_logger()
    options = (settings or default_settings()).to_options()
    spec = RunSpec(
        manifest,
        output,
        backend=backend,
        runware=_runware_config(backend, credentials),
        options=options,
        image_column=image_column,
        mask_column=mask_column,
        key_column=key_column,
        storage_options=storage_options,
        output_storage_options=output_storage_options,
        shard_size=shard_size,
        concurrency=concurrency,
        max_shards_in_flight=max_shards_in_flight,
        max_attempts=max_attempts,
        poll_timeout=poll_timeout,
        max_failed_fraction=max_failed_fraction,
        pass_urls=pass_urls if isinstance(pass_urls, bool) else tuple(pass_urls),
        report=report,
        local_engine=local_engine,
        poll_policy=poll_policy,
        retry_policy=retry_policy,
        max_cost_usd=max_cost_usd,
        cache=cache,
        cache_storage_options=cache_storage_options,
        dedupe=dedupe,
        upload_inputs=upload_inputs,
        verify_estimate=verify_estimate,
        allow_private_hosts=tuple(allow_private_hosts or ()),
        retry_failed=retry_failed,
    ).check()
    if backend == "runware":
        check_concurrency_limit(concurrency_limit, concurrency)
    progress = _ProgressArtifactFeed()
    try:
        with CancellationWatch(build_job(spec).run_key):
            summary = execute_run(
                spec,
                PrefectShardExecutor(
                    concurrency_limit=concurrency_limit if backend == "runware" else None
                ),
                on_progress=progress.update,
                on_summary=publish_summary,
                log=logger,
            )
    except RunStopped as stopped:
        # A state, not a raise: the message says what to fix, and a traceback would bury it.
        # Calling the flow still raises the RunStopped (it is the state's data).
        if stopped.is_fault:
            return Failed(message=stopped.message, data=stopped)
        return Cancelled(message=stopped.message, data=stopped)
    finally:
        progress.flush()
    # The flow run's state message says what happened, in the UI's run list too.
    return Completed(message=summary.describe(), data=summary)


class _ProgressArtifactFeed:
    """Feeds the run's progress to a Prefect progress artifact, created on the first report."""

    def __init__(self) -> None:
        self.artifact: ProgressArtifact | None = None

    def update(self, progress: Progress) -> None:
        if self.artifact is None:
            self.artifact = ProgressArtifact(
                progress.run_key, total_rows=progress.total_rows, done_rows=progress.done_rows
            )
            return
        self.artifact.update(done_rows=progress.done_rows, failed_rows=progress.failed_rows)

    def flush(self) -> None:
        if self.artifact is not None:
            self.artifact.flush()


def _runware_config(backend: str, credentials: RunwareCredentials | None) -> RunwareConfig | None:
    """The plain API settings of the block given, or of the environment, for ``runware``.

    Raises:
        RunConfigError: ``runware`` without an API key anywhere (worded for this flow's
            parameters).
    """
    if backend != "runware":
        return None
    config = (credentials or RunwareCredentials()).to_config()
    if not config.has_key:
        raise RunConfigError(
            "the runware backend needs an API key: pass credentials=RunwareCredentials(...), "
            f"load a saved block, or set {API_KEY_ENV} (use backend='local' to run offline)",
            parameter="credentials",
        )
    return config

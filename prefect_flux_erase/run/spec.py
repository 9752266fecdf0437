"""`RunSpec`: every option of a manifest run, checked once, before anything is read or sent.

The front door (:func:`~prefect_flux_erase.run.manifest_run.run_manifest`), the Prefect flow,
the CLI and the Airflow operators all describe a run with one `RunSpec`; :meth:`RunSpec.check`
is the only place the run's options are validated, so every interface rejects the same values
with the same message. The message names the Python parameter; each error carries it as
``parameter`` so a face can name its own spelling instead (a CLI flag, an operator argument).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from prefect_flux_erase.engine import ENGINE_NAMES

# The error is the core's coded one (code ``invalidRunOption``); re-exported here with the spec.
from prefect_flux_erase.errors import RunConfigError as RunConfigError
from prefect_flux_erase.runware.config import API_KEY_ENV, RunwareConfig
from prefect_flux_erase.runware.options import EraseOptions
from prefect_flux_erase.shards.job import BACKENDS, DEFAULT_POLL_TIMEOUT

if TYPE_CHECKING:
    from prefect_flux_erase.runware.polling import PollPolicy
    from prefect_flux_erase.runware.retry_policy import RetryPolicy


def default_options() -> EraseOptions:
    """The pipeline's default options: the API's defaults, plus ``includeCost`` to report spend.

    Example:
        >>> default_options().include_cost
        True
    """
    return EraseOptions(include_cost=True)


def pipeline_options(options: EraseOptions) -> EraseOptions:
    """The options the rows of a manifest run are sent with: ``options``, results inline.

    A manifest run writes every result under ``{output}/images`` whatever ``outputType`` says,
    so ``URL`` — the API's default, and the options' — is read as "the pipeline's choice",
    which is ``base64Data``: each result arrives inside the reply that reports it done, so a
    row costs no download request and no connection to the output host. Measured against URL
    output with the same settings (``benchmarks/throughput.py``, 256x256, 64 in flight): ~0.6
    ms less client CPU per row and ~0.07 instead of ~1.07 API requests per row. The result URL
    is then not recorded (``source_url`` is empty).

    Results stay URLs when ``ttl`` is set (a lifetime of result URLs: that asks for URLs) or
    ``uploadEndpoint`` is (the API PUTs the bytes there; carrying them in the reply too would
    only double the traffic). ``dataURI`` stays as it is (inline too). The run key is computed
    from the options as given, so this never changes which run a manifest belongs to.

    Example:
        >>> pipeline_options(EraseOptions()).output_type
        'base64Data'
        >>> pipeline_options(EraseOptions(ttl=3600)).output_type
        'URL'
    """
    if options.output_type != "URL" or options.ttl is not None or options.upload_endpoint:
        return options
    return options.model_copy(update={"output_type": "base64Data"})


@dataclass(frozen=True)
class RunSpec:
    """One manifest run: where the rows are, where results go, how to run them.

    Attributes:
        manifest: URI of the Parquet manifest (file, directory or glob; any fsspec backend).
        output: Root URI for ``images/``, ``_parts/``, ``results.parquet`` and ``report.html``.
        backend: ``"local"`` (embedded engine, offline) or ``"runware"`` (the API, or the
            emulator at ``runware.base_url``). Never chosen implicitly.
        runware: API key, base URL and timeouts (default: ``RUNWARE_API_KEY`` /
            ``RUNWARE_BASE_URL``); used by the ``runware`` backend only.
        options: FLUX Erase options (default :func:`default_options`).
        image_column: Manifest column of image URIs.
        mask_column: Manifest column of mask URIs (white = erase).
        key_column: Column of unique row keys (default ``row_key`` when present, else derived).
        storage_options: fsspec options for the manifest and the input images.
        output_storage_options: fsspec options for ``output`` (default: ``storage_options``).
        shard_size: Rows per shard (the unit of work, commit and resume).
        concurrency: Rows in flight at once inside one shard.
        max_shards_in_flight: Shards at the API at once.
        max_attempts: Task UUIDs a row may use after transient task failures.
        poll_timeout: Seconds a submitted row may stay unfinished before ``pollTimeout``.
        max_failed_fraction: Largest failed/total share for the run to succeed.
        pass_urls: Send public http(s) inputs as URLs for the API to fetch, without the
            pipeline downloading them: ``True`` for both input columns, or the names of the
            columns that pass them (e.g. ``("image_uri",)``).
        allow_private_hosts: Hosts (``host`` or ``host:port``) whose URLs ``pass_urls`` may
            pass although they look private (loopback, private networks); none by default.
        max_cost_usd: Most this run may spend, in USD; rows that would take it over are not
            sent and end ``budgetExhausted`` (a rerun with a higher cap continues them).
        cache: URI of a cross-run result cache (any fsspec backend): contents erased before
            with the same settings are copied from it, not paid for again. ``None``: off.
        cache_storage_options: fsspec options of ``cache`` (default: the output's).
        dedupe: Erase rows of identical image, mask and settings once (``runware``).
        upload_inputs: Upload each input once with ``imageUpload`` and send its UUID
            (``runware``): retries and shared masks do not resend the bytes.
        verify_estimate: Also ask the API's dry run for the price of each image size when
            estimating (``runware``; one request per distinct size).
        report: Write ``report.html``.
        local_engine: Engine of the ``local`` backend.
        poll_policy: ``getResponse`` cadence (the client's default when ``None``).
        retry_policy: Backoff of the client's per-request retries (its default when ``None``).
        retry_failed: Rows that failed with a *final* code (see
            :mod:`~prefect_flux_erase.results.outcome_codes`) that this run tries again:
            ``True`` for every failed row, or the codes to retry (``["uploadFailed"]``).
            Retryable rows are tried again anyway, and final rows whose inputs changed too.

    Example:
        >>> spec = RunSpec("m.parquet", "out/", shard_size=50).check()
        >>> spec.output, spec.options.include_cost, spec.runware is None
        ('out', True, True)
    """

    manifest: str
    output: str
    backend: Literal["local", "runware"] = "local"
    runware: RunwareConfig | None = None
    options: EraseOptions = field(default_factory=default_options)
    image_column: str = "image_uri"
    mask_column: str = "mask_uri"
    key_column: str | None = None
    storage_options: Mapping[str, Any] | None = None
    output_storage_options: Mapping[str, Any] | None = None
    shard_size: int = 100
    concurrency: int = 16
    max_shards_in_flight: int = 4
    max_attempts: int = 3
    poll_timeout: float = DEFAULT_POLL_TIMEOUT
    max_failed_fraction: float = 0.0
    pass_urls: bool | tuple[str, ...] = False
    report: bool = True
    local_engine: str = "local"
    poll_policy: PollPolicy | None = None
    retry_policy: RetryPolicy | None = None
    allow_private_hosts: tuple[str, ...] = ()
    max_cost_usd: float | None = None
    cache: str | None = None
    cache_storage_options: Mapping[str, Any] | None = None
    dedupe: bool = True
    upload_inputs: bool = False
    verify_estimate: bool = False
    retry_failed: bool | Iterable[str] = False

    def __repr__(self) -> str:
        # Short and secret-free (the config's key is a SecretStr anyway).
        return (
            f"RunSpec(manifest={self.manifest!r}, output={self.output!r}, "
            f"backend={self.backend!r}, shard_size={self.shard_size})"
        )

    @property
    def out_storage_options(self) -> Mapping[str, Any] | None:
        """The fsspec options of the output (``output_storage_options`` or the inputs')."""
        if self.output_storage_options is not None:
            return self.output_storage_options
        return self.storage_options

    def check(self, *, require_key: bool = True) -> RunSpec:
        """Validate every option; return the spec normalised (output without a trailing ``/``,
        the ``runware`` config resolved from the environment for the ``runware`` backend;
        ``require_key=False`` accepts it without an API key, for an estimate).

        Raises:
            RunConfigError: the first invalid option, with what to use instead.

        Example:
            >>> RunSpec("m.parquet", "out", shard_size=0).check()  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            prefect_flux_erase.errors.RunConfigError: shard_size must be an integer >= 1; got 0
        """
        for name in ("manifest", "output"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise RunConfigError(f"{name} must be a URI or path; got {value!r}", parameter=name)
        if self.backend not in BACKENDS:
            raise RunConfigError(
                f"backend must be 'local' or 'runware'; got {self.backend!r}", parameter="backend"
            )
        for name in ("shard_size", "concurrency", "max_shards_in_flight", "max_attempts"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise RunConfigError(
                    f"{name} must be an integer >= 1; got {value!r}", parameter=name
                )
        fraction = self.max_failed_fraction
        if not isinstance(fraction, int | float) or not 0.0 <= fraction <= 1.0:
            raise RunConfigError(
                f"max_failed_fraction must be between 0 and 1; got {fraction!r}",
                parameter="max_failed_fraction",
            )
        timeout = self.poll_timeout
        if not isinstance(timeout, int | float) or not (timeout > 0 and math.isfinite(timeout)):
            raise RunConfigError(
                f"poll_timeout must be > 0 seconds; got {timeout!r}", parameter="poll_timeout"
            )
        if not isinstance(self.options, EraseOptions):
            raise RunConfigError(
                f"options must be EraseOptions; got {type(self.options).__name__}",
                parameter="options",
            )
        for name in ("image_column", "mask_column"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise RunConfigError(f"{name} must be a column name", parameter=name)
        if self.local_engine not in ENGINE_NAMES:
            known = ", ".join(repr(n) for n in ENGINE_NAMES)
            raise RunConfigError(
                f"local_engine must be one of {known}; got {self.local_engine!r}",
                parameter="local_engine",
            )
        money = self._check_money()
        retry = self.retry_failed
        if not isinstance(retry, bool):
            codes = [retry] if isinstance(retry, str) else list(retry)
            if not all(isinstance(c, str) and c.strip() for c in codes):
                raise RunConfigError(
                    "retry_failed must be True, False or a list of error codes (e.g. "
                    f"['uploadFailed']); got {retry!r}",
                    parameter="retry_failed",
                )
            retry = tuple(c.strip() for c in codes)
        output = self.output.rstrip("/") or self.output
        runware = self.resolved_runware(require_key=require_key)
        return replace(self, output=output, runware=runware, retry_failed=retry, **money)

    def _check_money(self) -> dict[str, Any]:
        """Check the cost options (cap, cache, remote inputs); return them normalised."""
        cap = self.max_cost_usd
        if cap is not None and (
            isinstance(cap, bool)
            or not isinstance(cap, int | float)
            or not (cap > 0 and math.isfinite(cap))
        ):
            raise RunConfigError(
                f"max_cost_usd must be a positive amount in USD, or None for no cap; got {cap!r}",
                parameter="max_cost_usd",
            )
        cache = self.cache
        if cache is not None and (not isinstance(cache, str) or not cache.strip()):
            raise RunConfigError(
                f"cache must be a URI (e.g. 's3://bucket/flux-erase-cache') or None; got {cache!r}",
                parameter="cache",
            )
        pass_urls = self.pass_urls
        if not isinstance(pass_urls, bool):
            if isinstance(pass_urls, str) or not all(isinstance(c, str) for c in pass_urls):
                raise RunConfigError(
                    f"pass_urls must be True, False or a list of column names; got {pass_urls!r}",
                    parameter="pass_urls",
                )
            pass_urls = tuple(pass_urls)
            unknown = [c for c in pass_urls if c not in (self.image_column, self.mask_column)]
            if unknown:
                raise RunConfigError(
                    f"pass_urls names {unknown}, which are not input columns; use "
                    f"{self.image_column!r} and/or {self.mask_column!r}",
                    parameter="pass_urls",
                )
        hosts = self.allow_private_hosts
        if isinstance(hosts, str) or not all(isinstance(h, str) and h.strip() for h in hosts):
            raise RunConfigError(
                f"allow_private_hosts must be a list of host names (or host:port); got {hosts!r}",
                parameter="allow_private_hosts",
            )
        if self.backend != "runware":
            for name in ("max_cost_usd", "upload_inputs", "verify_estimate"):
                if getattr(self, name) not in (None, False):
                    raise RunConfigError(
                        f"{name} applies to the runware backend only (the local engine is "
                        "free); drop it or use backend='runware'",
                        parameter=name,
                    )
        return {
            "pass_urls": pass_urls,
            "allow_private_hosts": tuple(h.strip() for h in hosts),
            "cache": cache.rstrip("/") if cache else None,
            "max_cost_usd": float(cap) if cap is not None else None,
        }

    def resolved_runware(self, *, require_key: bool = True) -> RunwareConfig | None:
        """The API settings the run uses: given, or from the environment; ``None`` for local.

        Raises:
            RunConfigError: ``runware`` without an API key anywhere.

        Example:
            >>> RunSpec("m", "o", backend="local").resolved_runware() is None
            True
        """
        if self.backend != "runware":
            return None
        config = self.runware or RunwareConfig()
        if not config.has_key and not require_key:
            return config.plain()  # an estimate: reads no key, sends nothing
        if not config.has_key:
            raise RunConfigError(
                "the runware backend needs an API key: give the run one (runware=RunwareConfig("
                f"api_key=...), or a credentials block / connection) or set {API_KEY_ENV} "
                "(use backend='local' to run offline)",
                parameter="runware",
            )
        return config.plain()

"""`ShardJob`: everything a shard stage needs to know, small enough to travel to any worker.

One `ShardJob` is built per run by the front door (:mod:`prefect_flux_erase.run`) and handed,
with a `Shard`, to each stage. It is a frozen dataclass of plain values and two plain pydantic
models (no orchestrator objects), so it pickles to Dask or Ray workers and Airflow task
instances; it holds no open clients, no image bytes and no manifest rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from prefect_flux_erase.runware.ids import run_key as derive_run_key

if TYPE_CHECKING:
    from prefect_flux_erase.manifest.plan import ManifestSpec
    from prefect_flux_erase.runware.config import RunwareConfig
    from prefect_flux_erase.runware.options import EraseOptions
    from prefect_flux_erase.runware.polling import PollPolicy
    from prefect_flux_erase.runware.retry_policy import RetryPolicy

Backend = Literal["local", "runware"]
BACKENDS: tuple[str, ...] = ("local", "runware")

#: Default seconds a row may stay unfinished on the server before it fails with ``pollTimeout``.
DEFAULT_POLL_TIMEOUT = 900.0


@dataclass(frozen=True)
class ShardJob:
    """The run-wide parameters of shard processing (one per flow run, shared by all shards).

    Attributes:
        manifest: Where the rows come from (URI, columns, storage options).
        output: Root URI of the run's outputs (``images/``, ``_parts/``, ``results.parquet``).
        run_key: Names the run; with a row key and an attempt it derives the row's taskUUID.
        backend: ``"runware"`` (the API, or the emulator at another base URL) or ``"local"``.
        options: The FLUX Erase options every row is sent with.
        runware: API key, base URL and timeouts for the ``runware`` backend (default: from
            ``RUNWARE_API_KEY`` / ``RUNWARE_BASE_URL``).
        output_storage_options: fsspec options for ``output`` (the manifest's are in ``manifest``).
        input_storage_options: fsspec options for the image and mask URIs of the rows.
        concurrency: Rows in flight at once inside one shard (HTTP requests, engine calls).
        max_attempts: Task UUIDs a row may use: a transient task failure starts a new attempt.
        pass_urls: Send public http(s) inputs as URLs for the API to fetch, unread:
            ``True`` for every input column, or the names of the columns that pass them.
        allow_private_hosts: Hosts (``host`` or ``host:port``) whose URLs may be passed
            although they look private; none by default.
        dedupe: Give rows with equal content (image bytes, mask bytes, settings) one task, so
            that they are erased and billed once (``runware`` backend).
        cache: URI of the cross-run result cache (any fsspec backend), or ``None`` for none.
        cache_storage_options: fsspec options of ``cache`` (default: the output's).
        upload_inputs: Upload read inputs once with ``imageUpload`` and send their UUIDs.
        poll_timeout: Seconds a submitted row may stay unfinished before it fails.
        concurrency_limit: Name of a Prefect global concurrency limit capping in-flight requests.
        upload_url_column: Manifest column holding a presigned URL per row (``uploadEndpoint``).
        local_engine: Engine name for the ``local`` backend (``get_engine(name)``).
        local_executor: Where the local engine runs: a ``"thread"`` or ``"process"`` pool.
        poll_policy: Cadence of ``getResponse`` polling (the client's default when ``None``).
        retry_policy: Backoff of the client's per-request retries (its default when ``None``).
        api_slots: Shards of this run allowed at the API at once in this process, so that
            one more can read and validate its rows ahead
            (:mod:`~prefect_flux_erase.shards.api_slots`); ``None`` (the default) for no
            gate. The flow sets it.
        slots_key: Names the run's slots (one flow run, one key).
        retry_failed: Codes of failed rows that a rerun tries again although they are final
            (``{"*"}``: every failed row; see
            :mod:`~prefect_flux_erase.results.outcome_codes`). Retryable rows are always
            tried again.
        max_shards_in_flight: Shards of the run at the API at once: the run's shared
            in-flight window is sized for them.

    Example:
        >>> from prefect_flux_erase.runware.options import EraseOptions
        >>> job = ShardJob(manifest=None, output="memory://out", run_key="k",  # type: ignore
        ...                backend="local", options=EraseOptions())
        >>> job.images_root
        'memory://out/images'
    """

    manifest: ManifestSpec
    output: str
    run_key: str
    backend: Backend
    options: EraseOptions
    runware: RunwareConfig | None = None
    output_storage_options: Mapping[str, Any] | None = None
    input_storage_options: Mapping[str, Any] | None = None
    concurrency: int = 16
    max_attempts: int = 3
    pass_urls: bool | tuple[str, ...] = False
    poll_timeout: float = DEFAULT_POLL_TIMEOUT
    concurrency_limit: str | None = None
    upload_url_column: str | None = "upload_url"
    local_engine: str = "local"
    local_executor: Literal["thread", "process"] = "thread"
    poll_policy: PollPolicy | None = None
    retry_policy: RetryPolicy | None = None
    api_slots: int | None = None
    slots_key: str = ""
    allow_private_hosts: tuple[str, ...] = ()
    dedupe: bool = True
    cache: str | None = None
    cache_storage_options: Mapping[str, Any] | None = None
    upload_inputs: bool = False
    retry_failed: frozenset[str] = frozenset()
    max_shards_in_flight: int = 4

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {self.backend!r}")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1; got {self.concurrency}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1; got {self.max_attempts}")
        if self.poll_timeout <= 0:
            raise ValueError(f"poll_timeout must be > 0 seconds; got {self.poll_timeout}")

    @property
    def content_keyed(self) -> bool:
        """Whether rows get content keys: for dedupe at the API, or for the result cache."""
        return self.cache is not None or (self.dedupe and self.backend == "runware")

    @property
    def cache_options(self) -> Mapping[str, Any] | None:
        """The fsspec options of the cache (its own, or the output's)."""
        if self.cache_storage_options is not None:
            return self.cache_storage_options
        return self.output_storage_options

    @property
    def images_root(self) -> str:
        """Where erased images are written: ``{output}/images``."""
        from prefect_flux_erase.storage.files import join

        return join(self.output, "images")

    def __repr__(self) -> str:
        # The dataclass repr would include every field; keep it short and secret-free.
        return (
            f"ShardJob(output={self.output!r}, run_key={self.run_key!r}, "
            f"backend={self.backend!r}, concurrency={self.concurrency})"
        )


def compute_run_key(
    *,
    manifest: str,
    output: str,
    options: EraseOptions,
    backend: str,
    columns: Mapping[str, Any] | None = None,
) -> str:
    """The run key of a manifest run: same manifest, output, options and backend, same key.

    The settings part is the wire options the rows are sent with, so changing any option (or
    the backend, or which columns are read) starts a fresh run instead of resuming an old one.

    Example:
        >>> from prefect_flux_erase.runware.options import EraseOptions
        >>> a = compute_run_key(manifest="m.parquet", output="out", backend="local",
        ...                     options=EraseOptions())
        >>> b = compute_run_key(manifest="m.parquet", output="out", backend="local",
        ...                     options=EraseOptions(dilate_pixels=20))
        >>> a != b, len(a)
        (True, 32)
    """
    parts: dict[str, Any] = {
        "wire": options.wire_options(),
        "backend": backend,
        "columns": dict(columns or {}),
    }
    return derive_run_key(manifest=manifest, output=output, settings=parts)

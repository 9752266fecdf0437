"""Build `ShardJob`s and shards for stage tests, and run `erase_manifest` for flow tests, against
the emulator or the local engine, with the same fast test policies."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prefect_flux_erase.blocks import FluxEraseSettings, RunwareCredentials
from prefect_flux_erase.flows import erase_manifest
from prefect_flux_erase.manifest import ManifestSpec, Shard, plan_manifest
from prefect_flux_erase.pipeline.config import ShardJob
from prefect_flux_erase.runware.polling import PollPolicy
from prefect_flux_erase.runware.retry import RetryPolicy
from tests.tasks.builders import write_inputs, write_manifest

#: Poll at once and often: the emulator answers without latency in tests.
FAST_POLL = PollPolicy(initial_delay=0.0, interval=0.01, max_interval=0.05, timeout=60.0)
#: Retry fast: tests prove the retries happen, not how long they wait.
FAST_RETRY = RetryPolicy(base=0.001, cap=0.01, max_retries=8, jitter=0.0, max_retry_after=0.01)
#: A key the emulator accepts; never a real one.
TEST_KEY = "rk-test-canary-0123456789"


def credentials_for(url: str) -> RunwareCredentials:
    """Credentials pointing at an emulator."""
    return RunwareCredentials(api_key=TEST_KEY, base_url=url)


def make_job(
    manifest: str,
    output: str,
    *,
    backend: str = "runware",
    url: str | None = None,
    settings: FluxEraseSettings | None = None,
    so: Mapping[str, Any] | None = None,
    **options: Any,
) -> ShardJob:
    """A job over ``manifest`` (keys from its ``row_key`` column)."""
    spec = ManifestSpec(manifest, storage_options=dict(so or {}), key_column="row_key")
    return ShardJob(
        manifest=spec,
        output=output,
        run_key=f"test-{output}",
        backend=backend,  # type: ignore[arg-type]
        settings=settings or FluxEraseSettings(include_cost=True),
        credentials=credentials_for(url) if url else None,
        output_storage_options=so,
        input_storage_options=so,
        poll_policy=FAST_POLL,
        retry_policy=FAST_RETRY,
        local_engine=options.pop("local_engine", "echo"),
        **options,
    )


def job_over(root: str | Path, rows: int | list[dict[str, Any]], **options: Any) -> ShardJob:
    """``make_job`` from a manifest written at ``root/m.parquet`` to the output ``root/out``;
    ``rows`` are the manifest's rows, or how many good inputs to write under ``root`` for it."""
    root = str(root)
    if isinstance(rows, int):
        rows = write_inputs(root, rows)
    return make_job(write_manifest(f"{root}/m.parquet", rows), f"{root}/out", **options)


def run_flow(manifest: str, output: str, *, url: str | None = None, **options: Any) -> Any:
    """``erase_manifest(..., return_state=True)`` with the tests' defaults: no report, keys from
    ``row_key``, the ``echo`` local engine and the fast policies (each overridable, ``None``
    for the flow's own). With ``url``, the ``runware`` backend and credentials for that emulator.
    """
    if url is not None:
        options.setdefault("backend", "runware")
        options.setdefault("credentials", credentials_for(url))
    options.setdefault("report", False)
    options.setdefault("key_column", "row_key")
    options.setdefault("local_engine", "echo")
    options.setdefault("poll_policy", FAST_POLL)
    options.setdefault("retry_policy", FAST_RETRY)
    return erase_manifest(manifest, output, return_state=True, **options)


def shards_of(job: ShardJob, shard_size: int = 100) -> list[Shard]:
    """The job's manifest cut into shards."""
    return plan_manifest(job.manifest, shard_size=shard_size).shards

"""A global concurrency limit caps the run's requests; the API key never leaves the client."""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

from prefect_flux_erase.emulator import EmulatorServer
from tests.fixtures.builders import write_bad_inputs, write_inputs, write_manifest
from tests.fixtures.jobs import TEST_KEY, run_flow

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_global_concurrency_limit_is_taken_and_given_back(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    manifest = write_manifest(f"{tmp_path}/m.parquet", write_inputs(str(tmp_path), 4))
    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(
            GlobalConcurrencyLimitCreate(name="flux-erase-test-api", limit=8)
        )

    summary = run_flow(
        manifest,
        f"{tmp_path}/out",
        url=emu.url,
        shard_size=2,
        concurrency=4,
        concurrency_limit="flux-erase-test-api",
    ).result()

    assert summary.succeeded == 4
    with get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name("flux-erase-test-api")
    assert limit.active_slots == 0  # every stage released what it occupied

    too_small = run_flow(
        manifest,
        f"{tmp_path}/out2",
        url=emu.url,
        concurrency=16,
        concurrency_limit="flux-erase-test-api",
    )
    assert too_small.is_failed()
    assert "above the global concurrency limit 'flux-erase-test-api' (8 slots)" in str(
        too_small.result(raise_on_failure=False)
    )


def test_a_run_waits_while_another_holds_the_global_limit_and_sends_nothing(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    """The limit caps API requests across flow runs: with every slot held elsewhere (another
    run), a run sends no request until the slots come back, then completes."""
    import threading
    import time

    from prefect.concurrency.sync import concurrency

    manifest = write_manifest(f"{tmp_path}/m.parquet", write_inputs(str(tmp_path), 2))
    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(
            GlobalConcurrencyLimitCreate(name="flux-erase-test-held", limit=4)
        )
    outcome: list[object] = []

    def run() -> None:
        outcome.append(
            run_flow(
                manifest,
                f"{tmp_path}/out",
                url=emu.url,
                concurrency=4,
                concurrency_limit="flux-erase-test-held",
            )
        )

    with concurrency("flux-erase-test-held", occupy=4, strict=True):
        other = threading.Thread(target=run)
        other.start()
        time.sleep(4.0)
        assert other.is_alive()
        assert emu.stats()["requests_total"] == 0  # waiting for the slots, not sending
    other.join(timeout=120)

    assert not other.is_alive()
    (state,) = outcome
    assert state.is_completed(), state.message  # type: ignore[attr-defined]
    assert emu.stats()["results_billed"] == 2


def test_api_key_is_not_in_logs_results_or_artifacts(
    tmp_path: Path, emu: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    rows = write_inputs(str(tmp_path), 2) + write_bad_inputs(str(tmp_path))[:2]
    manifest = write_manifest(f"{tmp_path}/m.parquet", rows)
    caplog.set_level(logging.DEBUG)

    summary = run_flow(
        manifest, f"{tmp_path}/out", url=emu.url, max_failed_fraction=1.0, report=True
    ).result()

    assert summary.failed == 2
    assert TEST_KEY not in caplog.text
    assert TEST_KEY not in repr(summary)
    assert TEST_KEY not in str(pq.read_table(f"{tmp_path}/out/results.parquet").to_pylist())
    assert TEST_KEY not in (tmp_path / "out" / "report.html").read_text()
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts()
    mine = {a.key: a for a in artifacts if a.key and a.key.endswith(summary.run_key[:12])}
    prefix = "flux-erase-{}-" + summary.run_key[:12]
    assert {prefix.format(k) for k in ("progress", "summary", "failures", "report")} <= set(mine)
    failures = mine[prefix.format("failures")]
    assert "inputNotFound" in str(failures.data)
    assert mine[prefix.format("report")].data.endswith("/out/report.html)")
    assert all(TEST_KEY not in f"{a.data} {a.description}" for a in artifacts)

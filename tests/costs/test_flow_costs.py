"""The Prefect face of the money options: the flow passes them through, and its summary
artifact, state and report show the estimate next to the cost, and the cap reached."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from prefect_flux_erase.emulator import EmulatorServer
from tests.costs.common import manifest_of, write_rows
from tests.fixtures.jobs import run_flow

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _summary_artifact(run_key: str) -> dict[str, str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    key = f"flux-erase-summary-{run_key[:12].lower()}"
    with get_client(sync_client=True) as client:
        (found,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )
    data: Any = json.loads(found.data) if isinstance(found.data, str) else found.data
    return {row["metric"]: row["value"] for row in data}


def test_the_flow_records_the_estimate_next_to_the_cost_in_artifacts_and_report(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    manifest = manifest_of(tmp_path, write_rows(tmp_path, [0, 1, 0]))

    state = run_flow(manifest, f"{tmp_path}/out", url=emu.url, report=True)

    assert state.is_completed(), state.message
    summary = state.result()
    assert summary.estimate["low_usd"] == summary.total_cost == 0.06
    table = _summary_artifact(summary.run_key)
    assert table["estimated cost (USD)"] == "0.0600 - 0.0680"
    assert table["total cost (USD)"] == "0.0600"
    assert table["rows sharing an identical row's erase"] == "1"
    report = (tmp_path / "out" / "report.html").read_text()
    assert "Estimated cost" in report
    assert "$0.0600 - 0.0680" in report


def test_the_flow_fails_at_the_cap_with_the_summary_attached(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    manifest = manifest_of(tmp_path, write_rows(tmp_path, [0, 1, 2]))

    state = run_flow(manifest, f"{tmp_path}/out", url=emu.url, max_cost_usd=0.05)

    assert state.is_failed()
    assert "cost cap of $0.0500 was reached: 2 of 3 rows were not sent" in state.message
    assert emu.stats()["total_usd"] <= 0.05
    table = _summary_artifact(_run_key(tmp_path))
    assert table["rows left by the cap (budgetExhausted)"] == "2"
    assert table["cost cap (USD)"] == "0.0500"


def _run_key(root: Path) -> str:
    import pyarrow.parquet as pq

    metadata = pq.read_metadata(f"{root}/out/results.parquet").metadata
    return str(metadata[b"prefect_flux_erase.run_key"].decode())

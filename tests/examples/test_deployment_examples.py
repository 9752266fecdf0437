"""The nightly deployment: its schedule as built by `to_deployment`, `prefect.yaml`, one run."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from prefect.flows import load_flow_from_entrypoint

from prefect_flux_erase import RunwareCredentials
from prefect_flux_erase.emulator import EmulatorServer
from tests.fixtures.examples import EXAMPLES, load_example

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _schedule(deployment: Any) -> Any:
    (schedule,) = deployment.schedules
    return schedule.schedule


def test_the_deployment_runs_nightly_at_two_with_its_parameters() -> None:
    nightly = load_example("nightly_deployment")

    deployment = nightly.build_deployment(dataset="s3://bucket/photos")

    assert deployment.name == "nightly-erase"
    assert deployment.flow_name == "nightly-erase"
    schedule = _schedule(deployment)
    assert (schedule.cron, schedule.timezone) == ("0 2 * * *", "UTC")
    assert deployment.parameters == {
        "dataset": "s3://bucket/photos",
        "backend": "runware",
        "credentials_block": "runware",
        "max_failed_fraction": 0.01,
    }
    # Every parameter the deployment passes is one the flow accepts.
    nightly.nightly_erase.validate_parameters(deployment.parameters)


def test_prefect_yaml_entrypoints_resolve_and_match_the_served_deployment() -> None:
    config = yaml.safe_load((EXAMPLES / "prefect.yaml").read_text())
    nightly = load_example("nightly_deployment")
    served = nightly.build_deployment()

    assert [d["name"] for d in config["deployments"]] == ["nightly-erase"]
    for spec in config["deployments"]:
        file, _, function = spec["entrypoint"].partition(":")
        flow = load_flow_from_entrypoint(f"{EXAMPLES / file}:{function}")
        assert flow.name == served.flow_name
        flow.validate_parameters(spec["parameters"])
        assert spec["parameters"] == served.parameters
        (schedule,) = spec["schedules"]
        assert (schedule["cron"], schedule["timezone"]) == (
            _schedule(served).cron,
            _schedule(served).timezone,
        )
        assert spec["work_pool"]["name"] == "image-cleaning"
        assert spec["concurrency_limit"] == 1


def test_one_nightly_run_erases_that_days_manifest_with_a_saved_block(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    nightly = load_example("nightly_deployment")
    dataset = tmp_path / "dataset"
    (dataset / "manifests").mkdir(parents=True)
    samples = load_example("quickstart_offline").write_sample_manifest(tmp_path / "samples")
    pq.write_table(pq.read_table(samples), dataset / "manifests" / "2024-06-01.parquet")
    block = f"runware-{uuid.uuid4().hex[:8]}"
    RunwareCredentials(api_key="nightly-key", base_url=emu.url).save(block)

    summary = nightly.nightly_erase(
        dataset=str(dataset), day="2024-06-01", backend="runware", credentials_block=block
    )

    assert (summary.rows, summary.succeeded) == (4, 4)
    assert summary.results_uri == str(dataset / "erased" / "2024-06-01" / "results.parquet")
    assert emu.stats()["results_billed"] == 4
    costs = pq.read_table(summary.results_uri, columns=["cost"]).column("cost")
    assert pa.compute.sum(costs).as_py() == pytest.approx(summary.total_cost)
    assert summary.total_cost > 0

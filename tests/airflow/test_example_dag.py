"""examples/airflow_nightly.py runs as written: a day's manifest on S3 (moto), the connection
pointing at the emulator, one ``dag.test()`` for that day."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime
from typing import Any

import pyarrow.parquet as pq
import pytest

from prefect_flux_erase import storage
from tests.airflow.conftest import task_states
from tests.fixtures.builders import make_bucket, write_bad_inputs, write_inputs, write_manifest


def test_the_nightly_example_erases_a_days_manifest_on_s3(
    emu: Any, flux_conn: str, s3_options: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = make_bucket(s3_options, "nightly")
    # The example passes no storage options: S3 is reached the usual way, from AWS_* variables.
    monkeypatch.setenv("FLUX_ERASE_BUCKET", bucket)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_options["key"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_options["secret"])
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_options["client_kwargs"]["endpoint_url"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    root = f"s3://{bucket}/photos"
    rows = write_inputs(root, 4, s3_options) + write_bad_inputs(root, s3_options)[:1]
    write_manifest(f"s3://{bucket}/manifests/2026-03-04.parquet", rows, s3_options)

    example = importlib.reload(importlib.import_module("airflow_nightly"))
    run = example.dag.test(logical_date=datetime(2026, 3, 4, tzinfo=UTC))

    # 1 bad row of 5 is over the example's max_failed_fraction (1 %): the run fails, after
    # writing every row's result.
    assert str(run.state) == "failed"
    states = task_states(run)
    assert states[("flux_erase.finalize", -1)] == "failed"
    fs, path = storage.resolve(f"s3://{bucket}/erased/2026-03-04/results.parquet", s3_options)
    fs.invalidate_cache()
    with fs.open(path, "rb") as f:
        results = {r["row_key"]: r for r in pq.read_table(f).to_pylist()}
    assert {k: r["status"] for k, r in results.items()} == {
        "img000": "succeeded",
        "img001": "succeeded",
        "img002": "succeeded",
        "img003": "succeeded",
        "inputNotFound": "failed",
    }
    assert all(r["output_uri"][0].endswith(".png") for k, r in results.items() if k[:3] == "img")
    assert emu.stats()["results_billed"] == 4
    assert fs.exists(f"{bucket}/erased/2026-03-04/report.html")

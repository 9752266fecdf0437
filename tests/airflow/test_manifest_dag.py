"""The manifest DAG (plan → mapped shards → finalize) in real DAG runs against the emulator
over HTTP and moto S3: the Prefect flow's results and outcome, resume, retries, limits."""

from __future__ import annotations

import json
from typing import Any

import pyarrow.parquet as pq
import pytest

from prefect_flux_erase import storage
from tests.airflow.conftest import CANARY_KEY, run_dag, task_states, xcom
from tests.fixtures.builders import (
    BAD_INPUT_CODES,
    make_bucket,
    write_bad_inputs,
    write_inputs,
    write_manifest,
)
from tests.fixtures.jobs import run_flow

#: Every fault the emulator injects that a client or a retry must get through.
TRANSIENT_FAULTS = (
    "http_429",
    "http_500",
    "http_502",
    "http_503",
    "http_504",
    "reset_before",
    "reset_after",
    "malformed_json",
    "timeout_provider",
)


def _results(output: str, so: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    fs, path = storage.resolve(storage.join(output, "results.parquet"), so)
    fs.invalidate_cache()
    with fs.open(path, "rb") as f:
        rows = pq.read_table(f).to_pylist()
    by_key = {r["row_key"]: r for r in rows}
    assert len(by_key) == len(rows)  # every row once
    return by_key


def _inference_requests(emu: Any) -> int:
    return int(emu.stats()["requests_by_task_type"].get("imageInference", 0))


@pytest.mark.usefixtures("prefect_harness")
def test_good_and_bad_rows_give_the_prefect_flows_statuses_codes_and_outcome(
    emu: Any, flux_conn: str, s3_options: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = f"s3://{make_bucket(s3_options, 'airflow')}"
    rows = write_inputs(root, 3, s3_options) + write_bad_inputs(root, s3_options)
    manifest = write_manifest(f"{root}/manifest.parquet", rows, s3_options)
    config = {
        "manifest": manifest,
        "output": f"{root}/airflow",
        "storage_options": s3_options,
        "max_failed_fraction": 0.5,  # 6 of 9 rows are bad: over it, for both
    }

    run = run_dag("flux_erase_test_dags", "flux_erase_manifest", config, monkeypatch)
    billed_by_airflow = emu.stats()["results_billed"]
    state = run_flow(
        manifest,
        f"{root}/prefect",
        url=emu.url,
        storage_options=s3_options,
        max_failed_fraction=0.5,
    )

    airflow_rows = _results(f"{root}/airflow", s3_options)
    prefect_rows = _results(f"{root}/prefect", s3_options)
    assert len(airflow_rows) == len(rows) == 9
    outcome = {k: (r["status"], r["error_code"]) for k, r in airflow_rows.items()}
    assert outcome == {k: (r["status"], r["error_code"]) for k, r in prefect_rows.items()}
    assert {outcome[f"img{i:03d}"] for i in range(3)} == {("succeeded", None)}
    for code in BAD_INPUT_CODES:
        assert outcome[code] == ("failed", code)
    assert outcome["../../escape"] == ("failed", "unsafeRowKey")
    # The threshold decides both runs the same way, after the results are written.
    assert state.is_failed()
    assert str(run.state) == "failed"
    states = task_states(run)
    assert states[("flux_erase.plan", -1)] == "success"
    assert {s for (t, _), s in states.items() if t == "flux_erase.shard"} == {"success"}
    assert states[("flux_erase.finalize", -1)] == "failed"
    assert billed_by_airflow == 3
    assert all(r["output_uri"] for k, r in airflow_rows.items() if k.startswith("img"))


def test_a_rerun_sends_no_inference_request_and_finalize_emits_the_asset(
    tmp_path: Any, emu: Any, flux_conn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = str(tmp_path)
    manifest = write_manifest(f"{root}/m.parquet", write_inputs(root, 7))
    config = {"manifest": manifest, "output": f"{root}/out", "report": True}

    first = run_dag("flux_erase_test_dags", "flux_erase_manifest", config, monkeypatch)
    sent = _inference_requests(emu)
    second = run_dag("flux_erase_test_dags", "flux_erase_manifest", config, monkeypatch)

    assert (str(first.state), str(second.state)) == ("success", "success")
    assert len(xcom(first, "flux_erase.plan")) == 3  # 7 rows in shards of 3
    assert xcom(second, "flux_erase.plan") == []  # every shard committed: nothing to map
    assert _inference_requests(emu) == sent  # the rerun made no inference request
    assert emu.stats()["results_billed"] == 7
    summary = xcom(second, "flux_erase.finalize")
    assert (summary["rows"], summary["succeeded"], summary["shards_skipped"]) == (7, 7, 3)
    assert summary["report_uri"] == f"{root}/out/report.html"
    assert {r["status"] for r in _results(f"{root}/out").values()} == {"succeeded"}
    assert CANARY_KEY not in str(summary)
    events = _asset_events(f"file://{root}/out/results.parquet")
    assert len(events) == 2
    assert events[-1]["rows"] == 7


def _asset_events(uri: str) -> list[dict[str, Any]]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        extras = session.scalars(
            select(AssetEvent.extra)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.uri == uri)
            .order_by(AssetEvent.id)
        ).all()
    return [dict(e) for e in extras]


def test_transient_faults_and_one_retry_every_good_row_succeeds_billed_once(
    tmp_path: Any, emu: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    connection = {"conn_type": "flux_erase", "host": emu.url, "password": CANARY_KEY}
    connection["extra"] = {"max_retries": 8, "timeout": 10}  # type: ignore[assignment]
    monkeypatch.setenv("AIRFLOW_CONN_FLUX_ERASE_DEFAULT", json.dumps(connection))
    root = str(tmp_path)
    manifest = write_manifest(f"{root}/m.parquet", write_inputs(root, 12))
    emu.configure(faults=dict.fromkeys(TRANSIENT_FAULTS, 0.03), retry_after=0.01, seed=7)
    # The kinds that test idempotency fire for sure: processed-then-reset, an unreadable answer,
    # a task the provider fails; each faulted request gets through on its next try (a request
    # meeting every fault in a row would only test the backoff's patience).
    emu.script_faults(
        ["reset_after", "none", "malformed_json", "none", "timeout_provider", "none", "http_503"]
    )
    config = {
        "manifest": manifest,
        "output": f"{root}/out",
        "retries": 1,
        "shard_size": 4,
        "max_attempts": 10,  # a timeoutProvider moves a row to its next taskUUID
    }

    run = run_dag("flux_erase_test_dags", "flux_erase_manifest", config, monkeypatch)

    assert str(run.state) == "success"
    rows = _results(f"{root}/out")
    assert {r["status"] for r in rows.values()} == {"succeeded"}
    emu.wait_idle()
    stats = emu.stats()
    assert {"reset_after", "malformed_json", "timeout_provider"} <= set(stats["faults"])
    assert max(r["attempts"] for r in rows.values()) == 2  # timeoutProvider: a new taskUUID
    assert {e["count"] for e in stats["billed"].values()} == {1}  # each result once
    assert sorted(stats["billed"]) == sorted(r["task_uuid"] for r in rows.values())


def test_a_shard_try_killed_after_submitting_is_collected_by_the_retry_billed_once(
    tmp_path: Any, emu: Any, flux_conn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = str(tmp_path)
    manifest = write_manifest(f"{root}/m.parquet", write_inputs(root, 3))
    # The first try is stopped by its execution_timeout while the rows are still being made
    # (as a dead worker or a stale executor event would stop it); the retry sends the same
    # taskUUIDs, the API answers conflictTaskUUID and the results are collected.
    emu.configure(latency=2.0)
    config = {
        "manifest": manifest,
        "output": f"{root}/out",
        "retries": 1,
        "execution_timeout": 1.5,
    }

    run = run_dag("flux_erase_test_dags", "flux_erase_manifest", config, monkeypatch)

    assert str(run.state) == "success"
    (shard,) = [ti for ti in run.get_task_instances() if ti.task_id == "flux_erase.shard"]
    assert shard.try_number == 2
    assert {r["status"] for r in _results(f"{root}/out").values()} == {"succeeded"}
    stats = emu.stats()
    assert (stats["tasks_accepted"], stats["conflicts"], stats["results_billed"]) == (3, 3, 3)


def test_more_shards_than_max_map_length_fail_the_plan_naming_the_setting(
    tmp_path: Any,
    emu: Any,
    flux_conn: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", "2")
    root = str(tmp_path)
    manifest = write_manifest(f"{root}/m.parquet", write_inputs(root, 7))
    config = {"manifest": manifest, "output": f"{root}/out", "shard_size": 2, "retries": 1}

    run = run_dag("flux_erase_test_dags", "flux_erase_manifest", config, monkeypatch)

    assert str(run.state) == "failed"
    assert task_states(run)[("flux_erase.plan", -1)] == "failed"
    out, err = capfd.readouterr()
    logs = out + err + caplog.text
    assert (
        "7 rows in shards of 2 make 4 shards, more than max_map_length (2); Airflow maps at "
        "most [core] max_map_length task instances: use shard_size=4 or more"
    ) in logs
    assert emu.stats()["requests_total"] == 0

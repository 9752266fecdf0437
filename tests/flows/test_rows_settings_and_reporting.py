"""`erase_manifest`: per-row settings, several results per row, what a run reports and logs, and
the explicit backend choice, on the Prefect test harness with the emulator over HTTP."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prefect_flux_erase.blocks import FluxEraseSettings
from prefect_flux_erase.emulator import EmulatorServer
from prefect_flux_erase.manifest.plan import ManifestError
from prefect_flux_erase.run.spec import RunConfigError
from tests.fixtures.builders import write_inputs, write_manifest
from tests.fixtures.emulator import record_dilation
from tests.fixtures.jobs import run_flow

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _results(output: str) -> list[dict[str, Any]]:
    return pq.read_table(f"{output}/results.parquet").to_pylist()


def test_a_rows_own_dilate_pixels_wins_over_the_runs_setting_at_the_api(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    root = str(tmp_path)
    rows = write_inputs(root, 3)
    rows[1]["dilate_pixels"] = 5
    rows[2]["dilate_pixels"] = 0
    manifest = write_manifest(f"{root}/m.parquet", rows)
    seen = record_dilation(emu)

    state = run_flow(
        manifest,
        f"{root}/out",
        url=emu.url,
        settings=FluxEraseSettings(dilate_pixels=20, include_cost=True),
    )

    assert state.is_completed(), state.message
    assert sorted(seen) == [0, 5, 20]  # rows 1 and 2 their own; row 0 (null) the run's
    assert [r["dilate_pixels"] for r in _results(f"{root}/out")] == [None, 5, 0]


def test_several_results_per_row_are_listed_and_written_with_numbered_names(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    root = str(tmp_path)
    manifest = write_manifest(f"{root}/m.parquet", write_inputs(root, 2))
    emu.configure(emit_seed=True)  # and NSFWContent, which comes with checkContent

    state = run_flow(
        manifest,
        f"{root}/out",
        url=emu.url,
        settings=FluxEraseSettings(
            number_results=2, output_format="PNG", include_cost=True, check_content=True
        ),
    )

    assert state.is_completed(), state.message
    schema = pq.read_schema(f"{root}/out/results.parquet")
    assert schema.names == [
        *("image_uri", "mask_uri", "dilate_pixels", "note"),  # the manifest's, then the results'
        *("row_key", "row_index", "status", "output_uri", "image_uuid", "source_url", "cost"),
        *("error_code", "error_message", "attempts", "latency_s", "task_uuid", "resumed"),
        *("shared_with", "cached"),
        *("seed", "nsfw_content"),
    ]
    assert pa.types.is_list(schema.field("output_uri").type)
    rows = _results(f"{root}/out")
    for r in rows:
        assert r["output_uri"] == [f"{root}/out/images/{r['row_key']}_{k}.png" for k in (0, 1)]
        assert len(set(r["image_uuid"])) == 2
        # URL output (the API's default) comes inline in a manifest run: nothing downloaded.
        assert r["source_url"] == []
        assert len(r["seed"]) == 2  # one per result, each its own
        assert all(isinstance(seed, int) for seed in r["seed"])
        assert r["nsfw_content"] == [False, False]
        for uri in r["output_uri"]:
            assert Path(uri).read_bytes()[:4] == b"\x89PNG"
    billed = emu.stats()["billed"]
    assert {uuid: e["count"] for uuid, e in billed.items()} == {r["task_uuid"]: 2 for r in rows}
    for r in rows:
        assert r["cost"] == pytest.approx(billed[r["task_uuid"]]["usd"])


def _artifact(key: str) -> Any:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        (found,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )
    return found


def _table(data: Any) -> list[dict[str, Any]]:
    return json.loads(data) if isinstance(data, str) else list(data)


def test_summary_table_has_every_metric_and_failures_table_lists_the_first_50(
    tmp_path: Path,
) -> None:
    root = str(tmp_path)
    good = write_inputs(root, 2)
    missing = [
        {
            "row_key": f"gone{i:03d}",
            "image_uri": f"{root}/in/gone{i:03d}.png",
            "mask_uri": good[0]["mask_uri"],
        }
        for i in range(53)
    ]
    manifest = write_manifest(f"{root}/m.parquet", good + missing)

    state = run_flow(manifest, f"{root}/out", shard_size=20, max_failed_fraction=1.0)

    assert state.is_completed(), state.message
    assert "2 of 55 rows succeeded, 53 failed" in state.message
    assert f"{root}/out/results.parquet" in state.message
    run_key = state.result().run_key[:12]
    summary = {
        row["metric"]: row["value"]
        for row in _table(_artifact(f"flux-erase-summary-{run_key}").data)
    }
    assert (summary["rows"], summary["succeeded"], summary["failed"], summary["resumed"]) == (
        "55",
        "2",
        "53",
        "0",
    )
    for metric in ("total cost (USD)", "p50 latency (s)", "p95 latency (s)", "rows/s"):
        assert summary[metric] not in ("", None), metric
    assert float(summary["rows/s"]) > 0
    failures = _table(_artifact(f"flux-erase-failures-{run_key}").data)
    assert len(failures) == 50
    assert [f["row_key"] for f in failures] == [f"gone{i:03d}" for i in range(50)]
    assert {f["error_code"] for f in failures} == {"inputNotFound"}
    assert all(f["error_message"] for f in failures)


def test_task_runs_log_one_line_per_shard_not_one_per_image(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = str(tmp_path)
    manifest = write_manifest(f"{root}/m.parquet", write_inputs(root, 12))
    caplog.set_level(logging.INFO)

    state = run_flow(manifest, f"{root}/out", shard_size=4)

    assert state.is_completed(), state.message
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.name == "prefect.task_runs" and r.levelno >= logging.INFO
    ]
    shard_lines = [m for m in lines if m.startswith("shard ")]
    assert sorted(shard_lines) == sorted(
        f"shard {i} committed: 4 rows, 4 succeeded, 0 failed" for i in range(3)
    )
    assert not [m for m in lines if "img0" in m]  # no line about one image


def test_the_runware_backend_without_a_key_fails_and_never_falls_back_to_local(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RUNWARE_API_KEY", raising=False)
    root = str(tmp_path)
    manifest = write_manifest(f"{root}/m.parquet", write_inputs(root, 1))

    state = run_flow(manifest, f"{root}/out", backend="runware")

    assert state.is_failed()
    with pytest.raises(RunConfigError, match="RUNWARE_API_KEY"):
        state.result()
    assert not (tmp_path / "out").exists()  # nothing was erased some other way


def test_a_missing_column_fails_before_any_api_request_and_names_it(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    root = str(tmp_path)
    manifest = write_manifest(f"{root}/m.parquet", write_inputs(root, 2))

    state = run_flow(manifest, f"{root}/out", url=emu.url, image_column="photo")

    assert state.is_failed()
    with pytest.raises(ManifestError, match="photo"):
        state.result()
    assert emu.stats()["requests_total"] == 0


def test_a_manifest_column_named_like_a_result_column_is_named_in_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = str(tmp_path)
    manifest = write_manifest(
        f"{root}/m.parquet", write_inputs(root, 2), status=pa.array(["todo", "todo"])
    )
    caplog.set_level(logging.WARNING)

    state = run_flow(manifest, f"{root}/out")

    assert state.is_completed(), state.message
    assert [r["status"] for r in _results(f"{root}/out")] == ["succeeded", "succeeded"]
    warnings = [r.getMessage() for r in caplog.records if r.name == "prefect.flow_runs"]
    assert any(m.startswith("manifest column(s) status share a name") for m in warnings)
    assert not any("row_key" in m for m in warnings)  # the key column is not shadowed

"""`erase_manifest` end to end: Prefect test harness, the emulator over HTTP, real storage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from prefect_flux_erase import storage
from prefect_flux_erase.blocks import FluxEraseSettings
from prefect_flux_erase.emulator import EmulatorServer
from prefect_flux_erase.flows import EraseSummary
from prefect_flux_erase.results.row_outcome import RESULT_COLUMNS
from tests.fixtures.builders import (
    BAD_INPUT_CODES,
    make_bucket,
    s3_client,
    write_bad_inputs,
    write_inputs,
    write_manifest,
)
from tests.fixtures.jobs import run_flow

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _results(output: str, so: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    fs, path = storage.resolve(storage.join(output, "results.parquet"), so)
    with fs.open(path, "rb") as f:
        return pq.read_table(f).to_pylist()


def test_every_row_once_with_pass_through_columns_and_artifacts(tmp_path: Path) -> None:
    root = str(tmp_path)
    manifest = write_manifest(f"{root}/m.parquet", write_inputs(root, 7))

    state = run_flow(manifest, f"{root}/out", shard_size=3)

    assert state.is_completed(), state.message
    summary = state.result()
    assert isinstance(summary, EraseSummary)
    assert (summary.rows, summary.succeeded, summary.failed, summary.shards) == (7, 7, 0, 3)
    rows = _results(f"{root}/out")
    assert [r["row_key"] for r in rows] == [f"img{i:03d}" for i in range(7)]
    assert [r["note"] for r in rows] == [f"note-{i}" for i in range(7)]
    assert set(RESULT_COLUMNS) <= set(rows[0])
    for r in rows:
        assert r["status"] == "succeeded"
        assert r["output_uri"] == [f"{root}/out/images/{r['row_key']}.jpg"]
        assert r["cost"] == 0.0
        assert r["source_url"] == []
        assert Path(r["output_uri"][0]).read_bytes()[:3] == b"\xff\xd8\xff"
    keys = {a.key for a in _artifacts(summary.run_key)}
    assert {
        f"flux-erase-progress-{summary.run_key[:12]}",
        f"flux-erase-summary-{summary.run_key[:12]}",
    } <= keys


def _artifacts(run_key: str) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        return client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(like_=f"flux-erase-%-{run_key[:12]}")
            )
        )


def test_bad_rows_fail_with_codes_good_rows_succeed_nothing_escapes(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    root = tmp_path / "work"
    rows = write_inputs(str(root), 3) + write_bad_inputs(str(root))
    manifest = write_manifest(f"{root}/m.parquet", rows)
    output = f"{root}/out"

    state = run_flow(manifest, output, url=emu.url, max_failed_fraction=1.0)

    assert state.is_completed(), state.message
    by_key = {r["row_key"]: r for r in _results(output)}
    assert len(by_key) == 9
    assert {by_key[f"img{i:03d}"]["status"] for i in range(3)} == {"succeeded"}
    for code in BAD_INPUT_CODES:
        assert (by_key[code]["status"], by_key[code]["error_code"]) == ("failed", code)
        assert by_key[code]["error_message"]
    assert by_key["../../escape"]["error_code"] == "unsafeRowKey"
    written = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()}
    assert all(str(p).startswith("work/") for p in written)
    assert emu.stats()["results_billed"] == 3


def test_max_failed_fraction_decides_completed_or_failed(tmp_path: Path) -> None:
    root = str(tmp_path)
    rows = write_inputs(root, 3) + write_bad_inputs(root)[:1]
    manifest = write_manifest(f"{root}/m.parquet", rows)

    failed = run_flow(manifest, f"{root}/a", max_failed_fraction=0.2)
    passed = run_flow(manifest, f"{root}/b", max_failed_fraction=0.25)

    assert failed.is_failed()
    assert "1 of 4 rows failed" in failed.message
    assert f"{root}/a/results.parquet" in failed.message
    assert passed.is_completed()
    assert passed.result().failed == 1


def test_faults_of_every_kind_leave_every_good_row_succeeded_and_charged_once(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    root = str(tmp_path)
    manifest = write_manifest(f"{root}/m.parquet", write_inputs(root, 24))
    kinds = [
        "http_429",
        "http_500",
        "http_502",
        "http_503",
        "http_504",
        "reset_before",
        "reset_after",
        "malformed_json",
        "timeout_provider",
    ]
    emu.configure(faults=dict.fromkeys(kinds, 0.1))

    state = run_flow(
        manifest,
        f"{root}/out",
        url=emu.url,
        shard_size=8,
        concurrency=4,
        # 90 % of submissions draw a fault here and a tenth end in timeoutProvider, so an attempt
        # fails ~1 time in 4; ten attempts make a row's final failure a ~1e-6 event, not a flake.
        max_attempts=10,
    )

    assert state.is_completed(), state.message
    rows = _results(f"{root}/out")
    assert {r["status"] for r in rows} == {"succeeded"}
    stats = emu.stats()
    assert sum(stats["faults"].values()) > 0
    billed = stats["billed"]
    assert {e["count"] for e in billed.values()} == {1}
    assert sorted(billed) == sorted(r["task_uuid"] for r in rows)


def test_rows_past_the_poll_timeout_are_collected_by_a_rerun_without_a_second_charge(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    root = str(tmp_path)
    manifest = write_manifest(f"{root}/m.parquet", write_inputs(root, 3))
    emu.configure(latency=1.5)

    state = run_flow(
        manifest,
        f"{root}/out",
        url=emu.url,
        shard_size=3,
        poll_timeout=0.3,
        max_failed_fraction=1.0,
    )

    assert state.is_completed(), state.message
    rows = _results(f"{root}/out")
    assert {(r["status"], r["error_code"]) for r in rows} == {("failed", "pollTimeout")}
    assert all("poll_timeout" in r["error_message"] for r in rows)
    # A timeout is not a definite failure: no second attempt was submitted for any row.
    assert emu.stats()["requests_by_task_type"]["imageInference"] == 3
    emu.wait_idle()
    assert len(emu.stats()["billed"]) == 3  # the server finished and charged them all

    # The shard is not final: a rerun collects the paid results by task UUID, charging nothing.
    again = run_flow(manifest, f"{root}/out", url=emu.url, shard_size=3)

    assert again.is_completed(), again.message
    rows = _results(f"{root}/out")
    assert {(r["status"], r["resumed"]) for r in rows} == {("succeeded", True)}
    assert {e["count"] for e in emu.stats()["billed"].values()} == {1}
    assert sorted(emu.stats()["billed"]) == sorted(r["task_uuid"] for r in rows)


def test_rerun_of_a_finished_manifest_makes_no_api_request(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    root = str(tmp_path)
    manifest = write_manifest(f"{root}/m.parquet", write_inputs(root, 6))
    options = {"url": emu.url, "shard_size": 2}
    first = run_flow(manifest, f"{root}/out", **options)
    assert first.is_completed(), first.message
    before = emu.stats()["requests_total"]

    again = run_flow(manifest, f"{root}/out", **options)

    assert again.is_completed()
    assert emu.stats()["requests_total"] == before
    assert again.result().shards_skipped == 3
    assert _results(f"{root}/out") == _results(f"{root}/out")
    assert len(_results(f"{root}/out")) == 6


def test_rerun_of_a_finished_manifest_keeps_its_report_and_rewrites_a_stale_one(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    root = str(tmp_path)
    manifest = write_manifest(f"{root}/m.parquet", write_inputs(root, 4))
    options = {"url": emu.url, "report": True}
    first = run_flow(manifest, f"{root}/out", shard_size=2, **options)
    assert first.is_completed(), first.message
    report = tmp_path / "out" / "report.html"
    written = report.stat().st_mtime_ns

    again = run_flow(manifest, f"{root}/out", shard_size=2, **options)

    assert again.result().report_uri == first.result().report_uri
    assert report.stat().st_mtime_ns == written  # the same results: not redrawn
    report.write_text("<html>a report of something else</html>")
    third = run_flow(manifest, f"{root}/out", shard_size=2, **options)
    assert third.is_completed()
    assert "FLUX Erase run" in report.read_text()


def test_interrupted_run_resumes_without_charging_twice(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    from prefect_flux_erase.flows.manifest_flow import default_settings
    from prefect_flux_erase.shards.job import compute_run_key
    from prefect_flux_erase.tasks import submit_erase
    from tests.fixtures.jobs import make_job, shards_of

    root = str(tmp_path)
    manifest = write_manifest(f"{root}/m.parquet", write_inputs(root, 6))
    output = f"{root}/out"
    options = {"url": emu.url, "shard_size": 3}
    # A first run submits shard 0 and dies before polling it.
    job = make_job(manifest, output, url=emu.url, settings=default_settings())
    job = type(job)(
        **{
            **job.__dict__,
            "run_key": compute_run_key(
                manifest=manifest,
                output=output,
                options=default_settings().to_options(),
                backend="runware",
                columns={"image": "image_uri", "mask": "mask_uri", "key": "row_key"},
            ),
        }
    )
    abandoned = submit_erase.fn(job, shards_of(job, 3)[0])
    assert {t.state for t in abandoned.tickets} == {"accepted"}

    state = run_flow(manifest, output, **options)

    assert state.is_completed(), state.message
    rows = _results(output)
    assert [r["resumed"] for r in rows] == [True] * 3 + [False] * 3
    stats = emu.stats()
    assert stats["results_billed"] == 6
    assert {e["count"] for e in stats["billed"].values()} == {1}
    assert stats["tasks_accepted"] == 6


#: Object stores the pipeline is run against on loopback: ``where`` -> the fixtures giving its
#: ``storage_options`` and a fresh bucket (or container). A store added here is compared below.
_OBJECT_STORES = {
    "s3": ("s3_options", "s3_bucket"),  # moto's server, through s3fs
    "gs": ("gcs_options", "gcs_bucket"),  # gcp-storage-emulator, through gcsfs
    "az": ("azure_options", "azure_container"),  # Azurite, through adlfs
}


def _storage_root(
    where: str, tmp_path: Path, request: pytest.FixtureRequest
) -> tuple[str, dict[str, Any] | None]:
    """A fresh, empty root URI on the storage ``where`` and the ``storage_options`` to reach it."""
    if where == "file":
        return str(tmp_path), None
    if where == "memory":
        return f"memory://flows-identical/{tmp_path.name}", None
    options_fixture, bucket_fixture = _OBJECT_STORES[where]
    bucket = request.getfixturevalue(bucket_fixture)
    return f"{where}://{bucket}/run", request.getfixturevalue(options_fixture)


@pytest.mark.parametrize("where", ["file", "memory", *_OBJECT_STORES])
def test_every_storage_gives_identical_results(
    tmp_path: Path, where: str, request: pytest.FixtureRequest
) -> None:
    root, so = _storage_root(where, tmp_path, request)
    rows = write_inputs(root, 4, so) + write_bad_inputs(root, so)[:2]
    manifest = write_manifest(storage.join(root, "m.parquet"), rows, so)

    state = run_flow(
        manifest, storage.join(root, "out"), storage_options=so, max_failed_fraction=1.0
    )

    assert state.is_completed(), state.message
    got = _results(storage.join(root, "out"), so)
    comparable = [
        (
            r["row_key"],
            r["status"],
            r["error_code"],
            r["note"],
            [u.replace(root, "<root>") for u in r["output_uri"]],
        )
        for r in got
    ]
    assert comparable == [
        ("img000", "succeeded", None, "note-0", ["<root>/out/images/img000.jpg"]),
        ("img001", "succeeded", None, "note-1", ["<root>/out/images/img001.jpg"]),
        ("img002", "succeeded", None, "note-2", ["<root>/out/images/img002.jpg"]),
        ("img003", "succeeded", None, "note-3", ["<root>/out/images/img003.jpg"]),
        ("inputNotFound", "failed", "inputNotFound", "note-4", []),
        ("invalidImage", "failed", "invalidImage", "note-5", []),
    ]
    first = storage.read_bytes(storage.join(root, "out/images/img000.jpg"), so)
    assert first[:3] == b"\xff\xd8\xff"
    # Everything the run wrote is in the output root: no temporary object left behind.
    fs, out = storage.resolve(storage.join(root, "out"), so)
    fs.invalidate_cache()
    written = sorted(p.removeprefix(f"{out}/") for p in fs.find(out))
    assert written == [
        "_parts/shard-00000.parquet",
        *(f"images/img{i:03d}.jpg" for i in range(4)),
        "results.parquet",
    ]


def test_presigned_upload_urls_receive_the_output_and_are_recorded_redacted(
    tmp_path: Path, emu: EmulatorServer, s3_options: dict[str, Any]
) -> None:
    import pyarrow as pa

    root = str(tmp_path)
    rows = write_inputs(root, 2)
    s3 = s3_client(s3_options)
    s3_bucket = make_bucket(s3_options)
    urls = [
        s3.generate_presigned_url(
            "put_object",
            Params={"Bucket": s3_bucket, "Key": f"erased/{r['row_key']}.png"},
            ExpiresIn=600,
        )
        for r in rows
    ]
    manifest = write_manifest(f"{root}/m.parquet", rows, upload_url=pa.array(urls))

    state = run_flow(
        manifest,
        f"{root}/out",
        url=emu.url,
        settings=FluxEraseSettings(output_format="PNG", include_cost=True),
    )

    assert state.is_completed(), state.message
    got = _results(f"{root}/out")
    for r, url in zip(got, urls, strict=True):
        signature = url.split("Signature=")[1].split("&")[0]
        assert signature not in repr(r)
        assert r["output_uri"][0].split("?")[0] == url.split("?")[0]
        assert "Signature=REDACTED" in r["output_uri"][0]
        body = storage.read_bytes(f"s3://{s3_bucket}/erased/{r['row_key']}.png", s3_options)
        assert body[:4] == b"\x89PNG"
    assert not (tmp_path / "out" / "images").exists()


def test_progress_updates_are_held_back_between_intervals_and_the_last_goes_out() -> None:
    from prefect import flow

    from prefect_flux_erase.flows.artifacts import ProgressArtifact

    run_key = "progressthrottle0"

    @flow
    def shards_commit() -> tuple[int, int]:
        progress = ProgressArtifact(run_key, total_rows=100, done_rows=0, min_interval=3600)
        for done in (10, 20, 30):
            progress.update(done_rows=done)  # within the interval: held back
        held = progress.sent
        progress.update(done_rows=100, failed_rows=2)  # every row finished: sent at once
        return held, progress.sent

    assert shards_commit() == (0, 1)
    (artifact,) = [a for a in _artifacts(run_key) if a.type == "progress"]
    assert artifact.data == 100.0
    assert "100 of 100 rows finished (2 failed)" in (artifact.description or "")


def test_a_held_progress_update_goes_out_on_flush() -> None:
    from prefect import flow

    from prefect_flux_erase.flows.artifacts import ProgressArtifact

    run_key = "progressflush0000"

    @flow
    def interrupted() -> None:
        progress = ProgressArtifact(run_key, total_rows=100, done_rows=0, min_interval=3600)
        progress.update(done_rows=40, failed_rows=1)
        progress.flush()

    interrupted()
    (artifact,) = [a for a in _artifacts(run_key) if a.type == "progress"]
    assert artifact.data == 40.0


def test_a_long_run_does_not_pile_up_prefects_bookkeeping_of_finished_stages(
    tmp_path: Path,
) -> None:
    """Prefect keeps a state per task result and a cancel event per task run for the whole
    flow run; the driver drops those of finished stages, so they stay few however many
    shards the run has."""
    from prefect.context import FlowRunContext

    from prefect_flux_erase.run.progress import Progress, listen

    sizes: list[tuple[int, int]] = []

    def watch(progress: Progress) -> None:
        context = FlowRunContext.get()
        assert context is not None
        events = getattr(context.task_runner, "_cancel_events", {})
        sizes.append((len(context.run_results), len(events)))

    root = str(tmp_path)
    manifest = write_manifest(f"{root}/m.parquet", write_inputs(root, 60))
    with listen(watch):
        state = run_flow(manifest, f"{root}/out", shard_size=1, max_shards_in_flight=2)

    assert state.is_completed(), state.message
    assert len(sizes) == 61  # the start, then one per shard
    # 60 shards x 3 stages would leave 180 cancel events and ~500 linked results.
    assert max(events for _, events in sizes[-10:]) <= 12
    assert max(linked for linked, _ in sizes[-10:]) <= 30

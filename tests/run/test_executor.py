"""The core's executor and the front door's steps, on the local engine and the emulator."""

from __future__ import annotations

import asyncio
import json
import pickle
from pathlib import Path

import pytest

from prefect_flux_erase.emulator import EmulatorServer
from prefect_flux_erase.results.summary import EraseSummary
from prefect_flux_erase.run import (
    RunConfigError,
    RunSpec,
    RunwareConfig,
    ShardsFailed,
    StageFailed,
    TooManyFailedRows,
    arun_shard,
    build_job,
    check_threshold,
    finish_run,
    plan_run,
    run_manifest,
    run_shard_stage,
    shard_from_dict,
    shard_to_dict,
)
from tests.fixtures.builders import write_bad_inputs, write_inputs, write_manifest
from tests.fixtures.jobs import FAST_POLL, FAST_RETRY, TEST_KEY


def _spec(root: str, rows: int, **options: object) -> RunSpec:
    manifest = write_manifest(f"{root}/m.parquet", write_inputs(root, rows))
    defaults: dict[str, object] = {
        "key_column": "row_key",
        "local_engine": "echo",
        "shard_size": 2,
        "report": False,
    }
    return RunSpec(manifest, f"{root}/out", **{**defaults, **options})  # type: ignore[arg-type]


def test_stage_is_run_again_after_a_transient_fault_and_not_after_a_permanent_one() -> None:
    calls = {"transient": 0, "permanent": 0}

    async def flaky() -> str:
        calls["transient"] += 1
        if calls["transient"] < 3:
            raise ConnectionResetError("reset by peer")
        return "done"

    async def broken() -> str:
        calls["permanent"] += 1
        raise PermissionError("denied")

    assert asyncio.run(run_shard_stage(flaky, timeout=5, delay=0.0)) == "done"
    with pytest.raises(PermissionError):
        asyncio.run(run_shard_stage(broken, timeout=5, delay=0.0))
    assert calls == {"transient": 3, "permanent": 1}


def test_steps_one_at_a_time_give_what_run_manifest_gives(tmp_path: Path) -> None:
    """plan_run → shards as JSON → build_job + arun_shard in 'another worker' → finish_run:
    the Airflow way, step by step, ends with the same results as the whole run."""
    spec = _spec(str(tmp_path), 5)
    run = plan_run(spec)
    assert [s.num_rows for s in run.todo] == [2, 2, 1]
    wire = json.dumps([shard_to_dict(s) for s in run.todo])
    job = build_job(spec.check())  # a worker rebuilds the job from the spec alone
    assert pickle.loads(pickle.dumps(job)).run_key == run.run_key
    reports = [asyncio.run(arun_shard(job, shard_from_dict(d))) for d in json.loads(wire)]
    assert sum(r.succeeded for r in reports) == 5
    summary = check_threshold(finish_run(run), 0.0)
    assert (summary.rows, summary.succeeded, summary.shards) == (5, 5, 3)

    again = plan_run(spec)
    assert again.todo == []
    assert again.skipped_rows == 5
    assert run_manifest(spec.manifest, spec.output, **_options(spec)).shards_skipped == 3


def _options(spec: RunSpec) -> dict[str, object]:
    return {
        "key_column": spec.key_column,
        "local_engine": spec.local_engine,
        "shard_size": spec.shard_size,
        "report": False,
    }


def test_too_many_failed_rows_carries_the_summary_after_writing_everything(
    tmp_path: Path,
) -> None:
    root = str(tmp_path)
    manifest = write_manifest(f"{root}/m.parquet", write_inputs(root, 2) + write_bad_inputs(root))
    with pytest.raises(TooManyFailedRows) as raised:
        run_manifest(manifest, f"{root}/out", key_column="row_key", local_engine="echo")
    summary = raised.value.summary
    assert isinstance(summary, EraseSummary)
    assert (summary.succeeded, summary.failed) == (2, 6)
    assert Path(summary.results_uri).exists()
    assert summary.report_uri is not None
    assert Path(summary.report_uri).exists()
    assert "6 of 8 rows failed" in str(raised.value)
    assert pickle.loads(pickle.dumps(raised.value)).summary == summary


def test_a_shard_that_cannot_commit_fails_the_run_with_shards_failed(tmp_path: Path) -> None:
    """The output is below a regular file, so no part can be written: every shard fails after
    its retries (a permanent fault: none), and nothing is reported committed."""
    spec = _spec(str(tmp_path), 3)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file")
    with pytest.raises(ShardsFailed) as raised:
        run_manifest(spec.manifest, str(blocker / "out"), **_options(spec))
    assert raised.value.shards == 2
    assert raised.value.committed == 0
    assert sorted(f.shard_index for f in raised.value.failures) == [0, 1]
    assert "run again with the same arguments to resume" in str(raised.value)


def test_a_stage_failure_names_shard_and_stage() -> None:
    failed = StageFailed(4, "poll", TimeoutError("the stage did not finish"))
    assert str(failed) == "shard 4 (poll): TimeoutError: the stage did not finish"
    assert pickle.loads(pickle.dumps(failed)).failure == failed.failure


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("shard_size", 0),
        ("concurrency", -1),
        ("max_failed_fraction", 1.5),
        ("poll_timeout", float("inf")),
        ("backend", "cloud"),
    ],
)
def test_an_invalid_option_is_refused_before_anything_is_read(
    tmp_path: Path, option: str, value: object
) -> None:
    spec = RunSpec(str(tmp_path / "nothing-here.parquet"), str(tmp_path / "out"))
    with pytest.raises(RunConfigError) as raised:
        plan_run(RunSpec(**{**spec.__dict__, option: value}))
    assert raised.value.parameter == option
    assert option in str(raised.value)
    assert not (tmp_path / "out").exists()


def test_runware_without_a_key_is_refused_with_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RUNWARE_API_KEY", raising=False)
    with pytest.raises(RunConfigError, match="RUNWARE_API_KEY"):
        RunSpec("m.parquet", str(tmp_path), backend="runware").check()


def test_the_emulator_run_through_the_core_bills_each_row_once_across_a_rerun(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    spec = _spec(
        str(tmp_path),
        5,
        backend="runware",
        runware=RunwareConfig(api_key=TEST_KEY, base_url=emu.url),
        poll_policy=FAST_POLL,
        retry_policy=FAST_RETRY,
    )
    emu.configure(faults={"reset_before": 0.2})
    options = {k: v for k, v in spec.__dict__.items() if k not in ("manifest", "output")}
    summary = run_manifest(spec.manifest, spec.output, **options)
    assert summary.succeeded == 5
    assert len(emu.stats()["billed"]) == 5


def test_one_shard_run_as_a_mapped_task_commits_then_raises_when_the_key_is_rejected(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    """As Airflow runs a shard: the task fails with what to fix; its rows stay unattempted."""
    from prefect_flux_erase.results.assemble import read_part_outcomes
    from prefect_flux_erase.run import RunStopped
    from prefect_flux_erase.shards.run_control import end_run

    emu.configure(api_keys=frozenset({TEST_KEY}))
    revoked = RunwareConfig(api_key=TEST_KEY + "-revoked", base_url=emu.url)
    run = plan_run(
        _spec(str(tmp_path), 2, backend="runware", runware=revoked, retry_policy=FAST_RETRY)
    )
    try:
        with pytest.raises(RunStopped) as caught:
            asyncio.run(arun_shard(run.job, run.todo[0]))
    finally:
        end_run(run.run_key)

    assert caught.value.code == "invalidApiKey"
    assert "check the API key" in str(caught.value)
    found = read_part_outcomes(run.spec.output, 0, run.run_key)
    assert found is not None
    assert {o.error_code for o in found[0].values()} == {"notAttempted"}
    assert emu.stats()["tasks_accepted"] == 0


def test_a_manifest_run_takes_its_results_inline_without_a_download_per_row(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    # Issue 16: unset, outputType is base64Data for manifest runs, so each result comes back
    # in the getResponse reply that reports it done: fewer requests in all than rows.
    spec = _spec(
        str(tmp_path),
        12,
        backend="runware",
        runware=RunwareConfig(api_key=TEST_KEY, base_url=emu.url),
        poll_policy=FAST_POLL,
        shard_size=12,
        concurrency=12,
    )
    options = {k: v for k, v in spec.__dict__.items() if k not in ("manifest", "output")}
    summary = run_manifest(spec.manifest, spec.output, **options)
    stats = emu.stats()
    assert summary.succeeded == 12
    assert stats["requests_total"] < 12, stats["requests_by_status"]
    assert build_job(spec.check()).options.output_type == "base64Data"
    for image in (tmp_path / "out" / "images").iterdir():
        assert image.read_bytes()[:3] == b"\xff\xd8\xff"


def test_the_inline_default_keeps_the_run_key_and_urls_when_asked_for(tmp_path: Path) -> None:
    from prefect_flux_erase.run import EraseOptions

    before = build_job(RunSpec("m.parquet", str(tmp_path)).check())
    assert before.options.output_type == "base64Data"
    # The key hashes the options as given (URL omitted as the API's default), as before the
    # pipeline chose inline results: runs started then keep resuming, nothing charged twice.
    assert "outputType" not in RunSpec("m.parquet", str(tmp_path)).options.wire_options()
    assert (
        before.run_key
        == build_job(
            RunSpec("m.parquet", str(tmp_path), options=EraseOptions(include_cost=True)).check()
        ).run_key
    )
    for asked in (EraseOptions(ttl=600), EraseOptions(upload_endpoint="https://x/put")):
        job = build_job(RunSpec("m.parquet", str(tmp_path), options=asked).check())
        assert job.options.output_type == "URL"
    job = build_job(
        RunSpec("m.parquet", str(tmp_path), options=EraseOptions(output_type="dataURI")).check()
    )
    assert job.options.output_type == "dataURI"

"""The shard stages against the real emulator over HTTP and the local engine, via `task.fn`."""

from __future__ import annotations

from pathlib import Path

from prefect_flux_erase import storage
from prefect_flux_erase.blocks import FluxEraseSettings
from prefect_flux_erase.emulator import EmulatorServer
from prefect_flux_erase.runware.ids import task_uuid
from prefect_flux_erase.shards.api_backend import RunAborted
from prefect_flux_erase.shards.contents import row_task_key
from prefect_flux_erase.shards.run_control import end_run
from prefect_flux_erase.tasks import poll_erase, submit_erase, upload_erased
from tests.fixtures.builders import BAD_INPUT_CODES, write_bad_inputs, write_inputs
from tests.fixtures.jobs import job_over, make_job, shards_of


def _by_key(tickets):  # type: ignore[no-untyped-def]
    return {t.row_key: t for t in tickets}


async def test_bad_rows_fail_locally_with_stable_codes_and_cost_no_api_call(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    root = str(tmp_path)
    rows = write_inputs(root, 2) + write_bad_inputs(root)
    job = job_over(root, rows, url=emu.url)

    submitted = submit_erase.fn(job, shards_of(job)[0])

    tickets = _by_key(submitted.tickets)
    assert [tickets[k].state for k in ("img000", "img001")] == ["accepted", "accepted"]
    for code in BAD_INPUT_CODES:
        assert tickets[code].state == "failed", code
        assert tickets[code].error_code == code, tickets[code].error_message
    assert tickets["../../escape"].error_code == "unsafeRowKey"
    assert "dilatePixels" in (tickets["invalidOption"].error_message or "")
    assert "128x128" in (tickets["invalidMaskDimensions"].error_message or "")
    # Only the two good rows reached the API.
    assert emu.stats()["tasks_accepted"] == 2


async def test_submit_poll_done_with_one_charge_per_row(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    job = job_over(tmp_path, 5, url=emu.url)

    polled = poll_erase.fn(job, submit_erase.fn(job, shards_of(job)[0]))

    assert {t.state for t in polled.tickets} == {"done"}
    assert all(t.results[0].url and t.results[0].cost for t in polled.tickets)
    billed = emu.stats()["billed"]
    assert sorted(billed) == sorted(t.task_uuid for t in polled.tickets)
    assert {entry["count"] for entry in billed.values()} == {1}


async def test_transient_task_failure_gets_a_new_attempt_and_a_new_uuid(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    job = job_over(tmp_path, 1, url=emu.url)
    emu.script_faults(["timeout_provider"])

    polled = poll_erase.fn(job, submit_erase.fn(job, shards_of(job)[0]))

    (ticket,) = polled.tickets
    assert ticket.state == "done"
    assert ticket.attempt == 2
    # The row's content names its task (rows of equal content share it), attempt 2 a new one.
    assert ticket.content_key is not None
    assert ticket.task_uuid == task_uuid(job.run_key, row_task_key(ticket.content_key), 2)
    billed = emu.stats()["billed"]
    assert list(billed) == [ticket.task_uuid]  # the failed attempt was not charged


async def test_permanent_transient_failures_stop_at_max_attempts(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    job = job_over(tmp_path, 1, url=emu.url, max_attempts=2)
    emu.script_faults(["timeout_provider"] * 2)

    polled = poll_erase.fn(job, submit_erase.fn(job, shards_of(job)[0]))

    (ticket,) = polled.tickets
    assert (ticket.state, ticket.error_code, ticket.attempt) == ("failed", "timeoutProvider", 2)
    assert emu.stats()["results_billed"] == 0


async def test_resubmitting_a_shard_is_answered_by_conflict_not_a_second_charge(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    job = job_over(tmp_path, 3, url=emu.url)
    shard = shards_of(job)[0]
    first = poll_erase.fn(job, submit_erase.fn(job, shard))

    again = submit_erase.fn(job, shard)  # a Prefect retry or a rerun of the same stage
    polled = poll_erase.fn(job, again)

    assert {t.state for t in again.tickets} == {"accepted"}
    assert all(t.resumed for t in again.tickets)
    assert [t.task_uuid for t in polled.tickets] == [t.task_uuid for t in first.tickets]
    stats = emu.stats()
    assert stats["conflicts"] == 3
    assert stats["results_billed"] == 3


async def test_rejected_api_key_stops_the_run_and_leaves_its_rows_unattempted(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    job = job_over(tmp_path, 3, url=emu.url)
    emu.configure(api_keys=frozenset({"some-other-key"}))
    try:
        submitted = submit_erase.fn(job, shards_of(job)[0])
        report = upload_erased.fn(job, poll_erase.fn(job, submitted))
    finally:
        end_run(job.run_key)

    assert {t.state for t in submitted.tickets} == {"pending"}  # not failed: never created
    assert report.error_counts == {"notAttempted": 3}
    assert (report.unfinished, report.succeeded) == (3, 0)
    stop = report.stop
    assert isinstance(stop, RunAborted)
    assert stop.code == "invalidApiKey"
    assert "RUNWARE_API_KEY" in stop.message
    assert "rk-test-canary" not in str(stop)
    stats = emu.stats()
    assert stats["tasks_accepted"] == 0
    assert sum(stats["requests_by_task_type"].values()) == 1  # stopped at the first answer


async def test_local_backend_erases_in_the_submit_stage(tmp_path: Path) -> None:
    root = str(tmp_path)
    job = job_over(root, 3, backend="local")

    polled = poll_erase.fn(job, submit_erase.fn(job, shards_of(job)[0]))

    assert {t.state for t in polled.tickets} == {"done"}
    for t in polled.tickets:
        (ref,) = t.results
        assert ref.written_uri == f"{root}/out/images/{t.row_key}.jpg"
        assert ref.cost == 0.0
        assert storage.read_bytes(ref.written_uri)[:3] == b"\xff\xd8\xff"


async def test_inline_outputs_are_written_when_they_arrive(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    root = str(tmp_path)
    settings = FluxEraseSettings(output_type="base64Data", output_format="PNG", number_results=2)
    job = job_over(root, 2, url=emu.url, settings=settings)

    polled = poll_erase.fn(job, submit_erase.fn(job, shards_of(job)[0]))

    for t in polled.tickets:
        uris = [r.written_uri for r in t.results]
        assert uris == [f"{root}/out/images/{t.row_key}_{k}.png" for k in (0, 1)]
        assert all(storage.read_bytes(u)[:4] == b"\x89PNG" for u in uris if u)


def test_first_poll_is_timed_from_the_submission_not_from_the_poll_stage(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    import time
    from dataclasses import replace

    from prefect_flux_erase.runware.polling import PollPolicy
    from prefect_flux_erase.shards.api_backend import RunwareBackend
    from prefect_flux_erase.shards.rows import RowTicket

    policy = PollPolicy(initial_delay=100.0, interval=0.5)
    job = replace(make_job("m.parquet", str(tmp_path), url=emu.url), poll_policy=policy)
    backend = RunwareBackend(job)
    row = RowTicket(row_index=0, row_key="a", image_uri="a.png", mask_uri="m.png")
    now = time.time()

    long_ago, _ = backend._policy_since([replace(row, sent_at=now - 500.0)])
    # The latest submission counts; rows never sent (failed locally) do not.
    recent = [replace(row, sent_at=now - 400.0), replace(row, sent_at=now - 50.0), row]
    a_moment_ago, _ = backend._policy_since(recent)
    never_sent, _ = backend._policy_since([row])

    assert long_ago.initial_delay == 0.0
    assert 0.0 < a_moment_ago.initial_delay <= 50.0
    assert never_sent.initial_delay == 100.0
    assert long_ago.interval == a_moment_ago.interval == 0.5


def test_the_first_poll_learns_when_results_are_ready(tmp_path: Path, emu: EmulatorServer) -> None:
    """With the pipeline's adaptive cadence, shards after the first few are polled about when
    their results are ready: one getResponse request each, instead of one too early and one
    after the fixed interval."""
    from dataclasses import replace

    from prefect_flux_erase.shards import first_poll as cadence
    from prefect_flux_erase.shards.api_backend import PIPELINE_POLL_POLICY

    emu.configure(latency=0.3)
    job = replace(
        job_over(tmp_path, 24, url=emu.url),
        poll_policy=replace(PIPELINE_POLL_POLICY, initial_delay=0.05),
    )
    cadence._LEARNERS.clear()  # this emulator's port may have served an earlier test
    learner = cadence.learner_for(emu.url, "bfl:flux@erase")
    shards = shards_of(job, shard_size=2)

    polls = []
    for shard in shards:
        before = emu.stats()["requests_by_task_type"].get("getResponse", 0)
        polled = poll_erase.fn(job, submit_erase.fn(job, shard))
        assert {t.state for t in polled.tickets} == {"done"}
        # getResponse tasks / rows: the poll rounds this shard needed.
        polls.append((emu.stats()["requests_by_task_type"]["getResponse"] - before) // 2)

    learned = learner.first_delay(0.05)
    assert learner.observations == len(shards)
    # Learned from 0.05 s up to about the latency (never far past it: it probes earlier).
    assert 0.25 <= learned <= 0.45, learned
    # The first shard polled several times; once learned, most shards need a single round.
    assert polls[0] >= 4, polls
    assert sum(p == 1 for p in polls[-6:]) >= 4, polls


def test_a_later_row_with_a_seen_key_fails_without_a_request_and_the_first_runs(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    from prefect_flux_erase.manifest.keys import mark_duplicate_keys
    from prefect_flux_erase.manifest.plan import plan_manifest

    root = str(tmp_path)
    rows = write_inputs(root, 3)
    rows[2]["row_key"] = rows[0]["row_key"]
    job = job_over(root, rows, url=emu.url)
    (shard,) = mark_duplicate_keys(job.manifest, plan_manifest(job.manifest)).shards

    submitted = submit_erase.fn(job, shard)

    states = [(t.row_index, t.state, t.error_code) for t in submitted.tickets]
    assert states == [
        (0, "accepted", None),
        (1, "accepted", None),
        (2, "failed", "duplicateRowKey"),
    ]
    assert "row 0" in (submitted.tickets[2].error_message or "")
    assert emu.stats()["requests_by_task_type"]["imageInference"] == 2


async def test_a_shard_keeps_at_most_concurrency_rows_at_the_api(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    job = job_over(tmp_path, 14, url=emu.url, concurrency=4)
    emu.configure(latency=0.05)  # rows overlap at the server, so a wider window would show

    submitted = submit_erase.fn(job, shards_of(job)[0])
    # The first window only: the rest wait, never sent, for the poll stage.
    assert [t.state for t in submitted.tickets] == ["accepted"] * 4 + ["pending"] * 10
    assert {t.submits for t in submitted.tickets[4:]} == {0}
    assert emu.stats()["tasks_accepted"] == 4

    polled = poll_erase.fn(job, submitted)

    assert {t.state for t in polled.tickets} == {"done"}
    stats = emu.stats()
    assert stats["tasks_accepted"] == stats["results_billed"] == 14
    assert 2 <= stats["max_processing"] <= 4  # both lanes busy, never more than the window
    assert {entry["count"] for entry in stats["billed"].values()} == {1}


async def test_rows_sent_by_the_poll_stage_are_validated_and_retried_like_the_first_window(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    root = str(tmp_path)
    rows = write_inputs(root, 4) + write_bad_inputs(root)
    job = job_over(root, rows, url=emu.url, concurrency=2)
    submitted = submit_erase.fn(job, shards_of(job)[0])
    assert emu.stats()["tasks_accepted"] == 2
    # The next task the server accepts (a row the poll stage sends) fails transiently once.
    emu.script_faults(["timeout_provider"])

    polled = poll_erase.fn(job, submitted)

    tickets = _by_key(polled.tickets)
    assert [tickets[f"img00{i}"].state for i in range(4)] == ["done"] * 4
    assert max(tickets[f"img00{i}"].attempt for i in range(4)) == 2
    assert tickets["inputNotFound"].error_code == "inputNotFound"
    assert tickets["../../escape"].error_code == "unsafeRowKey"
    stats = emu.stats()
    assert stats["results_billed"] == 4  # only good rows reached the API; the retry billed once
    assert stats["max_processing"] <= 2


async def test_a_shard_downloads_at_most_sixteen_results_at_once(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    from prefect_flux_erase.shards.api_backend import RunwareBackend
    from prefect_flux_erase.shards.stages import DOWNLOADS_AT_ONCE, upload_shard

    job = job_over(tmp_path, 40, url=emu.url, concurrency=40)
    polled = poll_erase.fn(job, submit_erase.fn(job, shards_of(job)[0]))
    counts = {"now": 0, "most": 0}

    class Counting(RunwareBackend):  # the real client and emulator; only counted
        async def fetch(self, ticket, ref):  # type: ignore[no-untyped-def]
            counts["now"] += 1
            counts["most"] = max(counts["most"], counts["now"])
            try:
                return await super().fetch(ticket, ref)
            finally:
                counts["now"] -= 1

    async with Counting(job) as backend:
        report = await upload_shard(job, polled, backend)

    assert (report.succeeded, report.failed) == (40, 0)
    assert counts["most"] == DOWNLOADS_AT_ONCE == 16
    assert len(list((tmp_path / "out" / "images").iterdir())) == 40


async def test_a_row_upload_url_with_several_results_fails_validation_without_a_request(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    import pyarrow as pa

    from tests.fixtures.builders import write_manifest

    root = str(tmp_path)
    rows = write_inputs(root, 2)
    uploads = pa.array(["https://b.example.test/put/img000.jpg?X-Amz-Signature=s", None])
    manifest = write_manifest(f"{root}/m.parquet", rows, upload_url=uploads)
    job = make_job(
        manifest,
        f"{root}/out",
        url=emu.url,
        settings=FluxEraseSettings(number_results=2, include_cost=True),
    )

    submitted = submit_erase.fn(job, shards_of(job)[0])

    first, second = submitted.tickets
    assert first.state == "failed"
    assert first.error_code == "invalidOption"
    assert "numberResults is 2" in (first.error_message or "")
    assert "X-Amz-Signature=s" not in (first.error_message or "")
    assert second.state == "accepted"
    assert emu.stats()["tasks_accepted"] == 1

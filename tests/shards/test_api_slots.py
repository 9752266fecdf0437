"""API slots: a gate shared across threads and event loops, and the shard stages that use it."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from prefect_flux_erase.emulator import EmulatorServer
from prefect_flux_erase.shards import api_slots as slots_module
from prefect_flux_erase.shards.api_slots import ApiSlots, forget, slots_for
from prefect_flux_erase.tasks import poll_erase, submit_erase
from tests.fixtures.builders import write_inputs, write_manifest
from tests.fixtures.jobs import job_over, run_flow, shards_of


def _in_thread(fn):  # type: ignore[no-untyped-def]
    """Run ``fn`` in a thread of its own (with its own event loop where it makes one)."""
    box: dict[str, object] = {}

    def target() -> None:
        box["started"] = time.monotonic()
        box["value"] = fn()
        box["ended"] = time.monotonic()

    thread = threading.Thread(target=target)
    thread.start()
    return thread, box


def test_capacity_holds_across_threads_and_a_release_wakes_a_waiter_at_once() -> None:
    slots = ApiSlots(2)
    assert asyncio.run(slots.acquire(0, wait_limit=1)) is True
    assert asyncio.run(slots.acquire(1, wait_limit=1)) is True
    thread, box = _in_thread(lambda: asyncio.run(slots.acquire(2, wait_limit=30)))
    time.sleep(0.3)
    assert "value" not in box  # the third waits
    assert slots.in_use == 2
    released = time.monotonic()
    slots.release(0)
    thread.join(10)
    assert box["value"] is True
    # Woken by the release, not by its 30 s limit.
    assert float(box["ended"]) - released < 15
    assert slots.in_use == 2


def test_a_waiter_past_its_limit_goes_ahead_and_releases_balance() -> None:
    slots = ApiSlots(1)
    asyncio.run(slots.acquire(0, wait_limit=1))
    assert asyncio.run(slots.acquire(1, wait_limit=0.05)) is False  # went ahead anyway
    assert slots.in_use == 2
    slots.release(1)
    slots.release(1)  # twice: a no-op
    slots.release(0)
    assert slots.in_use == 0
    assert asyncio.run(slots.acquire(5, wait_limit=0)) is True


def test_taking_a_slot_twice_for_one_shard_counts_once() -> None:
    slots = ApiSlots(1)
    asyncio.run(slots.acquire(3, wait_limit=0))
    assert asyncio.run(slots.acquire(3, wait_limit=0)) is True
    assert slots.in_use == 1


def test_a_shard_waits_for_a_slot_before_its_request_and_sends_when_one_frees(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    job = replace(job_over(tmp_path, 6, url=emu.url), api_slots=1, slots_key="t1")
    first, second = shards_of(job, shard_size=3)
    try:
        submitted = submit_erase.fn(job, first)  # takes the only slot
        assert emu.stats()["tasks_accepted"] == 3
        thread, box = _in_thread(lambda: submit_erase.fn(job, second))
        time.sleep(0.5)
        # The second shard has read and validated its rows, but sent nothing: no slot.
        assert emu.stats()["tasks_accepted"] == 3
        assert "value" not in box
        polled = poll_erase.fn(job, submitted)  # the first is answered: its slot frees
        thread.join(30)
        assert {t.state for t in polled.tickets} == {"done"}
        assert {t.state for t in box["value"].tickets} == {"accepted"}  # type: ignore[attr-defined]
        assert emu.stats()["tasks_accepted"] == 6
        assert slots_for("t1", 1).in_use == 1  # held by the second until its poll ends
        poll_erase.fn(job, box["value"])  # type: ignore[arg-type]
        assert slots_for("t1", 1).in_use == 0
    finally:
        forget("t1")


def test_a_failed_submit_stage_gives_its_slot_back(tmp_path: Path, emu: EmulatorServer) -> None:
    from prefect_flux_erase.shards.stage_loop import run_stage
    from prefect_flux_erase.shards.stages import submit_shard

    job = replace(job_over(tmp_path, 2, url=emu.url), api_slots=1, slots_key="t2")
    emu.configure(slow_delay=5.0)
    emu.script_faults(["slow"])  # the stage's request outlasts its timeout: the stage fails
    try:
        with pytest.raises(TimeoutError):
            run_stage(submit_shard(job, shards_of(job)[0]), timeout=0.5)
        assert slots_for("t2", 1).in_use == 0
    finally:
        forget("t2")


@pytest.mark.usefixtures("prefect_harness")
def test_the_flow_prefetches_within_its_slots_and_leaves_none_behind(
    tmp_path: Path, emu: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    peaks: list[int] = []
    acquire = ApiSlots.acquire

    async def recording(self: ApiSlots, holder: int, *, wait_limit: float) -> bool:
        taken = await acquire(self, holder, wait_limit=wait_limit)
        peaks.append(self.in_use)
        return taken

    monkeypatch.setattr(ApiSlots, "acquire", recording)
    emu.configure(latency=0.1)
    root = str(tmp_path)
    manifest = write_manifest(f"{root}/m.parquet", write_inputs(root, 12))
    summary = run_flow(
        manifest, f"{root}/out", url=emu.url, shard_size=2, max_shards_in_flight=2, poll_policy=None
    ).result()
    assert summary.succeeded == 12
    # Every shard took a slot before its request, never more than two at once, none timed out.
    assert len(peaks) == 6
    assert max(peaks) == 2
    assert slots_module._REGISTRY == {}


@pytest.mark.usefixtures("prefect_harness")
def test_slots_only_on_a_thread_pool_with_a_thread_for_every_shard() -> None:
    from prefect import flow
    from prefect.task_runners import ThreadPoolTaskRunner

    from prefect_flux_erase.flows.shard_driver import thread_runner_allows

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=5))
    def probe() -> tuple[bool, bool]:
        return thread_runner_allows(5), thread_runner_allows(9)

    assert probe() == (True, False)
    assert thread_runner_allows(1) is False  # outside a flow run


def test_closing_lets_a_waiter_go_at_once() -> None:
    """The flow closes its slots when it stops driving shards (a failure included): a shard
    still waiting for a slot must not wait out its limit for one never given back."""
    slots = ApiSlots(1)
    asyncio.run(slots.acquire(0, wait_limit=0))
    thread, box = _in_thread(lambda: asyncio.run(slots.acquire(1, wait_limit=600)))
    time.sleep(0.3)
    assert "value" not in box
    closed = time.monotonic()
    slots.close()
    thread.join(60)
    assert box["value"] is True
    assert float(box["ended"]) - closed < 30  # woken, not timed out after 600 s
    assert asyncio.run(slots.acquire(2, wait_limit=0)) is True


@pytest.mark.usefixtures("prefect_harness")
def test_a_driver_that_fails_leaves_no_shard_waiting_for_a_slot(
    tmp_path: Path, emu: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure in the driver ends the flow at once, with the prefetched shard let go."""
    from prefect_flux_erase.flows import shard_driver as driver

    reports = 0

    def failing_unlink(value: object) -> None:
        nonlocal reports
        if type(value).__name__ == "ShardReport":
            reports += 1
            if reports == 2:
                raise RuntimeError("driver bookkeeping broke")

    monkeypatch.setattr(driver, "forget_result_links", failing_unlink)
    emu.configure(latency=0.2)
    root = str(tmp_path)
    manifest = write_manifest(f"{root}/m.parquet", write_inputs(root, 16))
    started = time.monotonic()
    state = run_flow(
        manifest, f"{root}/out", url=emu.url, shard_size=2, max_shards_in_flight=1, poll_policy=None
    )
    assert state.is_failed()
    assert "driver bookkeeping broke" in (state.message or "")
    assert time.monotonic() - started < 300  # not the 900 s a waiting shard would take
    assert slots_module._REGISTRY == {}

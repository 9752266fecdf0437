"""Latency: the engine works while a task's latency runs; the result is never ready earlier."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

from prefect_flux_erase.emulator import EmulatorServer
from tests.fixtures.emulator_requests import TaskFactory, poll


def _status(client: httpx.Client, emu: EmulatorServer, task_uuid: str) -> str:
    items = poll(client, emu.url, task_uuid).json().get("data", [])
    return str(items[0].get("status")) if items else "none"


def test_the_engine_runs_during_the_latency_and_the_result_waits_for_it(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    rendered = threading.Event()

    def engine(rgb: Any, mask: Any, dilate: int, seed: int) -> Any:
        rendered.set()
        return rgb

    emu.configure(latency=1.5, engine=engine)
    task = make_task(deliveryMethod="async")
    submitted = time.monotonic()
    assert client.post(emu.url, json=[task]).status_code == 200

    # The engine is called long before the latency is over (not after it)...
    assert rendered.wait(10)
    # ...and its result is still held back until the latency has run.
    assert _status(client, emu, task["taskUUID"]) == "processing"
    while _status(client, emu, task["taskUUID"]) != "success":
        assert time.monotonic() - submitted < 30, "the result never became ready"
        time.sleep(0.05)
    assert time.monotonic() - submitted >= 1.5


def test_a_batch_is_ready_together_not_one_render_after_another(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    """Eight tasks of one request, an engine that takes 0.4 s and one engine thread: the
    renders run during the 6 s latency, so every result is ready when it ends, not 8 x 0.4 s
    later as when rendering waited for the latency."""
    done: list[float] = []

    def engine(rgb: Any, mask: Any, dilate: int, seed: int) -> Any:
        time.sleep(0.4)
        done.append(time.monotonic())
        return rgb

    emu.configure(latency=6.0, engine=engine, engine_workers=1)
    tasks = [make_task(deliveryMethod="async") for _ in range(8)]
    submitted = time.monotonic()
    assert client.post(emu.url, json=tasks).status_code == 200
    emu.wait_idle()
    # All eight renders finished within the latency...
    assert len(done) == 8
    assert max(done) - submitted < 6.0
    # ...and every result was then ready.
    assert {_status(client, emu, t["taskUUID"]) for t in tasks} == {"success"}

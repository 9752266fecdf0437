"""Polling deadlines: unfinished tasks come back as ``timeout`` and can be collected later."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from numpy.typing import NDArray

from prefect_flux_erase.emulator import EmulatorServer
from prefect_flux_erase.runware.client import RunwareClient
from prefect_flux_erase.runware.errors import TransientError
from prefect_flux_erase.runware.models import ImageInferenceTask

MakeTask = Callable[..., ImageInferenceTask]
NewClient = Callable[..., RunwareClient]


@pytest.fixture
def gate(emu: EmulatorServer) -> Iterator[threading.Event]:
    """An engine that holds every generation with dilatePixels 33 until the gate opens."""
    opened = threading.Event()

    def held_engine(
        rgb: NDArray[np.uint8], mask: NDArray[np.bool_], dilate: int, seed: int
    ) -> NDArray[np.uint8]:
        if dilate == 33:
            opened.wait(30)
        return rgb

    emu.configure(engine=held_engine)
    try:
        yield opened
    finally:
        opened.set()  # never leave an emulator worker blocked
        emu.wait_idle()


async def test_unfinished_tasks_time_out_and_are_collected_by_a_later_poll(
    emu: EmulatorServer, new_client: NewClient, make_task: MakeTask, gate: threading.Event
) -> None:
    held = make_task(deliveryMethod="async", settings={"dilatePixels": 33})
    quick = make_task(deliveryMethod="async")
    async with new_client() as client:
        await client.submit([held, quick])
        first = await client.poll({held.task_uuid: 1, quick.task_uuid: 1}, timeout=0.2)
        assert first[quick.task_uuid].state == "done"
        timed_out = first[held.task_uuid]
        assert timed_out.state == "timeout"
        assert isinstance(timed_out.error, TransientError)
        assert (timed_out.error.code, timed_out.definite) == ("pollTimeout", False)
        assert timed_out.requests >= 1
        gate.set()
        second = await client.poll({held.task_uuid: 1})
    assert second[held.task_uuid].state == "done"
    billed = {u: e["count"] for u, e in emu.stats()["billed"].items()}
    assert billed == {held.task_uuid: 1, quick.task_uuid: 1}


async def test_a_zero_budget_still_polls_once(
    emu: EmulatorServer, new_client: NewClient, make_task: MakeTask
) -> None:
    task = make_task(deliveryMethod="async")
    async with new_client() as client:
        await client.submit([task])
        emu.wait_idle()
        outcome = (await client.poll({task.task_uuid: 1}, timeout=0))[task.task_uuid]
    assert (outcome.state, outcome.requests) == ("done", 1)

"""Sync and async delivery, cumulative getResponse, conflicts: the protocol's core over HTTP."""

from __future__ import annotations

import subprocess
import sys
import threading
from typing import Any

import httpx
import numpy as np
from numpy.typing import NDArray

from prefect_flux_erase.emulator import EmulatorServer
from tests.fixtures.emulator_requests import TaskFactory, poll


def test_sync_reply_carries_the_result_and_its_image_is_served(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    task = make_task(outputFormat="PNG")
    reply = client.post(emu.url, json=[task])
    assert reply.status_code == 200
    body = reply.json()
    assert "errors" not in body
    (item,) = body["data"]
    assert item["taskType"] == "imageInference"
    assert item["taskUUID"] == task["taskUUID"]
    assert item["imageUUID"] != task["taskUUID"]
    assert item["imageURL"] == f"{emu.root}/image/{item['imageUUID']}.png"
    assert "status" not in item
    image = client.get(item["imageURL"])
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    assert image.content.startswith(b"\x89PNG")


def test_a_lone_task_object_is_accepted_like_a_one_element_array(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    task = make_task()
    reply = client.post(emu.url, json=task)
    assert reply.status_code == 200
    assert reply.json()["data"][0]["taskUUID"] == task["taskUUID"]


def test_async_ack_then_get_response_moves_from_processing_to_success(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    gate = threading.Event()
    emu.configure(engine=lambda rgb, mask, dilate, seed: gate.wait(30) and rgb)
    task = make_task(deliveryMethod="async", includeCost=True)
    ack = client.post(emu.url, json=[task])
    assert ack.status_code == 200
    assert ack.json() == {"data": [{"taskType": "imageInference", "taskUUID": task["taskUUID"]}]}

    processing = poll(client, emu.url, task["taskUUID"]).json()
    assert processing == {
        "data": [
            {
                "taskType": "imageInference",
                "taskUUID": task["taskUUID"],
                "status": "processing",
                "progress": 0,
            }
        ]
    }
    assert emu.stats()["results_billed"] == 0

    gate.set()
    emu.wait_idle()
    (done,) = poll(client, emu.url, task["taskUUID"]).json()["data"]
    assert done["status"] == "success"
    assert done["cost"] == 0.03
    assert done["imageURL"].endswith(f"/image/{done['imageUUID']}.jpg")
    assert emu.stats()["billed"][task["taskUUID"]] == {"count": 1, "usd": 0.03}


def test_progress_grows_with_the_time_spent_against_the_latency(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    emu.configure(latency=3600.0)
    task = make_task(deliveryMethod="async")
    client.post(emu.url, json=[task])
    (item,) = poll(client, emu.url, task["taskUUID"]).json()["data"]
    assert item["status"] == "processing"
    assert 0 <= item["progress"] < 5
    emu.configure(emit_progress=False)
    (item,) = poll(client, emu.url, task["taskUUID"]).json()["data"]
    assert "progress" not in item


def _gated_engine(
    gate: threading.Event,
) -> Any:
    calls: list[int] = []
    lock = threading.Lock()

    def engine(rgb: NDArray[np.uint8], mask: NDArray[np.bool_], dilate: int, seed: int) -> Any:
        with lock:
            calls.append(seed)
            first = len(calls) == 1
        if not first:
            gate.wait(30)
        return rgb

    return engine


def test_get_response_is_cumulative_across_polls(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    gate = threading.Event()
    emu.configure(engine=_gated_engine(gate))
    task = make_task(deliveryMethod="async", numberResults=2)
    assert client.post(emu.url, json=[task]).status_code == 200

    def statuses() -> list[str]:
        return [i["status"] for i in poll(client, emu.url, task["taskUUID"]).json()["data"]]

    # The first generation finishes; the second waits on the gate.
    for _ in range(200):
        if statuses() == ["success", "processing"]:
            break
        threading.Event().wait(0.01)
    assert statuses() == ["success", "processing"]
    first = poll(client, emu.url, task["taskUUID"]).json()["data"][0]

    gate.set()
    emu.wait_idle()
    final = poll(client, emu.url, task["taskUUID"]).json()["data"]
    again = poll(client, emu.url, task["taskUUID"]).json()["data"]
    assert [i["status"] for i in final] == ["success", "success"]
    assert final == again
    assert first in final
    assert len({i["imageUUID"] for i in final}) == 2


def test_reusing_a_task_uuid_is_a_conflict_even_while_processing(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    gate = threading.Event()
    emu.configure(engine=lambda rgb, mask, dilate, seed: gate.wait(30) and rgb)
    task = make_task(deliveryMethod="async")
    assert client.post(emu.url, json=[task]).status_code == 200
    again = client.post(emu.url, json=[task])
    gate.set()
    assert again.status_code == 400
    (error,) = again.json()["errors"]
    assert error["code"] == "conflictTaskUUID"
    assert error["taskUUID"] == task["taskUUID"]
    assert error["parameter"] == "taskUUID"
    emu.wait_idle()
    after = client.post(emu.url, json=[dict(task, deliveryMethod="sync")])
    assert after.json()["errors"][0]["code"] == "conflictTaskUUID"
    assert emu.stats()["conflicts"] == 2
    assert emu.stats()["results_billed"] == 1


def test_unknown_task_uuid_gets_task_failed_or_not_found_on_200(
    emu: EmulatorServer, client: httpx.Client
) -> None:
    reply = poll(client, emu.url, "0b7c3f8a-1d2e-4c5b-9a6f-7e8d9c0b1a2f")
    assert reply.status_code == 200
    body = reply.json()
    assert body["data"] == []
    assert body["errors"][0]["code"] == "taskFailedOrNotFound"
    assert body["errors"][0]["taskUUID"] == "0b7c3f8a-1d2e-4c5b-9a6f-7e8d9c0b1a2f"


def test_unknown_task_status_and_code_are_switches(
    emu: EmulatorServer, client: httpx.Client
) -> None:
    emu.configure(unknown_task_status=404, unknown_task_code="taskNotFound")
    reply = poll(client, emu.url, "0b7c3f8a-1d2e-4c5b-9a6f-7e8d9c0b1a2f")
    assert reply.status_code == 404
    assert reply.json()["errors"][0]["code"] == "taskNotFound"


def test_tasks_in_one_request_succeed_or_fail_separately(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    good, bad = make_task(), make_task(outputQuality=5)
    reply = client.post(emu.url, json=[good, bad])
    assert reply.status_code == 200
    body = reply.json()
    assert [i["taskUUID"] for i in body["data"]] == [good["taskUUID"]]
    assert [e["taskUUID"] for e in body["errors"]] == [bad["taskUUID"]]


def test_the_emulator_imports_without_prefect() -> None:
    code = (
        "import sys, prefect_flux_erase.emulator, prefect_flux_erase.emulator.command; "
        "print('prefect' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

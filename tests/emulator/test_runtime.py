"""Runtime behaviour: engine failures, the 4 MP cap, idempotent acks, the image byte budget."""

from __future__ import annotations

import base64
import io
from typing import Any

import httpx
import numpy as np
from PIL import Image

from prefect_flux_erase.emulator import EmulatorServer
from prefect_flux_erase.runware.media import to_data_uri
from prefect_flux_erase.runware.pricing import output_size
from tests.fixtures.emulator_requests import TaskFactory, png_bytes, poll


def _broken_engine(rgb: Any, mask: Any, dilate: int, seed: int) -> Any:
    raise RuntimeError("out of GPU memory")


def test_an_engine_failure_is_an_unbilled_inference_error(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    emu.configure(engine=_broken_engine)
    task = make_task()
    body = client.post(emu.url, json=[task]).json()
    (error,) = body["errors"]
    assert (error["code"], error["taskUUID"], error["status"]) == (
        "inferenceError",
        task["taskUUID"],
        "error",
    )
    assert emu.stats()["total_usd"] == 0


def test_an_engine_returning_the_wrong_shape_fails_the_result(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    emu.configure(engine=lambda rgb, mask, dilate, seed: rgb[:10])
    assert client.post(emu.url, json=[make_task()]).json()["errors"][0]["code"] == "inferenceError"


def test_inputs_over_4_megapixels_come_back_scaled_to_4_megapixels(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    width, height = 2400, 1800  # 4.3 MP
    inputs = {
        "image": to_data_uri(png_bytes(np.full((height, width, 3), 90, np.uint8))),
        "mask": to_data_uri(png_bytes(np.zeros((height, width), np.uint8))),
    }
    task = make_task(inputs=inputs, outputType="base64Data", includeCost=True)
    (item,) = client.post(emu.url, json=[task]).json()["data"]
    size = Image.open(io.BytesIO(base64.b64decode(item["imageBase64Data"]))).size
    assert size == output_size(width, height)
    assert size[0] * size[1] <= 4 * 1024 * 1024
    assert item["cost"] == 0.042  # 4 MP: $0.03 + 3 x $0.004


def test_conflict_can_be_an_idempotent_ack_instead(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    emu.configure(conflict_mode="ack")
    task = make_task(deliveryMethod="async")
    first = client.post(emu.url, json=[task]).json()
    again = client.post(emu.url, json=[task])
    assert again.status_code == 200
    assert again.json() == first
    sync = make_task()
    first_sync = client.post(emu.url, json=[sync]).json()
    assert client.post(emu.url, json=[sync]).json() == first_sync
    emu.wait_idle()
    assert emu.stats()["tasks_accepted"] == 2
    assert emu.stats()["results_billed"] == 2


def test_the_image_store_evicts_the_oldest_images_over_its_byte_budget(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    first = client.post(emu.url, json=[make_task(outputFormat="PNG")]).json()["data"][0]
    size = len(client.get(first["imageURL"]).content)
    emu.configure(store_max_bytes=size + size // 2, store_spill=False)
    second = client.post(emu.url, json=[make_task(outputFormat="PNG")]).json()["data"][0]
    assert client.get(first["imageURL"]).status_code == 404
    assert client.get(second["imageURL"]).status_code == 200
    assert emu.stats()["images_stored"] == 1


def test_images_past_the_memory_budget_spill_to_disk_and_still_expire_with_their_ttl(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    # Issue 16: a 100k-row dry run kept every image in memory. Past the budget they spill.
    first = client.post(emu.url, json=[make_task(outputFormat="PNG", ttl=60)]).json()["data"][0]
    size = len(client.get(first["imageURL"]).content)
    emu.configure(store_max_bytes=size + size // 2)
    later = [
        client.post(emu.url, json=[make_task(outputFormat="PNG", ttl=3600)]).json()["data"][0]
        for _ in range(3)
    ]
    stats = emu.stats()
    assert stats["images_stored"] == 4
    assert stats["images_stored_bytes"] <= size + size // 2  # in memory: within the budget
    assert stats["images_spilled_bytes"] >= 2 * size  # the older ones went to disk
    for item in [first, *later]:  # every image is still served, from memory or disk
        assert client.get(item["imageURL"]).content[:4] == b"\x89PNG"
    emu.advance_clock(61)  # the first one's ttl is over: gone, from disk too
    assert client.get(first["imageURL"]).status_code == 404
    assert client.get(later[0]["imageURL"]).status_code == 200
    emu.configure(store_max_disk_bytes=size)  # a disk budget: the oldest files go first
    client.post(emu.url, json=[make_task(outputFormat="PNG")])
    assert emu.stats()["images_spilled_bytes"] <= size
    assert client.get(later[0]["imageURL"]).status_code == 404


def test_inline_results_are_read_back_from_the_store_and_not_kept_in_the_task(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    task = make_task(outputType="base64Data", deliveryMethod="async")
    client.post(emu.url, json=[task])
    emu.wait_idle()
    (polled,) = poll(client, emu.url, task["taskUUID"]).json()["data"]
    assert base64.b64decode(polled["imageBase64Data"])[:3] == b"\xff\xd8\xff"
    record = emu.backend.tasks[task["taskUUID"]]
    assert record.spec is None  # the inline inputs are not kept once the task is done
    assert "imageBase64Data" not in record.generations[0].item
    emu.advance_clock(8 * 24 * 3600)  # past the default lifetime: the bytes are gone
    (polled,) = poll(client, emu.url, task["taskUUID"]).json()["data"]
    assert polled["status"] == "success"
    assert "imageBase64Data" not in polled


def test_get_response_of_an_upload_task_repeats_its_result(
    emu: EmulatorServer, client: httpx.Client, image_uri: str
) -> None:
    upload = {"taskType": "imageUpload", "taskUUID": "0b7c3f8a-1d2e-4c5b-9a6f-7e8d9c0b1a2f"}
    (item,) = client.post(emu.url, json=[{**upload, "image": image_uri}]).json()["data"]
    (polled,) = poll(client, emu.url, upload["taskUUID"]).json()["data"]
    assert polled == {**item, "status": "success"}

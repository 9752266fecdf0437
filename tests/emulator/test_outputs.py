"""Every outputType and outputFormat, outputQuality, numberResults, costs, safety, ttl, switches."""

from __future__ import annotations

import base64
import io

import httpx
import numpy as np
import pytest
from PIL import Image

from prefect_flux_erase.emulator import EmulatorServer
from prefect_flux_erase.runware.media import to_data_uri
from tests.fixtures.emulator_requests import SIZE, TaskFactory, png_bytes, poll, square_mask

MAGIC = {"JPG": b"\xff\xd8\xff", "PNG": b"\x89PNG", "WEBP": b"RIFF"}
MIME = {"JPG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
FIELDS = {"URL": "imageURL", "base64Data": "imageBase64Data", "dataURI": "imageDataURI"}


def _bytes(client: httpx.Client, item: dict[str, str], output_type: str, fmt: str) -> bytes:
    value = item[FIELDS[output_type]]
    if output_type == "URL":
        return client.get(value).content
    if output_type == "dataURI":
        prefix = f"data:{MIME[fmt]};base64,"
        assert value.startswith(prefix)
        value = value[len(prefix) :]
    return base64.b64decode(value)


@pytest.mark.parametrize("output_type", ["URL", "base64Data", "dataURI"])
@pytest.mark.parametrize("fmt", ["JPG", "PNG", "WEBP"])
def test_every_output_type_and_format(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory, output_type: str, fmt: str
) -> None:
    task = make_task(outputType=output_type, outputFormat=fmt)
    (item,) = client.post(emu.url, json=[task]).json()["data"]
    assert set(FIELDS.values()) & set(item) == {FIELDS[output_type]}
    data = _bytes(client, item, output_type, fmt)
    assert data.startswith(MAGIC[fmt])
    assert Image.open(io.BytesIO(data)).size == (SIZE, SIZE)


def test_the_echo_engine_fills_the_mask_and_keeps_the_rest(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    task = make_task(outputFormat="PNG", outputType="base64Data", settings={"dilatePixels": 0})
    (item,) = client.post(emu.url, json=[task]).json()["data"]
    out = np.asarray(Image.open(io.BytesIO(base64.b64decode(item["imageBase64Data"]))))
    assert np.abs(out[100:140, 100:140].astype(int) - 180).max() <= 2  # the black square is gone
    assert (out[:90] == 180).all()  # far from the mask: untouched


def test_output_quality_changes_the_jpeg(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory, mask_uri: str
) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    inputs = {"image": to_data_uri(png_bytes(noise)), "mask": mask_uri}
    sizes = []
    for quality in (20, 99):
        task = make_task(inputs=inputs, outputType="base64Data", outputQuality=quality)
        item = client.post(emu.url, json=[task]).json()["data"][0]
        sizes.append(len(base64.b64decode(item["imageBase64Data"])))
    assert sizes[0] < sizes[1] / 2


def test_number_results_gives_distinct_images_each_with_its_own_seed(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    emu.configure(emit_seed=True, emit_result_index=True)
    task = make_task(numberResults=3, outputType="base64Data", outputFormat="PNG")
    items = client.post(emu.url, json=[task]).json()["data"]
    assert len(items) == 3
    assert len({i["imageUUID"] for i in items}) == 3
    assert len({i["seed"] for i in items}) == 3
    assert [i["resultIndex"] for i in items] == [0, 1, 2]
    assert len({i["imageBase64Data"] for i in items}) == 3  # the seeds change the fill
    assert emu.stats()["billed"][task["taskUUID"]]["count"] == 3


def test_seed_and_result_index_are_off_by_default(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    (item,) = client.post(emu.url, json=[make_task()]).json()["data"]
    assert "seed" not in item
    assert "resultIndex" not in item


@pytest.mark.parametrize(("include", "expected"), [(True, 0.03), (False, None), (None, None)])
def test_include_cost(
    emu: EmulatorServer,
    client: httpx.Client,
    make_task: TaskFactory,
    include: bool | None,
    expected: float | None,
) -> None:
    task = make_task() if include is None else make_task(includeCost=include)
    (item,) = client.post(emu.url, json=[task]).json()["data"]
    assert item.get("cost") == expected
    assert emu.stats()["total_usd"] == 0.03  # billed whether or not the cost is shown


def test_cost_rounds_up_to_whole_megapixels_and_can_charge_the_reference(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    big = np.zeros((1024, 1025, 3), np.uint8)
    inputs = {
        "image": to_data_uri(png_bytes(big)),
        "mask": to_data_uri(png_bytes(np.zeros((1024, 1025), np.uint8))),
    }
    (item,) = client.post(emu.url, json=[make_task(inputs=inputs, includeCost=True)]).json()["data"]
    assert item["cost"] == 0.034
    emu.configure(charge_reference_image=True)
    (item,) = client.post(emu.url, json=[make_task(includeCost=True)]).json()["data"]
    assert item["cost"] == 0.034


@pytest.mark.parametrize(
    ("safety", "flag"),
    [({"checkContent": True}, False), ({"mode": "fast"}, False), ({"mode": "none"}, None)],
)
def test_safety_reports_nsfw_content_false_when_enabled(
    emu: EmulatorServer,
    client: httpx.Client,
    make_task: TaskFactory,
    safety: dict[str, object],
    flag: bool | None,
) -> None:
    (item,) = client.post(emu.url, json=[make_task(safety=safety)]).json()["data"]
    assert item.get("NSFWContent", None) is flag


def test_url_expires_after_ttl(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    (item,) = client.post(emu.url, json=[make_task(ttl=60)]).json()["data"]
    assert client.get(item["imageURL"]).status_code == 200
    emu.advance_clock(59)
    assert client.get(item["imageURL"]).status_code == 200
    emu.advance_clock(2)
    assert client.get(item["imageURL"]).status_code == 404


def test_url_lives_seven_days_without_ttl(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    (item,) = client.post(emu.url, json=[make_task()]).json()["data"]
    emu.advance_clock(7 * 24 * 3600 - 60)
    assert client.get(item["imageURL"]).status_code == 200
    client.post(f"{emu.root}/_emulator/clock", json={"advance": 120})
    assert client.get(item["imageURL"]).status_code == 404


def test_poll_items_can_echo_get_response_as_task_type(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    emu.configure(poll_task_type="getResponse", ack_status=True)
    task = make_task(deliveryMethod="async")
    (ack,) = client.post(emu.url, json=[task]).json()["data"]
    assert ack["status"] == "processing"
    emu.wait_idle()
    (item,) = poll(client, emu.url, task["taskUUID"]).json()["data"]
    assert (item["taskType"], item["status"]) == ("getResponse", "success")


def test_dry_run_prices_without_running_or_billing(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    task = make_task(numberResults=2)
    reply = client.post(emu.url, json=[task], headers={"X-Runware-Dry-Run": "1"})
    assert reply.status_code == 200
    assert reply.json() == {
        "data": [{"taskType": "imageInference", "taskUUID": task["taskUUID"], "cost": 0.06}]
    }
    stats = emu.stats()
    assert (stats["tasks_accepted"], stats["total_usd"], stats["dry_runs"]) == (0, 0, 1)
    # Nothing was created: the same task can really run afterwards.
    assert "imageURL" in client.post(emu.url, json=[task]).json()["data"][0]


def test_dry_run_can_be_switched_off(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    emu.configure(dry_run_supported=False)
    task = make_task()
    reply = client.post(emu.url, json=[task], headers={"X-Runware-Dry-Run": "1"})
    assert "imageURL" in reply.json()["data"][0]
    assert emu.stats()["total_usd"] == 0.03


def test_insufficient_credits_is_402_and_not_accepted(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    emu.configure(balance_usd=0.05)
    assert client.post(emu.url, json=[make_task()]).status_code == 200
    reply = client.post(emu.url, json=[make_task()])
    assert reply.status_code == 402
    assert reply.json()["errors"][0]["code"] == "insufficientCredits"
    assert emu.stats()["tasks_accepted"] == 1


def test_sync_window_exceeded_is_504_timeout_provider_and_the_task_still_finishes(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    import threading

    gate = threading.Event()
    emu.configure(sync_timeout=0.05, engine=lambda rgb, mask, dilate, seed: gate.wait(30) and rgb)
    task = make_task()
    reply = client.post(emu.url, json=[task])
    gate.set()
    assert reply.status_code == 504
    assert reply.json()["errors"][0]["code"] == "timeoutProvider"
    emu.wait_idle()
    (item,) = poll(client, emu.url, task["taskUUID"]).json()["data"]
    assert item["status"] == "success"
    assert emu.stats()["billed"][task["taskUUID"]]["count"] == 1


def test_image_download_of_unknown_uuid_is_404(emu: EmulatorServer, client: httpx.Client) -> None:
    reply = client.get(f"{emu.root}/image/0b7c3f8a-1d2e-4c5b-9a6f-7e8d9c0b1a2f.jpg")
    assert reply.status_code == 404


def test_mask_input_is_binary_white_erases(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory, image_uri: str
) -> None:
    grey = square_mask() // 2  # 127: below the 50 % threshold, so nothing to erase
    task = make_task(
        inputs={"image": image_uri, "mask": to_data_uri(png_bytes(grey))},
        outputFormat="PNG",
        outputType="base64Data",
    )
    (item,) = client.post(emu.url, json=[task]).json()["data"]
    out = np.asarray(Image.open(io.BytesIO(base64.b64decode(item["imageBase64Data"]))))
    assert (out[100:140, 100:140] == 0).all()

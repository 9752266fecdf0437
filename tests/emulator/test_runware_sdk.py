"""The official Python SDK (``runware-sdk``), unmodified, pointed at the emulator over loopback.

Issue #2 asks that a third-party Runware REST client work against the emulator unchanged;
``test_sdk_compat`` mirrors the SDK's rules by hand, this runs the SDK itself: its REST
transport, its async polling, its error parsing and its retry of 5xx answers.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from runware import Runware
from runware import RunwareError as SdkError

from prefect_flux_erase.emulator import EmulatorServer
from tests.fixtures.emulator_requests import API_KEY


def _sdk(emu: EmulatorServer) -> Runware:
    # Only the base URL changes; retry_delay is shortened so the fault test runs fast.
    return Runware(api_key=API_KEY, transport="rest", http_base_url=emu.url, retry_delay=10)


def _task(image_uri: str, mask_uri: str, **options: Any) -> dict[str, Any]:
    return {
        "taskType": "imageInference",
        "model": "bfl:flux@erase",
        "inputs": {"image": image_uri, "mask": mask_uri},
        **options,
    }


@pytest.mark.parametrize("delivery", ["sync", "async"])
def test_the_official_sdk_runs_flux_erase_against_the_emulator(
    emu: EmulatorServer, image_uri: str, mask_uri: str, delivery: str
) -> None:
    emu.configure(api_keys=frozenset({API_KEY}), latency=(0.0, 0.05))
    task = _task(
        image_uri,
        mask_uri,
        deliveryMethod=delivery,
        numberResults=2,
        includeCost=True,
        outputFormat="PNG",
        settings={"dilatePixels": 10},
    )

    async def run() -> list[dict[str, Any]]:
        async with _sdk(emu) as sdk:
            return await sdk.run(task)

    items = asyncio.run(run())
    assert len({i["imageUUID"] for i in items}) == 2
    (task_uuid,) = {i["taskUUID"] for i in items}
    for item in items:
        assert item["cost"] == 0.03
        image = httpx.get(item["imageURL"], timeout=10, trust_env=False)
        assert image.content.startswith(b"\x89PNG")
    stats = emu.stats()
    assert stats["billed"] == {task_uuid: {"count": 2, "usd": 0.06}}
    assert ("getResponse" in stats["requests_by_task_type"]) is (delivery == "async")


def test_the_official_sdk_retries_a_503_and_reads_a_validation_error(
    emu: EmulatorServer, image_uri: str, mask_uri: str
) -> None:
    emu.configure(api_keys=frozenset({API_KEY}))
    emu.script_faults(["http_503"])

    async def run() -> tuple[list[dict[str, Any]], SdkError]:
        async with _sdk(emu) as sdk:
            items = await sdk.run(_task(image_uri, mask_uri, deliveryMethod="sync"))
            with pytest.raises(SdkError) as info:
                await sdk.run(_task(image_uri, mask_uri, taskUUID=str(uuid.uuid4()), ttl=30))
            return items, info.value

    items, error = asyncio.run(run())
    assert len(items) == 1
    assert emu.stats()["faults"] == {"http_503": 1}
    assert emu.stats()["results_billed"] == 1
    assert error.parameter == "ttl"
    assert error.retryable is False

"""A third-party client, speaking the wire protocol exactly as runware-sdk does, works unchanged.

(``test_runware_sdk`` runs the SDK itself; this one keeps the rules visible and dependency-free.)

This mirrors runware-sdk 1.8.0's REST path (RUNWARE_API §1, §3, §4): Bearer auth, a JSON array
body, ``deliveryMethod: async``, then ``getResponse`` polls; a body with an ``errors`` or
``error`` key is a failure; an item is final when ``status == "success"`` or any key ending in
``URL``/``Base64Data``/``DataURI`` is set; items are deduplicated by ``resultIndex``, then
``imageUUID``, then ``taskUUID``; it stops when ``numberResults`` distinct items are final.
"""

from __future__ import annotations

import platform
import threading
import uuid
from typing import Any

import httpx

from prefect_flux_erase.emulator import EmulatorServer
from tests.fixtures.emulator_requests import API_KEY

USER_AGENT = (
    f"runware-python/1.8.0 (python/{platform.python_version()}; "
    f"{platform.system()} {platform.machine()}) schemas/1.8.0"
)


def _extract_items(body: Any) -> list[dict[str, Any]]:
    if isinstance(body, dict) and ("errors" in body or "error" in body):
        raise RuntimeError(f"API error: {body}")
    if isinstance(body, list):
        return body
    data = body.get("data", [])
    return data if isinstance(data, list) else [data]


def _is_terminal(item: dict[str, Any]) -> bool:
    if item.get("status") == "success":
        return True
    return any(
        k.endswith(("URL", "Base64Data", "DataURI")) and v is not None for k, v in item.items()
    )


def _dedupe_key(item: dict[str, Any]) -> str:
    for key in ("resultIndex", "imageUUID", "taskUUID"):
        if item.get(key) is not None:
            return f"{key}:{item[key]}"
    return ""


def test_runware_sdk_style_async_polling_client_works_unchanged(
    emu: EmulatorServer, image_uri: str, mask_uri: str
) -> None:
    emu.configure(latency=(0.0, 0.05), api_keys={API_KEY})
    headers = {
        "Authorization": f"Bearer {API_KEY}",
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }
    task_uuid = str(uuid.uuid4())
    request = {
        "taskType": "imageInference",
        "taskUUID": task_uuid,
        "model": "bfl:flux@erase",
        "deliveryMethod": "async",
        "inputs": {"image": image_uri, "mask": mask_uri},
        "settings": {"dilatePixels": 10},
        "outputType": "URL",
        "outputFormat": "PNG",
        "numberResults": 2,
        "includeCost": True,
    }
    with httpx.Client(base_url=emu.url, headers=headers, timeout=30, trust_env=False) as http:
        ack = _extract_items(http.post("", json=[request]).json())
        assert [i["taskUUID"] for i in ack] == [task_uuid]

        collected: dict[str, dict[str, Any]] = {}
        waiter = threading.Event()
        for _ in range(400):
            reply = http.post("", json=[{"taskType": "getResponse", "taskUUID": task_uuid}])
            for item in _extract_items(reply.json()):
                if item.get("taskUUID") == task_uuid and _is_terminal(item):
                    collected.setdefault(_dedupe_key(item), item)
            if len(collected) >= 2:
                break
            waiter.wait(0.01)
        assert len(collected) == 2
        for item in collected.values():
            image = http.get(item["imageURL"])
            assert image.status_code == 200
            assert image.content.startswith(b"\x89PNG")
            assert item["cost"] == 0.03
    assert emu.stats()["total_usd"] == 0.06

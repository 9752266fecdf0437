"""`FluxEraseTrigger` against the emulator over HTTP: round trip, success, a failed task, a
deadline, a bad connection."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from airflow.triggers.base import TriggerEvent

from prefect_flux_erase.airflow.triggers import FluxEraseTrigger
from prefect_flux_erase.runware.config import RunwareConfig
from prefect_flux_erase.runware.ids import task_uuid
from prefect_flux_erase.runware.media import to_data_uri
from prefect_flux_erase.runware.options import EraseOptions
from tests.airflow.conftest import CANARY_KEY
from tests.fixtures.builders import mask_bytes, photo_bytes


def _events(trigger: FluxEraseTrigger) -> list[TriggerEvent]:
    async def collect() -> list[TriggerEvent]:
        return [event async for event in trigger.run()]

    return asyncio.run(collect())


def _submit(emu: Any, name: str) -> str:
    """Submit one async task straight to the emulator (as the operator does before deferring)."""
    task = EraseOptions(include_cost=True).to_task(
        task_uuid("trigger-test", name),
        image=to_data_uri(photo_bytes(3)),
        mask=to_data_uri(mask_bytes()),
        overrides={"deliveryMethod": "async"},
    )

    async def send() -> str:
        async with RunwareConfig(api_key=CANARY_KEY, base_url=emu.url).open_client() as client:
            outcome = (await client.submit([task]))[task.task_uuid]
        assert outcome.state == "accepted"
        return task.task_uuid

    return asyncio.run(send())


def test_serialize_round_trips_through_the_class_path() -> None:
    trigger = FluxEraseTrigger(
        "3f9a3c3e-2b7e-4a51-9d1b-6d6f0a2f8e11",
        flux_erase_conn_id="other",
        deadline=1234.5,
        attempt=2,
        poll_interval=0.25,
    )
    path, kwargs = trigger.serialize()
    module, _, name = path.rpartition(".")
    rebuilt = getattr(__import__(module, fromlist=[name]), name)(**json.loads(json.dumps(kwargs)))
    assert rebuilt.serialize() == (path, kwargs)
    assert kwargs["attempt"] == 2
    assert kwargs["flux_erase_conn_id"] == "other"


def test_a_finished_task_fires_success_with_urls_and_cost_never_bytes(
    emu: Any, flux_conn: str
) -> None:
    emu.configure(latency=0.3)
    uuid = _submit(emu, "success")

    events = _events(FluxEraseTrigger(uuid, deadline=time.time() + 30, poll_interval=0.05))

    assert len(events) == 1
    event = events[0].payload
    assert (event["status"], event["task_uuid"], event["error_code"]) == ("success", uuid, None)
    (result,) = event["results"]
    assert result["image_url"].startswith(emu.root)
    assert result["cost"] > 0
    assert result["inline"] is False
    assert len(json.dumps(event)) < 1000  # small: it is stored in the metadata database
    assert CANARY_KEY not in json.dumps(event)
    assert emu.stats()["results_billed"] == 1


def test_a_task_the_provider_fails_fires_failed_with_its_code_as_retryable(
    emu: Any, flux_conn: str
) -> None:
    emu.script_faults(["timeout_provider"])
    uuid = _submit(emu, "provider-timeout")

    (event,) = _events(FluxEraseTrigger(uuid, deadline=time.time() + 30, poll_interval=0.05))

    assert event.payload["status"] == "failed"
    assert event.payload["error_code"] == "timeoutProvider"
    assert event.payload["retryable"] is True
    assert event.payload["permanent"] is False
    assert emu.stats()["results_billed"] == 0


def test_the_deadline_fires_timeout_and_the_task_is_collected_later_billed_once(
    emu: Any, flux_conn: str
) -> None:
    emu.configure(latency=1.5)
    uuid = _submit(emu, "slow")

    (early,) = _events(FluxEraseTrigger(uuid, deadline=time.time() + 0.2, poll_interval=0.05))
    (late,) = _events(FluxEraseTrigger(uuid, deadline=time.time() + 30, poll_interval=0.05))

    assert (early.payload["status"], early.payload["error_code"]) == ("timeout", "pollTimeout")
    assert early.payload["retryable"] is False
    assert late.payload["status"] == "success"
    assert emu.stats()["results_billed"] == 1


def test_a_connection_without_a_key_fires_a_permanent_failure(
    emu: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_FLUX_ERASE_NOKEY", json.dumps({"conn_type": "flux_erase", "host": emu.url})
    )
    trigger = FluxEraseTrigger(
        task_uuid("x", "y"), flux_erase_conn_id="flux_erase_nokey", deadline=time.time() + 5
    )

    (event,) = _events(trigger)

    assert (event.payload["status"], event.payload["error_code"]) == ("failed", "missingApiKey")
    assert event.payload["permanent"] is True
    assert emu.stats()["requests_total"] == 0

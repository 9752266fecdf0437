"""Webhooks (one POST per result, retried with backoff) and uploadEndpoint PUTs."""

from __future__ import annotations

import json

import httpx
import pytest

from prefect_flux_erase.emulator import EmulatorServer
from tests.fixtures.emulator_requests import Receiver, TaskFactory


@pytest.fixture
def fast_webhooks(emu: EmulatorServer) -> EmulatorServer:
    emu.configure(webhook_backoff=0.01, webhook_backoff_max=0.02, webhook_timeout=5)
    return emu


def test_one_flat_webhook_post_per_result(
    fast_webhooks: EmulatorServer, client: httpx.Client, make_task: TaskFactory, receiver: Receiver
) -> None:
    emu = fast_webhooks
    task = make_task(
        deliveryMethod="async", numberResults=2, webhookURL=f"{receiver.url}/hook?token=t"
    )
    assert client.post(emu.url, json=[task]).status_code == 200
    emu.wait_idle()
    posts = receiver.wait_for(2)
    assert [(method, path) for method, path, _, _ in posts] == [("POST", "/hook?token=t")] * 2
    bodies = [json.loads(body) for *_, body in posts]
    assert {b["taskUUID"] for b in bodies} == {task["taskUUID"]}
    assert len({b["imageUUID"] for b in bodies}) == 2
    assert all(b["imageURL"].startswith(emu.root) for b in bodies)
    assert emu.stats()["webhooks"] == {"delivered": 2, "failed": 0, "attempts": 2}


def test_webhook_body_can_be_wrapped_in_data(
    fast_webhooks: EmulatorServer, client: httpx.Client, make_task: TaskFactory, receiver: Receiver
) -> None:
    fast_webhooks.configure(webhook_body="wrapped")
    task = make_task(webhookURL=f"{receiver.url}/hook")
    client.post(fast_webhooks.url, json=[task])
    fast_webhooks.wait_idle()
    (body,) = [json.loads(b) for *_, b in receiver.wait_for(1)]
    assert list(body) == ["data"]
    assert body["data"][0]["taskUUID"] == task["taskUUID"]


def test_webhook_is_retried_on_500_until_delivered(
    fast_webhooks: EmulatorServer, client: httpx.Client, make_task: TaskFactory, receiver: Receiver
) -> None:
    receiver.statuses = [500, 500]
    task = make_task(deliveryMethod="async", webhookURL=f"{receiver.url}/hook")
    client.post(fast_webhooks.url, json=[task])
    fast_webhooks.wait_idle()
    posts = receiver.wait_for(3)
    assert len(posts) == 3
    assert len({body for *_, body in posts}) == 1  # the same body each time
    assert fast_webhooks.stats()["webhooks"] == {"delivered": 1, "failed": 0, "attempts": 3}


@pytest.mark.parametrize("status", [500, 503, 429, 404, 301])
def test_webhook_retries_any_non_2xx_with_growing_jittered_backoff(
    emu: EmulatorServer,
    client: httpx.Client,
    make_task: TaskFactory,
    receiver: Receiver,
    status: int,
) -> None:
    # Nominal waits 0.02, 0.04, 0.08 s; the jitter keeps each in [nominal/2, nominal], so the
    # ranges do not overlap and the chosen waits must grow.
    emu.configure(webhook_backoff=0.02, webhook_backoff_max=0.08, webhook_attempts=6)
    receiver.statuses = [status] * 3
    client.post(emu.url, json=[make_task(webhookURL=f"{receiver.url}/hook")])
    emu.wait_idle()
    assert len(receiver.wait_for(4)) == 4
    stats = emu.stats()
    assert stats["webhooks"] == {"delivered": 1, "failed": 0, "attempts": 4}
    waits = stats["webhook_retry_delays"]
    assert len(waits) == 3
    for wait, nominal in zip(waits, (0.02, 0.04, 0.08), strict=True):
        assert nominal / 2 <= wait <= nominal
    assert waits == sorted(waits)


def test_webhook_gives_up_after_the_configured_attempts(
    fast_webhooks: EmulatorServer, client: httpx.Client, make_task: TaskFactory, receiver: Receiver
) -> None:
    fast_webhooks.configure(webhook_attempts=3)
    receiver.statuses = [503, 503, 503, 503]
    client.post(fast_webhooks.url, json=[make_task(webhookURL=f"{receiver.url}/hook")])
    fast_webhooks.wait_idle()
    assert len(receiver.requests) == 3
    assert fast_webhooks.stats()["webhooks"] == {"delivered": 0, "failed": 1, "attempts": 3}
    # A failed webhook does not undo the result: it is still billed once.
    assert fast_webhooks.stats()["results_billed"] == 1


def test_a_failed_generation_posts_its_error_object(
    fast_webhooks: EmulatorServer, client: httpx.Client, make_task: TaskFactory, receiver: Receiver
) -> None:
    fast_webhooks.script_faults(["timeout_provider"])
    task = make_task(deliveryMethod="async", webhookURL=f"{receiver.url}/hook")
    client.post(fast_webhooks.url, json=[task])
    fast_webhooks.wait_idle()
    (body,) = [json.loads(b) for *_, b in receiver.wait_for(1)]
    assert body["status"] == "error"
    assert body["code"] == "timeoutProvider"
    assert body["taskUUID"] == task["taskUUID"]


def test_upload_endpoint_gets_the_raw_bytes_before_the_sync_reply(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory, receiver: Receiver
) -> None:
    put_url = f"{receiver.url}/bucket/out.png?X-Amz-Signature=abc"
    task = make_task(outputFormat="PNG", uploadEndpoint=put_url)
    (item,) = client.post(emu.url, json=[task]).json()["data"]
    # No waiting: the PUT finished before the reply was sent.
    assert len(receiver.requests) == 1
    method, path, headers, body = receiver.requests[0]
    assert (method, path) == ("PUT", "/bucket/out.png?X-Amz-Signature=abc")
    assert headers["Content-Type"] == "image/png"
    assert body == client.get(item["imageURL"]).content
    assert set(item) == {"taskType", "taskUUID", "imageUUID", "imageURL"}
    assert emu.stats()["uploads"]["endpoint_put"] == 1


def test_upload_endpoint_failure_fails_the_result_unbilled(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory, receiver: Receiver
) -> None:
    receiver.statuses = [403]
    task = make_task(uploadEndpoint=f"{receiver.url}/out.jpg?X-Amz-Signature=SECRET")
    body = client.post(emu.url, json=[task]).json()
    (error,) = body["errors"]
    assert error["code"] == "uploadFailed"
    assert "403" in error["message"]
    assert "SECRET" not in error["message"]
    stats = emu.stats()
    assert stats["uploads"]["endpoint_put_failed"] == 1
    assert stats["total_usd"] == 0


def test_upload_endpoint_failure_can_be_ignored(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory, receiver: Receiver
) -> None:
    emu.configure(upload_failure="ignore")
    receiver.statuses = [500]
    task = make_task(uploadEndpoint=f"{receiver.url}/out.jpg")
    (item,) = client.post(emu.url, json=[task]).json()["data"]
    assert "imageURL" in item
    assert emu.stats()["total_usd"] == 0.03

"""Faults over real loopback HTTP: transient ones are retried to success with one charge per
result; permanent ones are not retried; lost answers are recovered through conflictTaskUUID."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from PIL import Image

from prefect_flux_erase.emulator import FAULT_KINDS, EmulatorServer
from prefect_flux_erase.engine.imageio import decode_image
from prefect_flux_erase.errors import is_transient_status
from prefect_flux_erase.runware.client import RunwareClient
from prefect_flux_erase.runware.errors import (
    AuthenticationError,
    ConflictTaskUUIDError,
    InsufficientCreditsError,
    PermanentError,
    RunwareError,
    TaskNotFoundError,
    TransientError,
)
from prefect_flux_erase.runware.ids import task_uuid
from prefect_flux_erase.runware.media import to_data_uri
from prefect_flux_erase.runware.models import ImageInferenceTask
from prefect_flux_erase.runware.responses import ResultItem
from prefect_flux_erase.runware.retry_policy import RetryPolicy
from tests.fixtures.runware_client import FAST_RETRY, PHOTO_SIZE, Receiver

MakeTask = Callable[..., ImageInferenceTask]
NewClient = Callable[..., RunwareClient]
# The client's timeout must be shorter than the emulator's 'slow' fault for that fault to bite.
SLOW = {"slow_delay": 0.6}
CLIENT_TIMEOUT = 0.3


def _charges(emu: EmulatorServer) -> dict[str, int]:
    return {uuid: entry["count"] for uuid, entry in emu.stats()["billed"].items()}


@pytest.mark.parametrize("delivery", ["sync", "async"])
@pytest.mark.parametrize("fault", FAULT_KINDS)
async def test_each_submit_fault_is_retried_to_success_with_one_charge_per_result(
    emu: EmulatorServer, new_client: NewClient, make_task: MakeTask, fault: str, delivery: str
) -> None:
    emu.configure(retry_after=0.01, fault_targets=frozenset({"submit"}), **SLOW)
    emu.script_faults([fault])
    task = make_task(deliveryMethod=delivery, numberResults=2)
    async with new_client(timeout=CLIENT_TIMEOUT) as client:
        items = await client.run(task)
        assert client.stats.retries >= 1
    assert emu.stats()["faults"] == {fault: 1}
    assert len({i.image_uuid for i in items}) == 2
    charges = _charges(emu)
    assert sum(charges.values()) == 2  # one charge per result, whatever the fault
    assert charges == {items[0].task_uuid: 2}


@pytest.mark.parametrize("fault", [f for f in FAULT_KINDS if f != "timeout_provider"])
async def test_each_poll_fault_is_retried_to_success_with_one_charge_per_result(
    emu: EmulatorServer, new_client: NewClient, make_task: MakeTask, fault: str
) -> None:
    emu.configure(retry_after=0.01, fault_targets=frozenset({"getResponse"}), **SLOW)
    emu.script_faults([fault])
    task = make_task(deliveryMethod="async", numberResults=2)
    async with new_client(timeout=CLIENT_TIMEOUT) as client:
        items = await client.run(task)
        assert client.stats.retries == 1
    assert emu.stats()["faults"] == {fault: 1}
    assert len(items) == 2
    assert _charges(emu) == {task.task_uuid: 2}


@pytest.mark.parametrize(
    "fault", [f for f in FAULT_KINDS if f not in ("timeout_provider", "malformed_json")]
)
async def test_each_download_fault_is_retried_to_the_right_bytes(
    emu: EmulatorServer, new_client: NewClient, make_task: MakeTask, fault: str
) -> None:
    emu.configure(retry_after=0.01, fault_targets=frozenset({"download"}), **SLOW)
    async with new_client(timeout=CLIENT_TIMEOUT) as client:
        (item,) = await client.run(make_task(outputType="URL", outputFormat="PNG"))
        emu.script_faults([fault])
        # Count the download's retries alone: on a loaded machine the run before it may
        # retry a slow request of its own.
        before = client.stats.retries
        data = await client.fetch_output(item)
        assert client.stats.retries - before == 1
    assert emu.stats()["faults"] == {fault: 1}
    assert decode_image(data).size == PHOTO_SIZE


async def test_reset_after_processing_is_recovered_through_conflict_without_second_charge(
    emu: EmulatorServer, new_client: NewClient, make_task: MakeTask
) -> None:
    emu.script_faults(["reset_after"])
    task = make_task(deliveryMethod="sync")
    async with new_client() as client:
        submitted = (await client.submit([task]))[task.task_uuid]
        assert submitted.state == "conflict"
        assert isinstance(submitted.error, ConflictTaskUUIDError)
        assert submitted.requests == 2  # the lost answer, then the conflicting resend
        polled = (await client.poll({task.task_uuid: 1}))[task.task_uuid]
    assert polled.state == "done"
    assert polled.results[0].task_uuid == task.task_uuid
    stats = emu.stats()
    assert (stats["conflicts"], stats["faults"]) == (1, {"reset_after": 1})
    assert _charges(emu) == {task.task_uuid: 1}


async def test_a_rerun_after_a_crash_collects_the_first_submission_without_paying_again(
    emu: EmulatorServer, new_client: NewClient, make_task: MakeTask
) -> None:
    task = make_task(deliveryMethod="async", numberResults=2)
    async with new_client() as first:
        assert (await first.submit([task]))[task.task_uuid].state == "accepted"
    # A new process, same deterministic taskUUID: it must not be charged a second time.
    async with new_client() as second:
        items = await second.run(task)
    assert {i.task_uuid for i in items} == {task.task_uuid}
    assert len(items) == 2
    assert _charges(emu) == {task.task_uuid: 2}


async def test_timeout_provider_reruns_under_a_derived_uuid_and_bills_only_the_rerun(
    emu: EmulatorServer, new_client: NewClient, make_task: MakeTask
) -> None:
    emu.script_faults(["timeout_provider"])
    task = make_task(deliveryMethod="async")
    async with new_client() as client:
        (item,) = await client.run(task)
    assert item.task_uuid == task_uuid(task.task_uuid, "rerun", 2)
    assert _charges(emu) == {item.task_uuid: 1}


@pytest.mark.parametrize(("header", "expected"), [("0.2", 0.2), ("0.35", 0.35), ("1", 1.0)])
async def test_retry_after_decides_the_delay_the_client_chooses(
    emu: EmulatorServer, new_client: NewClient, make_task: MakeTask, header: str, expected: float
) -> None:
    emu.configure(retry_after=float(header))
    emu.script_faults(["http_429"])
    async with new_client() as client:
        await client.run(make_task())
        (event,) = client.stats.retry_events
    assert (event.retry_after, event.delay, event.http_status) == (expected, expected, 429)
    assert list(client.stats.retry_delays) == [expected]
    assert FAST_RETRY.backoff(0) < expected  # so the delay came from the header


async def test_retry_after_as_an_http_date_is_honoured(
    new_client: NewClient, make_task: MakeTask, receiver: Receiver
) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    task = make_task()
    body = (
        b'{"data": [{"taskType": "imageInference", "taskUUID": "'
        + task.task_uuid.encode()
        + b'", "imageUUID": "5c1e0b7a-8d44-4f0e-a3b2-1f6c9e2d7a90", "imageURL": "http://x/i.jpg"}]}'
    )
    receiver.replies = [
        (503, {"Retry-After": when, "Content-Type": "text/plain"}, b"busy"),
        (200, {"Content-Type": "application/json"}, body),
    ]
    # max_retry_after bounds the wait, so the test does not sleep 30 s; the event keeps the
    # server's value, which proves the date was read.
    policy = RetryPolicy(base=0.001, jitter=0.0, max_retry_after=0.05)
    async with new_client(base_url=receiver.url, retry_policy=policy) as client:
        outcome = (await client.submit([task]))[task.task_uuid]
        (event,) = client.stats.retry_events
    assert outcome.state == "done"
    assert event.retry_after is not None
    assert 20.0 < event.retry_after <= 30.0
    assert event.delay == 0.05


async def test_rate_limiting_shrinks_the_in_flight_window(
    emu: EmulatorServer, new_client: NewClient, make_task: MakeTask
) -> None:
    emu.configure(retry_after=0.01)
    emu.script_faults(["http_429"])
    async with new_client(max_connections=16) as client:
        assert client.limiter.window == 16
        await client.run(make_task())
        assert client.limiter.decreases == 1
        assert client.limiter.window == 8
        assert client.stats.rate_limited == 1


async def test_transient_faults_past_max_retries_leave_an_indefinite_failure(
    emu: EmulatorServer, new_client: NewClient, make_task: MakeTask
) -> None:
    emu.script_faults(["http_503"] * 4)
    task = make_task()
    policy = RetryPolicy(base=0.001, jitter=0.0, max_retries=2)
    async with new_client(retry_policy=policy) as client:
        outcome = (await client.submit([task]))[task.task_uuid]
    assert outcome.state == "failed"
    assert isinstance(outcome.error, TransientError)
    assert (outcome.error.http_status, outcome.requests, outcome.definite) == (503, 3, False)
    assert emu.stats()["requests_total"] == 3
    assert _charges(emu) == {}


def _png(size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("L", size, 255).save(buf, "PNG")
    return buf.getvalue()


async def test_a_permanent_task_error_is_not_retried(
    emu: EmulatorServer, new_client: NewClient, make_task: MakeTask
) -> None:
    task = make_task(
        inputs={"image": make_task().inputs.image, "mask": to_data_uri(_png((64, 64)))}
    )
    async with new_client() as client:
        outcome = (await client.submit([task]))[task.task_uuid]
        with pytest.raises(PermanentError) as info:
            await client.run(task)
    assert outcome.state == "failed"
    assert isinstance(outcome.error, PermanentError)
    assert (outcome.error.code, outcome.error.parameter) == ("invalidMaskDimensions", "inputs.mask")
    assert outcome.requests == 1
    assert info.value.code == "invalidMaskDimensions"
    assert emu.stats()["requests_total"] == 2  # one per call, no retries
    assert _charges(emu) == {}


async def test_an_invalid_api_key_is_one_request_and_an_authentication_error(
    emu: EmulatorServer, new_client: NewClient, make_task: MakeTask
) -> None:
    emu.configure(api_keys=frozenset({"rk-the-right-key"}))
    task = make_task()
    async with new_client(api_key="rk-a-wrong-key") as client:
        outcome = (await client.submit([task]))[task.task_uuid]
    assert isinstance(outcome.error, AuthenticationError)
    assert (outcome.state, outcome.error.http_status, outcome.requests) == ("failed", 401, 1)
    assert emu.stats()["requests_total"] == 1


async def test_insufficient_credits_is_not_retried(
    emu: EmulatorServer, new_client: NewClient, make_task: MakeTask
) -> None:
    emu.configure(balance_usd=0.0)
    async with new_client() as client:
        with pytest.raises(InsufficientCreditsError):
            await client.run(make_task())
    assert emu.stats()["requests_total"] == 1


async def test_polling_an_unknown_task_fails_it_without_retrying(
    emu: EmulatorServer, new_client: NewClient
) -> None:
    unknown = task_uuid("tests", "never-submitted")
    async with new_client() as client:
        outcome = (await client.poll({unknown: 1}))[unknown]
    assert outcome.state == "failed"
    assert isinstance(outcome.error, TaskNotFoundError)
    assert (outcome.error.code, outcome.requests) == ("taskFailedOrNotFound", 1)
    assert emu.stats()["requests_total"] == 1


async def test_a_sync_request_past_the_servers_window_is_collected_by_polling(
    emu: EmulatorServer, new_client: NewClient, make_task: MakeTask
) -> None:
    # RUNWARE_API §11 #8: the server gives up waiting (504) while the task keeps running.
    emu.configure(sync_timeout=0.05, latency=0.3)
    task = make_task(deliveryMethod="sync")
    async with new_client() as client:
        (item,) = await client.run(task)
        assert client.stats.statuses[504] == 1
    assert item.task_uuid == task.task_uuid
    assert _charges(emu) == {task.task_uuid: 1}


@pytest.mark.parametrize("status", [400, 404, 408, 409, 425, 429, 500, 501, 503])
async def test_the_client_retries_exactly_the_transient_statuses(
    new_client: NewClient, make_task: MakeTask, receiver: Receiver, status: int
) -> None:
    """Task requests and output downloads follow the package's one status rule, the one the
    storage stage retries use (425 included, as RFC 8470 asks)."""
    receiver.respond = lambda _: (status, {"Content-Type": "text/plain"}, b"not now")
    policy = RetryPolicy(base=0.001, cap=0.002, jitter=0.0, max_retries=2)
    expected = 3 if is_transient_status(status) else 1

    async with new_client(base_url=receiver.url, retry_policy=policy) as client:
        task = make_task()
        outcome = (await client.submit([task]))[task.task_uuid]
        posts = len(receiver.received)
        with pytest.raises(RunwareError) as download:
            await client.fetch_output(
                ResultItem.model_validate(
                    {"taskUUID": task.task_uuid, "imageURL": f"{receiver.url}/o.png"}
                )
            )

    assert outcome.state == "failed"
    assert outcome.error is not None
    assert (outcome.error.http_status, outcome.error.retryable) == (status, expected > 1)
    assert (posts, outcome.requests) == (expected, expected)
    assert download.value.retryable is (expected > 1)
    assert len(receiver.received) - posts == expected

"""Every reply variant of RUNWARE_API §9, through the emulator's switches where it has them and
otherwise as captured bodies served by a real loopback HTTP server."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from prefect_flux_erase.emulator import EmulatorServer
from prefect_flux_erase.runware.client import RunwareClient
from prefect_flux_erase.runware.errors import (
    AuthenticationError,
    InsufficientCreditsError,
    PermanentError,
    TaskNotFoundError,
    TransientError,
    TransportError,
)
from prefect_flux_erase.runware.ids import task_uuid
from prefect_flux_erase.runware.models import ImageInferenceTask
from prefect_flux_erase.runware.responses import parse_reply
from prefect_flux_erase.runware.retry_policy import RetryPolicy
from tests.fixtures.runware_client import Canned, Receiver

MakeTask = Callable[..., ImageInferenceTask]
NewClient = Callable[..., RunwareClient]
JSON = {"Content-Type": "application/json"}
HTML = {"Content-Type": "text/html"}


def _item(uuid: str, n: int = 0, **extra: Any) -> dict[str, Any]:
    image = task_uuid(uuid, "image", n + 1)
    return {
        "taskType": "imageInference",
        "taskUUID": uuid,
        "imageUUID": image,
        "imageURL": f"http://127.0.0.1:9/image/{image}.jpg",
        **extra,
    }


def _json(status: int, body: Any) -> Canned:
    return status, JSON, json.dumps(body).encode()


# -- emulator switches ------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["A", "B"])
async def test_runtime_failures_in_either_form_fail_the_task_definitely(
    emu: EmulatorServer, new_client: NewClient, make_task: MakeTask, form: str
) -> None:
    emu.configure(failure_form=form)
    emu.script_faults(["timeout_provider"])
    task = make_task(deliveryMethod="async")
    async with new_client() as client:
        await client.submit([task])
        outcome = (await client.poll({task.task_uuid: 1}))[task.task_uuid]
    assert outcome.state == "failed"
    assert isinstance(outcome.error, TransientError)
    assert (outcome.error.code, outcome.error.task_uuid, outcome.definite) == (
        "timeoutProvider",
        task.task_uuid,
        True,
    )


@pytest.mark.parametrize(
    "switches",
    [
        {"error_key": "error"},
        {"error_envelope_data": False},
        {"error_key": "error", "error_envelope_data": False},
    ],
)
async def test_validation_errors_are_read_from_every_envelope(
    emu: EmulatorServer, new_client: NewClient, make_task: MakeTask, switches: dict[str, Any]
) -> None:
    emu.configure(**switches)
    good = make_task()
    bad = make_task(inputs={"image": good.inputs.image, "mask": "not-an-image-at-all"})
    async with new_client() as client:
        outcomes = await client.submit([good, bad])
    assert outcomes[good.task_uuid].state == "done"
    failed = outcomes[bad.task_uuid]
    assert failed.state == "failed"
    assert isinstance(failed.error, PermanentError)
    assert failed.error.parameter == "inputs.mask"


@pytest.mark.parametrize(
    "switches", [{"ack_status": True}, {"poll_task_type": "getResponse"}, {"emit_progress": False}]
)
async def test_ack_and_poll_item_variants_are_understood(
    emu: EmulatorServer, new_client: NewClient, make_task: MakeTask, switches: dict[str, Any]
) -> None:
    emu.configure(latency=0.05, **switches)
    task = make_task(deliveryMethod="async", numberResults=2)
    async with new_client() as client:
        assert (await client.submit([task]))[task.task_uuid].state == "accepted"
        outcome = (await client.poll({task.task_uuid: 2}))[task.task_uuid]
    assert outcome.state == "done"
    assert len(outcome.results) == 2


@pytest.mark.parametrize("result_index", [True, False])
async def test_cumulative_poll_replies_are_deduplicated(
    emu: EmulatorServer, new_client: NewClient, make_task: MakeTask, result_index: bool
) -> None:
    # The first generation finishes at once, the others wait for the gate: polls in between
    # repeat the finished one (cumulative replies) next to "processing" items with progress.
    gate = threading.Event()
    calls = itertools.count()

    def engine(
        rgb: NDArray[np.uint8], mask: NDArray[np.bool_], dilate: int, seed: int
    ) -> NDArray[np.uint8]:
        if next(calls) > 0:
            gate.wait(30)
        return rgb

    emu.configure(engine=engine, emit_result_index=result_index, emit_seed=True)
    task = make_task(deliveryMethod="async", numberResults=4)
    try:
        async with new_client() as client:
            await client.submit([task])
            polling = asyncio.create_task(client.poll({task.task_uuid: 4}))
            for _ in range(2000):  # until two polls have seen the first result alone
                if emu.stats()["requests_by_task_type"].get("getResponse", 0) >= 3:
                    break
                await asyncio.sleep(0.005)
            gate.set()
            outcome = (await polling)[task.task_uuid]
    finally:
        gate.set()
        emu.wait_idle()
    assert outcome.state == "done"
    assert outcome.requests >= 4
    assert len({r.image_uuid for r in outcome.results}) == len(outcome.results) == 4
    if result_index:
        assert sorted(r.result_index or 0 for r in outcome.results) == [0, 1, 2, 3]
    assert all(isinstance(r.seed, int) for r in outcome.results)


@pytest.mark.parametrize(("status", "code"), [(200, "taskFailedOrNotFound"), (404, "taskNotFound")])
async def test_unknown_task_answers_are_task_not_found(
    emu: EmulatorServer, new_client: NewClient, status: int, code: str
) -> None:
    emu.configure(unknown_task_status=status, unknown_task_code=code)
    unknown = task_uuid("tests", "unknown", status)
    async with new_client() as client:
        outcome = (await client.poll({unknown: 1}))[unknown]
    assert isinstance(outcome.error, TaskNotFoundError)
    assert (outcome.state, outcome.error.code, outcome.requests) == ("failed", code, 1)


@pytest.mark.parametrize("body", ["flat", "wrapped"])
async def test_webhook_bodies_flat_or_wrapped_parse_to_the_result(
    emu: EmulatorServer,
    new_client: NewClient,
    make_task: MakeTask,
    receiver: Receiver,
    body: str,
) -> None:
    emu.configure(webhook_body=body)
    task = make_task(deliveryMethod="async", webhookURL=f"{receiver.url}/hook")
    async with new_client() as client:
        await client.submit([task])
        polled = (await client.poll({task.task_uuid: 1}))[task.task_uuid]
    emu.wait_idle()
    (post,) = receiver.received
    raw = json.loads(post.body)
    assert ("data" in raw) is (body == "wrapped")
    (item,) = parse_reply(raw).items
    assert (item.task_uuid, item.image_uuid) == (task.task_uuid, polled.results[0].image_uuid)


async def test_conflict_answered_as_an_ack_is_still_collected_once(
    emu: EmulatorServer, new_client: NewClient, make_task: MakeTask
) -> None:
    emu.configure(conflict_mode="ack")
    task = make_task(deliveryMethod="async")
    async with new_client() as client:
        await client.submit([task])
        again = (await client.submit([task]))[task.task_uuid]
        assert again.state == "accepted"
        items = await client.run(task)
    assert len(items) == 1
    assert emu.stats()["billed"][task.task_uuid]["count"] == 1


@pytest.mark.parametrize("status", [402, 400, 200])
async def test_insufficient_credits_is_recognised_on_any_status(
    emu: EmulatorServer, new_client: NewClient, make_task: MakeTask, status: int
) -> None:
    emu.configure(balance_usd=0.0, insufficient_credits_status=status)
    task = make_task()
    async with new_client() as client:
        outcome = (await client.submit([task]))[task.task_uuid]
    assert isinstance(outcome.error, InsufficientCreditsError)
    assert (outcome.state, outcome.requests) == ("failed", 1)
    assert emu.stats()["requests_total"] == 1


# -- captured bodies over a loopback server ---------------------------------------------------


@pytest.mark.parametrize(
    "shape",
    ["bare_list", "data_object", "unknown_fields", "data_and_errors"],
)
async def test_success_reply_shapes(
    new_client: NewClient, make_task: MakeTask, receiver: Receiver, shape: str
) -> None:
    task = make_task()
    other = task_uuid("tests", "another-task")
    item = _item(task.task_uuid)
    body: Any = {
        "bare_list": [item],
        "data_object": {"data": item},
        "unknown_fields": {"data": [{**item, "resultIndex": 0, "brandNew": {"x": 1}}], "meta": 1},
        "data_and_errors": {
            "data": [item],
            "errors": [{"code": "invalidImage", "taskUUID": other, "message": "unreadable"}],
        },
    }[shape]
    receiver.replies = [_json(200, body)]
    async with new_client(base_url=receiver.url) as client:
        outcome = (await client.submit([task]))[task.task_uuid]
    assert outcome.state == "done"
    assert outcome.results[0].image_uuid == item["imageUUID"]
    assert len(receiver.received) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"error": {"code": "invalidMaskDimensions", "parameter": "inputs.mask"}, "taskUUID": "T"},
        {"error": [{"code": "invalidMaskDimensions", "parameter": "inputs.mask", "taskUUID": "T"}]},
        {
            "data": [],
            "errors": [
                {
                    "code": "invalidMaskDimensions",
                    "parameter": ["inputs.mask", "inputs.image"],
                    "type": "string",
                    "allowedValues": [],
                    "taskUUID": "T",
                }
            ],
        },
        {"errors": [{"code": "invalidMaskDimensions", "parameter": "inputs.mask"}]},
    ],
    ids=["error_dict_top_level_uuid", "error_list", "parameter_list", "unscoped_single_task"],
)
async def test_error_reply_shapes(
    new_client: NewClient, make_task: MakeTask, receiver: Receiver, body: dict[str, Any]
) -> None:
    task = make_task()
    text = json.dumps(body).replace('"T"', json.dumps(task.task_uuid))
    receiver.replies = [(400, JSON, text.encode())]
    async with new_client(base_url=receiver.url) as client:
        outcome = (await client.submit([task]))[task.task_uuid]
    assert outcome.state == "failed"
    assert isinstance(outcome.error, PermanentError)
    assert (outcome.error.code, outcome.error.parameter) == ("invalidMaskDimensions", "inputs.mask")
    assert len(receiver.received) == 1


async def test_non_final_statuses_other_than_processing_keep_the_client_polling(
    new_client: NewClient, make_task: MakeTask, receiver: Receiver
) -> None:
    # RUNWARE_API §9 item 11: any status but success/error means "still running".
    task = make_task(deliveryMethod="async")
    waiting = [
        {"taskType": "imageInference", "taskUUID": task.task_uuid, "status": status}
        for status in ("queued", "pending", "scheduled", "waiting", "someNewStatus")
    ]
    receiver.replies = [_json(200, {"data": [item]}) for item in waiting]
    receiver.replies.append(
        _json(200, {"data": [_item(task.task_uuid, status="success", progress=100)]})
    )
    async with new_client(base_url=receiver.url) as client:
        outcome = (await client.poll({task.task_uuid: 1}))[task.task_uuid]
    assert outcome.state == "done"
    assert outcome.results[0].image_uuid == _item(task.task_uuid)["imageUUID"]
    assert len(receiver.received) == 6
    assert all(json.loads(r.body)[0]["taskType"] == "getResponse" for r in receiver.received)


async def test_non_json_400_is_a_permanent_http_error(
    new_client: NewClient, make_task: MakeTask, receiver: Receiver
) -> None:
    receiver.replies = [(400, HTML, b"<html>Bad Request</html>")]
    task = make_task()
    async with new_client(base_url=receiver.url) as client:
        outcome = (await client.submit([task]))[task.task_uuid]
    assert isinstance(outcome.error, PermanentError)
    assert (outcome.error.code, outcome.error.http_status) == ("httpError", 400)
    assert len(receiver.received) == 1


async def test_non_json_2xx_is_a_transient_parse_error(
    new_client: NewClient, make_task: MakeTask, receiver: Receiver
) -> None:
    receiver.replies = [(200, HTML, b"<html>maintenance</html>")] * 2
    task = make_task()
    policy = RetryPolicy(base=0.001, jitter=0.0, max_retries=1)
    async with new_client(base_url=receiver.url, retry_policy=policy) as client:
        outcome = (await client.submit([task]))[task.task_uuid]
        assert client.stats.retries == 1
    assert isinstance(outcome.error, TransportError)
    assert (outcome.error.code, outcome.definite, outcome.requests) == ("parseError", False, 2)


async def test_a_2xx_that_leaves_a_task_out_resends_that_task(
    new_client: NewClient, make_task: MakeTask, receiver: Receiver
) -> None:
    a, b = make_task(), make_task()
    receiver.replies = [
        _json(200, {"data": [_item(a.task_uuid)]}),
        _json(200, {"data": [_item(b.task_uuid)]}),
    ]
    async with new_client(base_url=receiver.url) as client:
        outcomes = await client.submit([a, b])
    assert {o.state for o in outcomes.values()} == {"done"}
    second = [t["taskUUID"] for t in json.loads(receiver.received[1].body)]
    assert second == [b.task_uuid]


async def test_a_task_scoped_rate_limit_resends_only_that_task_after_backoff(
    new_client: NewClient, make_task: MakeTask, receiver: Receiver
) -> None:
    a, b = make_task(), make_task()
    throttled = {"code": "rateLimitExceeded", "message": "slow down", "taskUUID": b.task_uuid}
    receiver.replies = [
        _json(200, {"data": [_item(a.task_uuid)], "errors": [throttled]}),
        _json(200, {"data": [_item(b.task_uuid)]}),
    ]
    async with new_client(base_url=receiver.url) as client:
        outcomes = await client.submit([a, b])
        assert client.stats.retries == 1
    assert {o.state for o in outcomes.values()} == {"done"}
    assert [t["taskUUID"] for t in json.loads(receiver.received[1].body)] == [b.task_uuid]


async def test_a_redirect_is_a_permanent_error_and_is_not_followed(
    new_client: NewClient, make_task: MakeTask, receiver: Receiver
) -> None:
    # Following it would carry the Authorization header to another host.
    receiver.replies = [(301, {"Location": f"{receiver.url}/elsewhere"}, b"")]
    task = make_task()
    async with new_client(base_url=f"{receiver.url}/v1") as client:
        outcome = (await client.submit([task]))[task.task_uuid]
    assert isinstance(outcome.error, PermanentError)
    assert (outcome.error.http_status, outcome.requests) == (301, 1)
    assert [r.path for r in receiver.received] == ["/v1"]


async def test_a_server_that_never_mentions_a_task_ends_in_an_indefinite_no_reply(
    new_client: NewClient, make_task: MakeTask, receiver: Receiver
) -> None:
    receiver.respond = lambda got: _json(200, {"data": []})
    task = make_task()
    policy = RetryPolicy(base=0.001, jitter=0.0, max_retries=2)
    async with new_client(base_url=receiver.url, retry_policy=policy) as client:
        outcome = (await client.submit([task]))[task.task_uuid]
    assert outcome.state == "failed"
    assert isinstance(outcome.error, TransportError)
    assert (outcome.error.code, outcome.definite, outcome.requests) == ("noReply", False, 3)
    assert len(receiver.received) == 3


# -- whole-array rejections and unscoped errors, from the emulator ----------------------------


def _bad_mask_task(make_task: MakeTask) -> ImageInferenceTask:
    good = make_task()
    return make_task(inputs={"image": good.inputs.image, "mask": "not-an-image-at-all"})


@pytest.mark.parametrize(("scoped", "requests"), [(True, 2), (False, 4)])
async def test_an_array_rejected_for_one_task_is_resent_and_billed_once(
    emu: EmulatorServer,
    new_client: NewClient,
    make_task: MakeTask,
    scoped: bool,
    requests: int,
) -> None:
    emu.configure(batch_rejection="whole", scoped_errors=scoped)
    a, bad, c = make_task(), _bad_mask_task(make_task), make_task()
    async with new_client() as client:
        outcomes = await client.submit([a, bad, c])
    assert {u: o.state for u, o in outcomes.items()} == {
        a.task_uuid: "done",
        bad.task_uuid: "failed",
        c.task_uuid: "done",
    }
    error = outcomes[bad.task_uuid].error
    assert isinstance(error, PermanentError)
    assert error.parameter == "inputs.mask"
    stats = emu.stats()
    # Named: the array, then the two good tasks. Unnamed: the array, then each task alone.
    assert stats["requests_total"] == requests
    assert {u: e["count"] for u, e in stats["billed"].items()} == {a.task_uuid: 1, c.task_uuid: 1}


async def test_an_unscoped_rejection_of_a_lone_bad_task_is_attributed_to_it(
    emu: EmulatorServer, new_client: NewClient, make_task: MakeTask
) -> None:
    emu.configure(scoped_errors=False)
    a, bad = make_task(), _bad_mask_task(make_task)
    async with new_client() as client:
        outcomes = await client.submit([a, bad])
    assert (outcomes[a.task_uuid].state, outcomes[bad.task_uuid].state) == ("done", "failed")
    assert emu.stats()["requests_total"] == 1


async def test_a_conflict_inside_a_rejected_array_does_not_lose_the_new_task(
    emu: EmulatorServer, new_client: NewClient, make_task: MakeTask
) -> None:
    emu.configure(batch_rejection="whole")
    old, new = make_task(deliveryMethod="async"), make_task(deliveryMethod="async")
    async with new_client() as client:
        await client.submit([old])
        outcomes = await client.submit([old, new])
        assert (outcomes[old.task_uuid].state, outcomes[new.task_uuid].state) == (
            "conflict",
            "accepted",
        )
        polled = await client.poll({old.task_uuid: 1, new.task_uuid: 1})
    assert {o.state for o in polled.values()} == {"done"}
    billed = {u: e["count"] for u, e in emu.stats()["billed"].items()}
    assert billed == {old.task_uuid: 1, new.task_uuid: 1}


async def test_an_html_401_from_the_emulator_is_invalid_api_key(
    emu: EmulatorServer, new_client: NewClient, make_task: MakeTask
) -> None:
    emu.configure(api_keys=frozenset({"rk-the-right-key"}), auth_error_body="html")
    task = make_task()
    async with new_client(api_key="rk-a-wrong-key") as client:
        outcome = (await client.submit([task]))[task.task_uuid]
    assert isinstance(outcome.error, AuthenticationError)
    assert (outcome.error.code, outcome.error.http_status, outcome.requests) == (
        "invalidApiKey",
        401,
        1,
    )
    assert emu.stats()["requests_total"] == 1

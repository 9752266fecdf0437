"""Reply parsing tolerates every known variant; one function classifies errors."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from prefect_flux_erase.runware.errors import (
    AuthenticationError,
    ConflictTaskUUIDError,
    ContentPolicyError,
    InsufficientCreditsError,
    PermanentError,
    RateLimitError,
    RunwareError,
    TaskNotFoundError,
    TransientError,
    classify,
    error_from_object,
)
from prefect_flux_erase.runware.ids import is_uuid4, task_uuid
from prefect_flux_erase.runware.pricing import result_cost
from prefect_flux_erase.runware.responses import dedupe, parse_reply

T = "3f9a3c3e-2b7e-4a51-9d1b-6d6f0a2f8e11"
ITEM = {"taskType": "imageInference", "taskUUID": T, "imageUUID": "i1", "imageURL": "https://x/i1"}


@pytest.mark.parametrize(
    "body",
    [
        {"data": [ITEM]},
        {"data": ITEM},
        [ITEM],
        ITEM,
        {"data": [{**ITEM, "resultIndex": 0, "progress": 100, "brandNew": {"x": 1}}]},
    ],
)
def test_success_shapes_all_yield_the_item(body: Any) -> None:
    reply = parse_reply(body)
    assert [i.image_uuid for i in reply.items] == ["i1"]
    assert reply.errors == []
    assert reply.problems == []


@pytest.mark.parametrize(
    "body",
    [
        {"data": [], "errors": [{"code": "timeoutProvider", "status": "error", "taskUUID": T}]},
        {"data": [{"taskUUID": T, "status": "error", "error": {"code": "timeoutProvider"}}]},
        {"error": {"code": "timeoutProvider"}, "taskUUID": T, "taskType": "imageInference"},
        {"error": [{"code": "timeoutProvider", "taskUUID": T}]},
        {"errors": [{"code": "timeoutProvider", "taskUUID": T, "parameter": ["a", "b"]}]},
    ],
)
def test_failure_shapes_all_yield_a_task_scoped_error(body: Any) -> None:
    reply = parse_reply(body)
    items, errors = reply.for_task(T)
    assert items == []
    assert [e.code for e in errors] == ["timeoutProvider"]


def test_data_and_errors_in_one_body_are_both_kept() -> None:
    other = "5c1e0b7a-8d44-4f0e-a3b2-1f6c9e2d7a90"
    reply = parse_reply({"data": [ITEM], "errors": [{"code": "invalidImage", "taskUUID": other}]})
    assert reply.for_task(T)[0][0].image_uuid == "i1"
    assert reply.for_task(other)[1][0].code == "invalidImage"


@pytest.mark.parametrize("body", ["text", 3, None, {"weird": 1}, {"data": ["x"]}])
def test_unreadable_bodies_are_problems_not_crashes(body: Any) -> None:
    assert parse_reply(body).problems


def test_cumulative_poll_items_are_deduplicated() -> None:
    reply = parse_reply({"data": [ITEM, ITEM, {**ITEM, "imageUUID": "i2"}]})
    assert [i.image_uuid for i in dedupe(reply.items)] == ["i1", "i2"]


@pytest.mark.parametrize(
    ("code", "status", "cls"),
    [
        ("timeoutProvider", 200, TransientError),
        ("providerGatewayTimeout", None, TransientError),
        ("SomethingTIMEOUT", None, TransientError),
        ("timeout", 400, TransientError),
        ("readTimeOut", 400, TransientError),
        # "timeout" wins over the *Expired / *NotFound / invalid* rules (issue #2, item 3).
        ("gatewayTimeoutExpired", 400, TransientError),
        ("upstreamTimeoutNotFound", 404, TransientError),
        ("invalidTimeout", 400, TransientError),
        ("rateLimitExceeded", None, RateLimitError),
        (None, 429, RateLimitError),
        (None, 500, TransientError),
        (None, 502, TransientError),
        (None, 503, TransientError),
        (None, 504, TransientError),
        ("inferenceError", None, TransientError),
        ("invalidApiKey", 401, AuthenticationError),
        (None, 403, AuthenticationError),
        ("insufficientCredits", 400, InsufficientCreditsError),
        (None, 402, InsufficientCreditsError),
        ("conflictTaskUUID", 400, ConflictTaskUUIDError),
        ("providerContentPolicyViolation", None, ContentPolicyError),
        ("taskFailedOrNotFound", None, TaskNotFoundError),
        ("taskExpired", None, TaskNotFoundError),
        ("invalidMaskDimensions", 400, PermanentError),
        ("unsupportedParameter", 400, PermanentError),
        (None, 400, PermanentError),
    ],
)
def test_classify(code: str | None, status: int | None, cls: type[RunwareError]) -> None:
    assert classify(code, status) is cls


def test_error_objects_keep_every_field_and_survive_pickling() -> None:
    err = error_from_object(
        {"code": "invalidMaskDimensions", "message": "m", "parameter": ["inputs.mask", "x"]},
        http_status=400,
        task_uuid=T,
    )
    clone = pickle.loads(pickle.dumps(err))
    assert type(clone) is PermanentError
    assert (clone.code, clone.parameter, clone.parameters, clone.task_uuid, clone.http_status) == (
        "invalidMaskDimensions",
        "inputs.mask",
        ["inputs.mask", "x"],
        T,
        400,
    )


def test_task_uuids_are_deterministic_v4_and_vary_by_each_input() -> None:
    a = task_uuid("run", "row", 1)
    assert is_uuid4(a)
    assert a == task_uuid("run", "row", 1)
    assert (
        len(
            {
                a,
                task_uuid("run2", "row", 1),
                task_uuid("run", "row2", 1),
                task_uuid("run", "row", 2),
            }
        )
        == 4
    )


@pytest.mark.parametrize(
    ("w", "h", "usd"),
    [
        (1024, 1024, 0.03),
        (512, 512, 0.03),
        (1025, 1024, 0.034),
        (2048, 2048, 0.042),
        (8000, 8000, 0.042),
    ],
)
def test_pricing_follows_the_model_page(w: int, h: int, usd: float) -> None:
    assert result_cost(w, h) == pytest.approx(usd)

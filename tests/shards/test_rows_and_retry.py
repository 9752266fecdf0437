"""Row validation helpers, ticket records and the transient-only retry rule."""

from __future__ import annotations

import errno
from typing import Any

import httpx
import pytest
from prefect.states import Failed

from prefect_flux_erase.runware.errors import (
    AuthenticationError,
    InvalidOptionError,
    RateLimitError,
    TransientError,
)
from prefect_flux_erase.runware.options import EraseOptions
from prefect_flux_erase.shards.api_backend import RunAborted
from prefect_flux_erase.shards.job import ShardJob
from prefect_flux_erase.shards.remote_inputs import input_kind
from prefect_flux_erase.shards.rows import (
    ResultRef,
    RowTicket,
    check_row_key,
    row_dilate_pixels,
)
from prefect_flux_erase.storage import is_transient_fault
from prefect_flux_erase.tasks import poll_erase, submit_erase, upload_erased
from prefect_flux_erase.tasks.stage_options import retry_if_transient


def _job(**options: Any) -> ShardJob:
    return ShardJob(
        manifest=None,  # type: ignore[arg-type]
        output="memory://rows/out",
        run_key="k",
        backend="runware",
        options=EraseOptions(),
        **options,
    )


@pytest.mark.parametrize("value", [1.5, "12", True, [3]])
def test_per_row_dilate_pixels_must_be_a_whole_number(value: Any) -> None:
    with pytest.raises(InvalidOptionError) as caught:
        row_dilate_pixels(value)
    assert caught.value.parameter == "settings.dilatePixels"


@pytest.mark.parametrize("key", ["../x", "a/../../b", "..\\\\evil", "  "])
def test_traversing_or_empty_keys_are_refused(key: str) -> None:
    assert check_row_key(key) is not None


def test_public_urls_pass_through_only_when_allowed() -> None:
    public, loopback = "https://images.example.com/a.png", "http://127.0.0.1:9/a.png"

    assert input_kind(public, "image_uri", _job(pass_urls=True)) == "url"
    assert input_kind(public, "image_uri", _job()) == "file"
    assert input_kind(public, "mask_uri", _job(pass_urls=("image_uri",))) == "file"
    assert input_kind(loopback, "image_uri", _job(pass_urls=True)) == "file"
    allowed = _job(pass_urls=True, allow_private_hosts=("127.0.0.1:9",))
    assert input_kind(loopback, "image_uri", allowed) == "url"


def test_outcome_of_a_done_ticket_sums_costs_and_redacts_source_urls() -> None:
    ticket = RowTicket(
        row_index=4,
        row_key="k",
        image_uri="a",
        mask_uri="m",
        task_uuid="t",
        state="done",
        results=(
            ResultRef(image_uuid="i1", url="https://x/1.jpg?X-Amz-Signature=abc", cost=0.03),
            ResultRef(image_uuid="i2", url="https://x/2.jpg", cost=0.004),
        ),
        started=10.0,
        finished=12.5,
        submits=1,
    )

    outcome = ticket.to_outcome(["o1", "o2"])

    assert (outcome.status, outcome.cost, outcome.latency_s, outcome.attempts) == (
        "succeeded",
        0.034,
        2.5,
        1,
    )
    assert outcome.source_url == ["https://x/1.jpg?X-Amz-Signature=REDACTED", "https://x/2.jpg"]
    assert outcome.image_uuid == ["i1", "i2"]


@pytest.mark.parametrize(
    ("exc", "retry"),
    [
        (TransientError("503", code="serviceUnavailable"), True),
        (RateLimitError("slow down"), True),
        (httpx.ConnectError("refused"), True),
        (OSError(errno.EIO, "An error occurred (SlowDown) when calling PutObject"), True),
        (AuthenticationError("bad key", code="invalidApiKey"), False),
        (RunAborted("insufficientCredits: top up", code="insufficientCredits"), False),
        (KeyError("a bug"), False),
        (FileNotFoundError(errno.ENOENT, "no such bucket"), False),
    ],
)
def test_stage_retries_follow_the_core_rule(exc: BaseException, retry: bool) -> None:
    # The rule itself is tested in tests/storage/test_faults.py; here, that Prefect gets it.
    state = Failed(data=exc)

    assert is_transient_fault(exc) is retry
    assert retry_if_transient(submit_erase, None, state) is retry  # type: ignore[arg-type]


def test_stage_tasks_are_configured_for_safe_retries() -> None:
    from prefect.cache_policies import NO_CACHE

    for stage in (submit_erase, poll_erase, upload_erased):
        assert stage.retries == 3
        assert stage.retry_delay_seconds == [2.0, 4.0, 8.0]
        assert stage.retry_jitter_factor == 0.5
        assert stage.retry_condition_fn is retry_if_transient
        assert stage.cache_policy is NO_CACHE
        assert stage.cache_result_in_memory is False
        # Timeouts are enforced on the stage's event loop, where they can cancel the stage.
        assert stage.timeout_seconds is None


def test_a_stage_past_its_timeout_is_cancelled_with_a_transient_timeout_error() -> None:
    import asyncio

    from prefect_flux_erase.shards.stage_loop import run_stage

    cancelled = []

    async def hung() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    with pytest.raises(TimeoutError, match=r"did not finish within 0\.05 s") as caught:
        run_stage(hung(), timeout=0.05)

    assert cancelled == [True]
    assert is_transient_fault(caught.value)

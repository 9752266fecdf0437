"""Retry delays, Retry-After parsing, poll cadence and the AIMD in-flight limiter."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from itertools import islice, pairwise

import pytest

from prefect_flux_erase.runware.limiter import AdaptiveLimiter
from prefect_flux_erase.runware.polling import PollPolicy
from prefect_flux_erase.runware.retry_policy import RetryPolicy, parse_retry_after


def test_backoff_doubles_from_base_up_to_the_cap() -> None:
    policy = RetryPolicy(base=0.25, cap=2.0, jitter=0.0)
    assert [policy.delay(n) for n in range(6)] == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]
    assert policy.delay(500) == 2.0


def test_jitter_stays_within_its_fraction_and_is_reproducible_with_a_seed() -> None:
    a = RetryPolicy(base=1.0, cap=8.0, jitter=0.5, rng=random.Random(7))
    b = RetryPolicy(base=1.0, cap=8.0, jitter=0.5, rng=random.Random(7))
    delays = [a.delay(n % 4) for n in range(200)]
    assert delays[:10] == [b.delay(n % 4) for n in range(10)]
    for n, d in enumerate(delays):
        full = min(8.0, 2.0 ** (n % 4))
        assert full * 0.5 <= d <= full
    assert len(set(delays)) > 100


@pytest.mark.parametrize(("retry_after", "expected"), [(0.3, 0.3), (0.05, 0.1), (1e9, 300.0)])
def test_retry_after_is_a_floor_bounded_by_max_retry_after(
    retry_after: float, expected: float
) -> None:
    policy = RetryPolicy(base=0.1, jitter=0.0)
    assert policy.delay(0, retry_after=retry_after) == expected


@pytest.mark.parametrize(
    "kwargs", [{"jitter": 1.5}, {"max_retries": -1}, {"base": -0.1}, {"jitter": -0.1}]
)
def test_invalid_retry_policy_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("2", 2.0),
        ("0.25", 0.25),
        (" 1.5 ", 1.5),
        ("-3", 0.0),
        ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
        ("", None),
        ("later", None),
        ("inf", None),
        (None, None),
    ],
)
def test_retry_after_header_forms(header: str | None, expected: float | None) -> None:
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert parse_retry_after(header, now=now) == expected


def test_poll_cadence_defaults_to_the_sdk_schedule() -> None:
    delays = list(islice(PollPolicy().delays(), 12))
    assert delays[:4] == [1.0, 0.5, 0.75, 1.125]
    assert delays[-1] == 10.0
    assert all(b >= a for a, b in pairwise(delays[1:]))
    assert PollPolicy().timeout == 1200.0


def test_poll_policy_refuses_a_shrinking_interval() -> None:
    with pytest.raises(ValueError, match="multiplier"):
        PollPolicy(multiplier=0.5)


async def test_limiter_caps_in_flight_at_its_window() -> None:
    limiter = AdaptiveLimiter(3)
    peak = 0
    gate = asyncio.Event()

    async def worker() -> None:
        nonlocal peak
        async with limiter.slot():
            peak = max(peak, limiter.in_flight)
            await gate.wait()

    workers = [asyncio.create_task(worker()) for _ in range(10)]
    for _ in range(5):
        await asyncio.sleep(0)
    assert (limiter.in_flight, limiter.waiting) == (3, 7)
    gate.set()
    await asyncio.gather(*workers)
    assert peak == 3
    assert (limiter.in_flight, limiter.waiting) == (0, 0)


async def test_limiter_halves_once_per_burst_and_grows_back_additively() -> None:
    limiter = AdaptiveLimiter(16)
    epochs = [await limiter.acquire() for _ in range(8)]
    for epoch in epochs:  # eight 429s from requests sent under the same window
        limiter.release(epoch, "rate_limited")
    assert (limiter.window, limiter.decreases) == (8, 1)
    epoch = await limiter.acquire()
    limiter.release(epoch, "rate_limited")  # a signal from the new epoch shrinks again
    assert limiter.window == 4
    for _ in range(4):  # a window's worth of successes adds just under one slot (4.9x)
        limiter.release(await limiter.acquire(), "success")
    assert limiter.window == 4
    for _ in range(2):
        limiter.release(await limiter.acquire(), "success")
    assert limiter.window == 5
    for _ in range(200):
        limiter.release(await limiter.acquire(), "success")
    assert limiter.window == 16  # never above the limit


async def test_limiter_never_shrinks_below_its_minimum() -> None:
    limiter = AdaptiveLimiter(4, min_limit=2)
    for _ in range(10):
        limiter.release(await limiter.acquire(), "rate_limited")
    assert limiter.window == 2


async def test_a_cancelled_waiter_does_not_leak_a_slot() -> None:
    limiter = AdaptiveLimiter(1)
    held = await limiter.acquire()
    waiter = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    limiter.release(held)
    assert (limiter.in_flight, limiter.waiting) == (0, 0)
    assert await asyncio.wait_for(limiter.acquire(), 5) == held

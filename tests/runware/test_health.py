"""The API's health as a run's clients share it, and the in-flight window they share."""

from __future__ import annotations

import asyncio
import threading

from prefect_flux_erase.runware.health import ApiHealth
from prefect_flux_erase.runware.limiter import AdaptiveLimiter

URL = "http://127.0.0.1:9/v1"


class Clock:
    """A hand-wound clock: the tests say when time passes."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_an_endpoint_that_never_answered_is_unreachable_after_a_few_failures_over_seconds() -> None:
    clock = Clock()
    health = ApiHealth(clock=clock)
    for _ in range(5):  # concurrent requests all refused at once: not yet
        health.unreachable(URL, "ConnectError: refused")
    assert not health.stop_requested
    clock.now = 2.5
    health.unreachable(URL, "ConnectError: refused")
    assert health.halted
    assert health.reason is not None
    assert getattr(health.reason, "code", None) == "apiUnreachable"
    assert "base URL" in str(health.reason)
    assert "127.0.0.1:9" in str(health.reason)


def test_a_blip_after_answers_is_ridden_out_and_an_answer_clears_the_count() -> None:
    clock = Clock()
    health = ApiHealth(clock=clock)
    health.answered()
    for second in range(20):
        clock.now = float(second)
        health.unreachable(URL, "ReadError: reset")
    assert not health.stop_requested  # 19 s of resets: an outage may still pass
    health.answered()
    clock.now = 100.0
    health.unreachable(URL, "ReadError: reset")
    clock.now = 140.0
    health.unreachable(URL, "ReadError: reset")
    assert not health.stop_requested  # two failures only since the last answer
    health.unreachable(URL, "ReadError: reset")
    assert health.halted  # three in a row over 40 s: an outage


def test_a_stop_with_grace_stops_new_rows_at_once_and_waiting_after_the_grace() -> None:
    clock = Clock()
    health = ApiHealth(clock=clock)
    health.stop(KeyboardInterrupt(), grace=3.0)
    assert health.stop_requested
    assert not health.halted
    clock.now = 3.0
    assert health.halted
    health.stop(RuntimeError("later"))
    assert isinstance(health.reason, KeyboardInterrupt)  # the first reason is kept


def test_one_window_shared_by_clients_on_two_threads_and_loops() -> None:
    limiter = AdaptiveLimiter(2)
    held = asyncio.run(limiter.acquire()), asyncio.run(limiter.acquire())
    granted: list[int] = []

    def other_thread() -> None:
        async def wait() -> None:
            granted.append(await limiter.acquire())

        asyncio.run(wait())

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join(0.3)
    assert thread.is_alive()
    assert limiter.waiting == 1
    limiter.release(held[0], "rate_limited")  # a 429 seen here halves the shared window...
    assert limiter.window == 1
    limiter.release(held[1])  # ...and the freed slot wakes the waiter on its own loop
    thread.join(5)
    assert granted == [1]
    assert limiter.in_flight == 1

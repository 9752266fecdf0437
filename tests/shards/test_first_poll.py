"""The first-poll learner: where it settles for steady and noisy latencies, and its bounds."""

from __future__ import annotations

import random
import threading

import pytest

from prefect_flux_erase.shards.first_poll import CEILING, FLOOR, FirstPollLearner, learner_for


def _simulate(latency: float, jitter: float, batches: int, start: float) -> tuple[float, float]:
    """Feed the learner batches whose slowest row ends at ``latency`` (+ up to ``jitter``);
    return the mean first delay of the last half and the share of first polls that hit."""
    rng = random.Random(7)
    learner = FirstPollLearner()
    delays, hits = [], []
    for _ in range(batches):
        first = learner.first_delay(start)
        ready = latency + rng.uniform(0.0, jitter)
        hit = first >= ready
        seen = first if hit else first + 0.15 * first * (1 + int((ready - first) / (0.15 * first)))
        learner.observe(first, finished_at_first=hit, seen_after=seen)
        delays.append(first)
        hits.append(hit)
    half = batches // 2
    return sum(delays[half:]) / half, sum(hits[half:]) / half


@pytest.mark.parametrize(("latency", "start"), [(0.2, 1.0), (0.2, 0.01), (8.0, 0.2), (8.0, 60.0)])
def test_settles_just_past_a_steady_latency_from_any_start(latency: float, start: float) -> None:
    mean_delay, hit_rate = _simulate(latency, jitter=0.0, batches=400, start=start)
    assert latency <= mean_delay <= latency * 1.12
    assert hit_rate >= 0.7


def test_with_noisy_latency_most_first_polls_find_the_batch_finished() -> None:
    mean_delay, hit_rate = _simulate(5.0, jitter=2.0, batches=2000, start=1.0)
    assert 5.5 <= mean_delay <= 7.3
    assert 0.7 <= hit_rate <= 0.95


def test_a_miss_never_raises_the_estimate_past_when_the_batch_was_seen_finished() -> None:
    learner = FirstPollLearner()
    learner.observe(1.0, finished_at_first=False, seen_after=1.05)
    assert learner.first_delay(9.0) == 1.05
    learner.observe(1.05, finished_at_first=False, seen_after=30.0)
    assert learner.first_delay(9.0) == pytest.approx(1.05 * 1.15)


def test_a_miss_jumps_to_the_last_time_rows_were_still_running() -> None:
    learner = FirstPollLearner()
    learner.observe(0.05, finished_at_first=False, seen_after=0.31, running_after=0.21)
    assert learner.first_delay(0.05) == 0.21


def test_the_estimate_stays_within_its_bounds() -> None:
    low, high = FirstPollLearner(), FirstPollLearner()
    for _ in range(500):
        low.observe(low.first_delay(0.1), finished_at_first=True, seen_after=0.0)
        high.observe(high.first_delay(100.0), finished_at_first=False, seen_after=1e9)
    assert low.first_delay(0.1) == FLOOR
    assert high.first_delay(100.0) == CEILING


def test_one_learner_per_endpoint_shared_across_threads() -> None:
    a = learner_for("http://127.0.0.1:1/v1", "bfl:flux@erase")
    seen: list[FirstPollLearner] = []
    threads = [
        threading.Thread(
            target=lambda: seen.append(learner_for("http://127.0.0.1:1/v1", "bfl:flux@erase"))
        )
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(s is a for s in seen)
    assert learner_for("http://127.0.0.1:2/v1", "bfl:flux@erase") is not a

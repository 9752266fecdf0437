"""The Prefect internals the Prefect face reads (flows/prefect_internals.py) still exist.

Each use is best effort, so a Prefect release that renames one would silently turn an
optimisation off (API slots, or the per-stage bookkeeping that keeps a long run's memory flat);
these tests make that loud instead.
"""

from __future__ import annotations

import pytest
from prefect import flow, task
from prefect.context import FlowRunContext
from prefect.task_runners import ThreadPoolTaskRunner

from prefect_flux_erase.flows.prefect_internals import (
    forget_cancel_event,
    forget_result_links,
    thread_pool_workers,
)


def test_thread_pool_runner_keeps_max_workers_and_cancel_events() -> None:
    runner = ThreadPoolTaskRunner(max_workers=7)
    assert runner._max_workers == 7
    assert isinstance(runner._cancel_events, dict)


def test_flow_run_context_links_results_in_run_results() -> None:
    assert "run_results" in FlowRunContext.model_fields


@task
def _value() -> list[int]:
    return [1, 2, 3]


@pytest.mark.usefixtures("prefect_harness")
def test_the_helpers_see_and_forget_what_the_runner_keeps() -> None:
    seen: dict[str, object] = {}

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=5))
    def probe() -> None:
        seen["workers"] = thread_pool_workers()
        future = _value.submit()
        value = future.result()
        runner = FlowRunContext.get().task_runner  # type: ignore[union-attr]
        seen["event_before"] = future.task_run_id in runner._cancel_events
        forget_cancel_event(future.task_run_id)
        seen["event_after"] = future.task_run_id in runner._cancel_events
        links = FlowRunContext.get().run_results  # type: ignore[union-attr]
        seen["linked_before"] = id(value) in links
        forget_result_links(value)
        seen["linked_after"] = id(value) in links

    probe()
    assert seen == {
        "workers": 5,
        "event_before": True,
        "event_after": False,
        "linked_before": True,
        "linked_after": False,
    }

"""Which failures of a stage task are worth a Prefect retry: transient ones only.

The rule of which faults may pass is the core's
(:func:`~prefect_flux_erase.storage.faults.is_transient_fault`); this module only hands it to
Prefect as the stage tasks' ``retry_condition_fn``, with their backoff.

Row problems never reach this point: they are failed rows, not failed tasks. What does reach it
is a fault of the whole stage — the API or the storage unreachable, a timeout, a rejected API
key, a bug. Retrying helps only the first kind; a permanent API error or a programming error
would fail the same way again, so it fails at once with its real message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prefect.tasks import exponential_backoff

from prefect_flux_erase.storage.faults import is_transient_fault

if TYPE_CHECKING:
    from prefect.client.schemas.objects import State, TaskRun
    from prefect.tasks import Task

#: Prefect retries of one stage task (on top of the HTTP client's own per-request retries).
STAGE_RETRIES = 3
#: First delay between Prefect retries, doubled each time and jittered.
BACKOFF_FACTOR = 2.0
#: Up to this fraction of each delay is added at random, so shards do not retry in lockstep.
JITTER_FACTOR = 0.5


def retry_if_transient(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Prefect ``retry_condition_fn``: retry the stage only after a transient fault.

    Example:
        ```python
        @task(retries=3, retry_condition_fn=retry_if_transient)
        def submit_erase(...): ...
        ```
    """
    data = state.data
    if isinstance(data, BaseException):
        return is_transient_fault(data)
    try:
        result = state.result(raise_on_failure=False)
    except Exception:  # an unreadable state is not evidence of a transient fault
        return False
    return isinstance(result, BaseException) and is_transient_fault(result)


def stage_retry_delays() -> Any:
    """Exponential backoff for stage retries: 2 s, 4 s, 8 s (each jittered by up to 50 %).

    Example:
        >>> stage_retry_delays()(3)
        [2.0, 4.0, 8.0]
    """
    return exponential_backoff(backoff_factor=BACKOFF_FACTOR)


def stage_task_options() -> dict[str, Any]:
    """The retry and caching options every erase task shares, for ``@task(...)``.

    Transient failures are retried with jittered backoff, nothing else is; results are neither
    cached across runs (a rerun is decided by the results ledger) nor held in memory.

    Example:
        >>> options = stage_task_options()
        >>> options["retries"], options["cache_result_in_memory"]
        (3, False)
    """
    from prefect.cache_policies import NO_CACHE

    return {
        "retries": STAGE_RETRIES,
        "retry_delay_seconds": stage_retry_delays(),
        "retry_jitter_factor": JITTER_FACTOR,
        "retry_condition_fn": retry_if_transient,
        "cache_policy": NO_CACHE,
        "cache_result_in_memory": False,
    }

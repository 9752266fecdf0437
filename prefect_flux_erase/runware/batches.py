"""One batch of tasks, one POST at a time: reading a reply task by task, and what to resend.

A reply is read per ``taskUUID`` (never by position). Each task of the batch ends in one of
three places: an outcome (its result, its own error, ``conflictTaskUUID``), a resend (the server
left it out, or throttled it alone), or a split (the server refused the array without naming a
task, so each task is sent alone to find the culprit). Account-wide refusals (authentication,
credits) are never split: no task can pass them.

Example:
    ```python
    outcomes = await submit_batch(transport, tasks)                 # one chunk of a submit
    await poll_batch(transport, trackers, deadline=deadline, read_timeout=120.0)
    ```
"""

from __future__ import annotations

import asyncio

from prefect_flux_erase.runware.errors import (
    AuthenticationError,
    ConflictTaskUUIDError,
    InsufficientCreditsError,
    RateLimitError,
    RunwareError,
    TransportError,
)
from prefect_flux_erase.runware.models import GetResponseTask, ImageInferenceTask
from prefect_flux_erase.runware.polling import PollTracker
from prefect_flux_erase.runware.responses import ErrorObject, ResultItem, dedupe
from prefect_flux_erase.runware.task_outcome import TaskOutcome
from prefect_flux_erase.runware.transport import ApiTransport, Exchange

ACCOUNT_ERRORS = (AuthenticationError, InsufficientCreditsError)


def _error(transport: ApiTransport, obj: ErrorObject, ex: Exchange) -> RunwareError:
    return transport.error(obj, http_status=ex.status, retry_after=ex.retry_after)


def _failed_or_conflict(task_uuid: str, err: RunwareError) -> TaskOutcome:
    if isinstance(err, ConflictTaskUUIDError):
        return TaskOutcome(task_uuid, "conflict", error=err)
    return TaskOutcome(task_uuid, "failed", error=err)


def _submitted(task: ImageInferenceTask, items: list[ResultItem]) -> TaskOutcome:
    finals = dedupe(i for i in items if i.is_final)
    if len(finals) >= task.effective_number_results:
        return TaskOutcome(task.task_uuid, "done", finals)
    # An ack (or a partial sync reply): the rest comes through getResponse.
    return TaskOutcome(task.task_uuid, "accepted", finals)


async def submit_batch(
    transport: ApiTransport, tasks: list[ImageInferenceTask]
) -> dict[str, TaskOutcome]:
    """POST ``tasks`` as one array until each has an outcome; never raises a RunwareError.

    Example:
        ```python
        outcomes = await submit_batch(transport, [task_a, task_b])
        ```
    """
    max_retries = transport.policy.max_retries
    outcomes: dict[str, TaskOutcome] = {}
    spent = dict.fromkeys((t.task_uuid for t in tasks), 0)
    pending = {t.task_uuid: t for t in tasks}
    silent_rounds = throttled_rounds = 0
    while pending:
        ex = await transport.post([t.to_wire() for t in pending.values()], pending)
        for u in pending:
            spent[u] += ex.requests
        if ex.error is not None:
            # No usable answer at all: the tasks may have run, so the failure is not definite.
            for u in pending:
                outcomes[u] = TaskOutcome(u, "failed", error=ex.error, definite=False)
            break
        throttled: dict[str, ImageInferenceTask] = {}
        unanswered: dict[str, ImageInferenceTask] = {}
        throttle_error: RunwareError | None = None
        settled = len(outcomes)
        for u, task in pending.items():
            items, errors = ex.reply.for_task(u)
            if errors:
                err = _error(transport, errors[0], ex)
                if isinstance(err, RateLimitError):
                    throttled[u], throttle_error = task, err
                else:
                    outcomes[u] = _failed_or_conflict(u, err)
            elif items:
                outcomes[u] = _submitted(task, items)
            else:
                unanswered[u] = task
        unscoped = ex.unscoped_errors()
        if unanswered and unscoped:
            err = _error(transport, unscoped[0], ex)
            if len(unanswered) == 1 or isinstance(err, ACCOUNT_ERRORS):
                outcomes.update({u: _failed_or_conflict(u, err) for u in unanswered})
            else:
                # Refused as a whole without naming a task: send each alone to find out.
                for part in await asyncio.gather(
                    *(submit_batch(transport, [t]) for t in unanswered.values())
                ):
                    outcomes.update(part)
            unanswered = {}
        elif unanswered and not throttled and len(outcomes) == settled:
            # A reply that left tasks out and settled nothing: resend (a repeat is a conflict).
            silent_rounds += 1
            if silent_rounds > max_retries:
                missing = TransportError("no reply for the task", code="noReply")
                for u in unanswered:
                    outcomes[u] = TaskOutcome(u, "failed", error=missing, definite=False)
                unanswered = {}
        if throttled and throttle_error is not None:
            if throttled_rounds >= max_retries:
                for u in throttled:
                    outcomes[u] = TaskOutcome(u, "failed", error=throttle_error)
                throttled = {}
            else:
                await transport.pause(throttled_rounds, throttle_error)
                throttled_rounds += 1
        pending = {**throttled, **unanswered}
    for u, outcome in outcomes.items():
        outcome.requests += spent.get(u, 0)
    return outcomes


async def poll_batch(
    transport: ApiTransport,
    trackers: list[PollTracker],
    *,
    deadline: float,
    read_timeout: float,
) -> None:
    """One ``getResponse`` POST for these tasks; fold the reply into their trackers.

    Example:
        ```python
        await poll_batch(transport, trackers, deadline=loop.time() + 60, read_timeout=120.0)
        ```
    """
    loop = asyncio.get_running_loop()
    # Each poll POST is capped by the remaining budget (as runware-sdk does), at least 1 s.
    budget = max(1.0, deadline - loop.time())
    ex = await transport.post(
        [GetResponseTask(task_uuid=t.task_uuid).to_wire() for t in trackers],
        [t.task_uuid for t in trackers],
        request_timeout=min(read_timeout, budget),
        deadline=deadline,
    )
    for t in trackers:
        t.requests += ex.requests
    if ex.error is not None:
        # Polling again later may succeed; remember the fault for a timeout's message.
        for t in trackers:
            t.last_fault = ex.error
        return
    silent: list[PollTracker] = []
    for t in trackers:
        items, errors = ex.reply.for_task(t.task_uuid)
        t.add(items)
        if errors:
            t.fail(_error(transport, errors[0], ex))
        elif not items:
            silent.append(t)
    unscoped = ex.unscoped_errors()
    if silent and unscoped:
        err = _error(transport, unscoped[0], ex)
        if len(silent) == 1 or isinstance(err, ACCOUNT_ERRORS):
            for t in silent:
                t.fail(err)
        else:
            await asyncio.gather(
                *(
                    poll_batch(transport, [t], deadline=deadline, read_timeout=read_timeout)
                    for t in silent
                )
            )

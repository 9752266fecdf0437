"""`FluxEraseTrigger`: a deferred task's wait for one Runware task, in the triggerer.

The operator submits the task and defers; this trigger polls ``getResponse`` on the triggerer's
event loop until the task is done or failed or the deadline passes, then fires one event (the
dict of :func:`~prefect_flux_erase.airflow.single_image.outcome_event`: status, taskUUID,
result URLs and costs, the error code). It reads the connection with ``aget_connection``: a
synchronous lookup inside a trigger fails on Airflow 3 (apache/airflow#53447). It never raises:
a failure to reach the API is an event too, so the task resumes on a worker and decides.

Example:
    ```python
    self.defer(
        trigger=FluxEraseTrigger(task_uuid=uuid, flux_erase_conn_id="flux_erase_default",
                                 deadline=time.time() + 900),
        method_name="execute_complete",
    )
    ```
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from prefect_flux_erase.airflow.hooks import FluxEraseHook
from prefect_flux_erase.airflow.provider_info import DEFAULT_CONN_ID
from prefect_flux_erase.airflow.single_image import collect, outcome_event
from prefect_flux_erase.runware.errors import PermanentError
from prefect_flux_erase.runware.redaction import redact_text


class FluxEraseTrigger(BaseTrigger):
    """Polls one Runware task until it finishes or ``deadline`` (epoch seconds) passes.

    Args:
        task_uuid: The submitted task.
        flux_erase_conn_id: The ``flux_erase`` connection to poll with.
        deadline: Epoch seconds after which the event is ``timeout`` (the task keeps running on
            the server and is collected by a later try under the same taskUUID).
        attempt: Which attempt of the operator's taskUUID chain this task is (echoed back).
        number_results: Results the task makes (``numberResults``).
        poll_interval: Seconds between polls (growing to 10 s).

    Example:
        >>> import time
        >>> trigger = FluxEraseTrigger("3f9a3c3e-2b7e-4a51-9d1b-6d6f0a2f8e11",
        ...                            deadline=time.time() + 60)
        >>> trigger.serialize()[0]
        'prefect_flux_erase.airflow.triggers.FluxEraseTrigger'
    """

    def __init__(
        self,
        task_uuid: str,
        *,
        flux_erase_conn_id: str = DEFAULT_CONN_ID,
        deadline: float,
        attempt: int = 1,
        number_results: int = 1,
        poll_interval: float = 1.0,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call,unused-ignore]  # untyped
        self.task_uuid = task_uuid
        self.flux_erase_conn_id = flux_erase_conn_id
        self.deadline = float(deadline)
        self.attempt = int(attempt)
        self.number_results = int(number_results)
        self.poll_interval = float(poll_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and keyword arguments: how the triggerer rebuilds this trigger.

        Example:
            >>> import time
            >>> path, kwargs = FluxEraseTrigger("u", deadline=1.0).serialize()
            >>> FluxEraseTrigger(**kwargs).serialize() == (path, kwargs)
            True
        """
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "task_uuid": self.task_uuid,
                "flux_erase_conn_id": self.flux_erase_conn_id,
                "deadline": self.deadline,
                "attempt": self.attempt,
                "number_results": self.number_results,
                "poll_interval": self.poll_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until the task finishes or the deadline passes; fire exactly one event.

        Example:
            ```python
            events = [event async for event in trigger.run()]   # one TriggerEvent
            ```
        """
        config = None
        try:
            config = await FluxEraseHook(self.flux_erase_conn_id).aget_conn()
            async with config.open_client() as client:
                outcome = await collect(
                    client,
                    self.task_uuid,
                    number_results=self.number_results,
                    timeout=max(0.0, self.deadline - time.time()),
                    interval=self.poll_interval,
                )
            event = outcome_event(outcome, attempt=self.attempt)
        except Exception as exc:  # the worker decides; the triggerer must not crash
            key = config.api_key if config is not None else None
            event = {
                "status": "failed",
                "task_uuid": self.task_uuid,
                "attempt": self.attempt,
                "results": [],
                "error_code": getattr(exc, "code", None) or type(exc).__name__,
                # Belt and braces: no key and no URL signature in an event (it is stored).
                "error_message": redact_text(
                    str(exc), [key.get_secret_value() if key is not None else None]
                ),
                "retryable": False,
                # A bad connection or an option is for a person to fix; anything else (the
                # API out of reach) a later try under the same taskUUID may get through.
                "permanent": isinstance(exc, PermanentError | ValueError),
            }
        yield TriggerEvent(event)  # type: ignore[no-untyped-call,unused-ignore]  # untyped

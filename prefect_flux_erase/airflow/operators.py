"""`FluxEraseImageOperator`: erase one image in a DAG, deferring while the API works.

The operator reads and validates the image and mask on the worker (the same checks and error
codes as a manifest row), submits one task under a taskUUID derived from what is sent, and, in
deferrable mode, hands the wait to :class:`~prefect_flux_erase.airflow.triggers.FluxEraseTrigger`
so no worker slot is held while the image is made. When the trigger fires, the task resumes on
a worker, fetches the result, writes it to ``output_uri`` (atomically) and returns a small XCom:
``{"task_uuid", "attempt", "output_uri", "image_uuid", "cost"}`` — URIs, never image bytes.

Why retries are safe: the taskUUID depends only on the inputs and the options, so any later
try, any later DAG run, and a try that was killed mid-wait send the same UUID; the API answers
``conflictTaskUUID`` and the result is collected with ``getResponse``, not made and billed
again. A task that failed with a transient error on the server (``timeoutProvider``) moves to the
next UUID of a fixed chain (at most ``max_attempts``), the same chain on every try.

Example:
    ```python
    from prefect_flux_erase.airflow import FluxEraseImageOperator

    erase = FluxEraseImageOperator(
        task_id="erase",
        image_uri="s3://photos/{{ ds }}/cat.jpg",
        mask_uri="s3://photos/{{ ds }}/cat-mask.png",
        output_uri="s3://photos-clean/{{ ds }}/cat.jpg",
        flux_erase_conn_id="flux_erase_default",
    )
    ```
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from prefect_flux_erase.airflow.hooks import FluxEraseHook
from prefect_flux_erase.airflow.provider_info import DEFAULT_CONN_ID
from prefect_flux_erase.airflow.single_image import (
    ImageRejected,
    collect,
    default_options,
    outcome_event,
    prepare_task,
    write_output,
)
from prefect_flux_erase.airflow.triggers import FluxEraseTrigger
from prefect_flux_erase.errors import FluxEraseError
from prefect_flux_erase.runware.options import EraseOptions
from prefect_flux_erase.runware.redaction import redact_url

if TYPE_CHECKING:
    from airflow.sdk import Context

    from prefect_flux_erase.runware.config import RunwareConfig

#: Seconds a submitted image may take before the try gives up waiting (it is collected later).
DEFAULT_POLL_TIMEOUT = 900.0


class FluxEraseTaskError(FluxEraseError, AirflowException):
    """A task ended without a result in a way a later try may fix (the same taskUUID is sent
    again, so it cannot be billed twice); ``code`` is the API's or the pipeline's code.

    Example:
        >>> err = FluxEraseTaskError("still running", code="pollTimeout")
        >>> err.code, str(err)
        ('pollTimeout', '[pollTimeout] still running')
    """

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(f"[{code}] {message}" if code else message, code=code)


def _as_options(value: EraseOptions | Mapping[str, Any] | None) -> EraseOptions:
    if value is None:
        return default_options()
    if isinstance(value, EraseOptions):
        return value
    return EraseOptions.model_validate(dict(value))


class FluxEraseImageOperator(BaseOperator):
    """Erase the masked object of one image and write the result to ``output_uri``.

    Args:
        image_uri: URI of the photo (templated; any fsspec backend).
        mask_uri: URI of the mask, white = erase (templated).
        output_uri: URI to write the result to (templated).
        flux_erase_conn_id: The ``flux_erase`` connection (base URL and API key).
        options: FLUX Erase options (:class:`~prefect_flux_erase.runware.options.EraseOptions`
            or a dict of its fields); default the API's defaults plus ``include_cost``.
        dilate_pixels: This image's ``settings.dilatePixels`` (templated; wins over options).
        storage_options: fsspec options for ``image_uri`` and ``mask_uri``.
        output_storage_options: fsspec options for ``output_uri`` (default
            ``storage_options``).
        pass_urls: Send public http(s) inputs as URLs instead of their bytes.
        deferrable: Wait in the triggerer (default); ``False`` polls on the worker, which
            suits small jobs and setups without a triggerer.
        poll_interval: Seconds between ``getResponse`` polls (growing to 10 s).
        poll_timeout: Seconds to wait for the result in one try; then the try fails with
            ``pollTimeout`` and a retry collects the same task.
        max_attempts: TaskUUIDs an image may use after transient task failures on the server.

    Example:
        ```python
        FluxEraseImageOperator(task_id="erase", image_uri="s3://b/a.jpg",
                               mask_uri="s3://b/a-mask.png", output_uri="s3://b/out/a.jpg",
                               options={"output_format": "PNG"}, retries=2)
        ```
    """

    template_fields: Sequence[str] = ("image_uri", "mask_uri", "output_uri", "dilate_pixels")
    ui_color = "#e8e4f7"

    def __init__(
        self,
        *,
        image_uri: str,
        mask_uri: str,
        output_uri: str,
        flux_erase_conn_id: str = DEFAULT_CONN_ID,
        options: EraseOptions | Mapping[str, Any] | None = None,
        dilate_pixels: int | str | None = None,
        storage_options: Mapping[str, Any] | None = None,
        output_storage_options: Mapping[str, Any] | None = None,
        pass_urls: bool = False,
        deferrable: bool = True,
        poll_interval: float = 1.0,
        poll_timeout: float = DEFAULT_POLL_TIMEOUT,
        max_attempts: int = 3,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # Checked when the DAG is parsed: a bad option should never reach a worker.
        self.options = _as_options(options)
        if self.options.number_results != 1:
            raise ValueError(
                f"{self.task_id}: options.number_results must be 1, since the operator writes "
                f"one image to output (got {self.options.number_results}); for variations use "
                "a manifest (flux_erase_manifest)"
            )
        if poll_timeout <= 0 or poll_interval <= 0:
            raise ValueError(f"{self.task_id}: poll_timeout and poll_interval must be > 0 seconds")
        if max_attempts < 1:
            raise ValueError(f"{self.task_id}: max_attempts must be >= 1; got {max_attempts}")
        self.image_uri = image_uri
        self.mask_uri = mask_uri
        # Not ``self.output``: that is BaseOperator's XComArg of this task's return value.
        self.output_uri = output_uri
        self.flux_erase_conn_id = flux_erase_conn_id
        self.dilate_pixels = dilate_pixels
        self.storage_options = dict(storage_options or {})
        self.output_storage_options = (
            dict(output_storage_options)
            if output_storage_options is not None
            else self.storage_options
        )
        self.pass_urls = pass_urls
        self.deferrable = deferrable
        self.poll_interval = float(poll_interval)
        self.poll_timeout = float(poll_timeout)
        self.max_attempts = int(max_attempts)
        self._submitted: str | None = None

    # -- Airflow entry points -------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any]:
        """Validate, submit attempt 1 (or find it submitted before), then wait or defer."""
        return self._from_attempt(1)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume after the trigger fired: write the result, or move on, or fail with a code."""
        self.log.info(
            "task %s (attempt %s) ended: %s",
            event.get("task_uuid"),
            event["attempt"],
            event["status"],
        )
        return self._after(event)

    def on_kill(self) -> None:
        """Nothing to cancel or undo: a retry sends the same taskUUID and collects the task the
        killed try submitted (no second charge), and outputs are written atomically."""
        if self._submitted:
            self.log.info(
                "killed while task %s runs on the API; a retry collects it without paying twice",
                self._submitted,
            )

    # -- steps ----------------------------------------------------------------------------

    def _config(self) -> RunwareConfig:
        return FluxEraseHook(self.flux_erase_conn_id).get_conn()

    def _from_attempt(self, attempt: int) -> dict[str, Any]:
        config = self._config()
        while True:
            event = asyncio.run(self._submit(config, attempt))
            if event["status"] == "timeout" and self.deferrable:
                self.defer(
                    trigger=FluxEraseTrigger(
                        event["task_uuid"],
                        flux_erase_conn_id=self.flux_erase_conn_id,
                        deadline=time.time() + self.poll_timeout,
                        attempt=attempt,
                        number_results=1,
                        poll_interval=self.poll_interval,
                    ),
                    method_name="execute_complete",
                )
            if self._next_attempt(event):
                attempt += 1
                continue
            return self._after(event, config)

    async def _submit(self, config: RunwareConfig, attempt: int) -> dict[str, Any]:
        try:
            task = await prepare_task(
                self.image_uri,
                self.mask_uri,
                options=self.options,
                storage_options=self.storage_options,
                dilate_pixels=_as_int(self.dilate_pixels),
                pass_urls=self.pass_urls,
                attempt=attempt,
            )
        except ImageRejected as exc:
            raise AirflowFailException(f"[{exc.code}] {exc}") from None
        uuid = task.task_uuid
        async with config.open_client() as client:
            outcome = (await client.submit([task]))[uuid]
            self._submitted = uuid
            self.log.info(
                "task %s (attempt %d) sent to %s: %s",
                uuid,
                attempt,
                redact_url(config.base_url),
                outcome.state,
            )
            if outcome.needs_poll:
                # Look once before deferring: on a rerun the task is usually finished already.
                budget = 0.0 if self.deferrable else self.poll_timeout
                outcome = await collect(client, uuid, timeout=budget, interval=self.poll_interval)
        return outcome_event(outcome, attempt=attempt)

    def _next_attempt(self, event: Mapping[str, Any]) -> bool:
        retry = (
            event["status"] == "failed"
            and bool(event.get("retryable"))
            and int(event["attempt"]) < self.max_attempts
        )
        if retry:
            self.log.warning(
                "task %s failed with %s, which may pass on a new task: sending attempt %d",
                event["task_uuid"],
                event.get("error_code"),
                int(event["attempt"]) + 1,
            )
        return retry

    def _after(
        self, event: Mapping[str, Any], config: RunwareConfig | None = None
    ) -> dict[str, Any]:
        status = event["status"]
        if status == "success":
            return asyncio.run(self._write(config or self._config(), event))
        if status == "timeout":
            raise FluxEraseTaskError(
                f"task {event['task_uuid']} was not finished after {self.poll_timeout:g} s; it "
                "keeps running on the API, and a retry of this Airflow task collects it under "
                "the same taskUUID without paying twice (give the task retries, or raise "
                "poll_timeout)",
                code="pollTimeout",
            )
        if self._next_attempt(event):
            return self._from_attempt(int(event["attempt"]) + 1)
        code, message = event.get("error_code"), str(event.get("error_message") or "failed")
        if event.get("permanent"):
            raise AirflowFailException(f"[{code}] {message}")
        raise FluxEraseTaskError(message, code=code)

    async def _write(self, config: RunwareConfig, event: Mapping[str, Any]) -> dict[str, Any]:
        async with config.open_client() as client:
            xcom = await write_output(client, event, self.output_uri, self.output_storage_options)
        self.log.info(
            "wrote %s (task %s, cost %s)",
            redact_url(self.output_uri),
            xcom["task_uuid"],
            xcom["cost"],
        )
        return xcom


def _as_int(value: int | str | None) -> int | None:
    # A templated dilate_pixels arrives as a string ("{{ params.dilate }}" → "15").
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            raise AirflowFailException(
                f"[invalidOption] settings.dilatePixels: must be an integer from 0 to 50; "
                f"got {value!r}"
            ) from None
    return value

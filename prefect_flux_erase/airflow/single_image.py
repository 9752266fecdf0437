"""One image through the API in steps that can stop and resume: prepare, submit, collect, write.

The Airflow operator runs these steps on a worker and the trigger runs ``collect`` in the
triggerer, so each step takes and returns small plain values (a task, a JSON-safe event dict),
never an open client or image bytes. Nothing here imports Airflow.

- :func:`prepare_task` validates the image and mask exactly as a manifest row is validated (it
  goes through the pipeline's row preparation), then names the task after what is sent:
  the same inputs and options give the same taskUUID in every DAG run and every retry, so a
  second submission is answered ``conflictTaskUUID`` and collected, never billed again.
- :func:`outcome_event` turns a :class:`~prefect_flux_erase.runware.task_outcome.TaskOutcome`
  into the trigger's event payload: URLs, UUIDs and costs only.
- :func:`write_output` fetches the result and writes it to the output URI, atomically.

Example:
    ```python
    task = await prepare_task("s3://b/photo.jpg", "s3://b/mask.png", options=EraseOptions())
    async with config.open_client() as client:
        outcome = (await client.submit([task]))[task.task_uuid]
        if outcome.needs_poll:
            outcome = await collect(client, task.task_uuid, timeout=600)
        event = outcome_event(outcome, attempt=1)
        if event["status"] == "success":
            await write_output(client, event, "s3://b/out/photo.jpg")
    ```
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

from prefect_flux_erase.manifest.plan import ManifestSpec
from prefect_flux_erase.runware.client import RunwareClient
from prefect_flux_erase.runware.errors import PermanentError, TransientError
from prefect_flux_erase.runware.ids import task_uuid
from prefect_flux_erase.runware.models import ImageInferenceTask
from prefect_flux_erase.runware.options import EraseOptions
from prefect_flux_erase.runware.polling import PollPolicy
from prefect_flux_erase.runware.responses import ResultItem
from prefect_flux_erase.runware.task_outcome import TaskOutcome
from prefect_flux_erase.shards.job import ShardJob
from prefect_flux_erase.shards.rows import RowTicket, prepare_row
from prefect_flux_erase.storage.files import write_bytes

#: Event statuses: finished with results, finished with an error, or still running at the
#: deadline (``timeout``: collect it later under the same taskUUID, nothing is lost).
EVENT_STATUSES: Final = ("success", "failed", "timeout")

_ROW_KEY = "image"


class ImageRejected(PermanentError, ValueError):
    """The image, the mask or an option was rejected before any request: a retry cannot help.

    ``code`` is the same stable code a manifest row with these inputs fails with.

    Example:
        >>> err = ImageRejected("inputs.mask: the mask is all black", code="emptyMask")
        >>> err.code, isinstance(err, ValueError)
        ('emptyMask', True)
    """


def default_options() -> EraseOptions:
    """The operators' default options: the API's defaults plus ``includeCost``, so that every
    result reports what it cost (as the Prefect flows do).

    Example:
        >>> default_options().include_cost
        True
    """
    return EraseOptions(include_cost=True)


def _fingerprint(task: ImageInferenceTask) -> str:
    # Everything sent except the UUID itself: inputs (their bytes, or the public URLs when
    # pass_urls) and every option.
    wire = {k: v for k, v in task.to_wire().items() if k != "taskUUID"}
    payload = json.dumps(wire, sort_keys=True, default=str)
    return "airflow-image:" + hashlib.sha256(payload.encode("utf-8")).hexdigest()


async def prepare_task(
    image: str,
    mask: str,
    *,
    options: EraseOptions,
    storage_options: Mapping[str, Any] | None = None,
    dilate_pixels: int | None = None,
    pass_urls: bool = False,
    attempt: int = 1,
) -> ImageInferenceTask:
    """Read, validate and build the ``imageInference`` task of one image; name it by content.

    Args:
        image: URI of the photo (any fsspec backend).
        mask: URI of the mask (white = erase).
        options: The FLUX Erase options.
        storage_options: fsspec options for both URIs.
        dilate_pixels: This image's ``settings.dilatePixels`` (wins over ``options``).
        pass_urls: Send public http(s) inputs as URLs instead of their bytes.
        attempt: Which taskUUID of the chain to use (a new one after a transient task failure).

    Raises:
        ImageRejected: a bad input or option, with the code a manifest row would get.

    Example:
        ```python
        task = await prepare_task("memory://in/photo.png", "memory://in/mask.png",
                                  options=EraseOptions(output_format="PNG"))
        ```
    """
    job = ShardJob(
        manifest=ManifestSpec(image),
        output="memory://unused",
        run_key="airflow-image",
        backend="runware",
        options=options,
        input_storage_options=storage_options,
        pass_urls=pass_urls,
        upload_url_column=None,
    )
    ticket = RowTicket(
        row_index=0, row_key=_ROW_KEY, image_uri=image, mask_uri=mask, dilate_pixels=dilate_pixels
    )
    delivery = options.delivery_method or "async"
    prepared = await prepare_row(ticket, job, delivery=delivery, keep_decoded=False)
    if isinstance(prepared, RowTicket):
        raise ImageRejected(prepared.error_message or "rejected", code=prepared.error_code)
    uuid = task_uuid(_fingerprint(prepared.task), _ROW_KEY, attempt)
    return prepared.task.model_copy(update={"task_uuid": uuid})


def poll_policy(interval: float, timeout: float) -> PollPolicy:
    """The ``getResponse`` cadence of one image: first look at once, then every ``interval``
    seconds growing to 10 s, for ``timeout`` seconds in all.

    Example:
        >>> poll_policy(0.5, 60).initial_delay, poll_policy(0.5, 60).timeout
        (0.0, 60.0)
    """
    return PollPolicy(
        initial_delay=0.0,
        interval=interval,
        multiplier=1.5,
        max_interval=max(interval, 10.0),
        timeout=max(0.0, float(timeout)),
    )


async def collect(
    client: RunwareClient,
    uuid: str,
    *,
    number_results: int = 1,
    timeout: float,  # noqa: ASYNC109 - a budget with a defined result, as in client.poll
    interval: float = 1.0,
) -> TaskOutcome:
    """Poll one task until it is done or failed, or ``timeout`` seconds pass (``timeout``).

    Example:
        ```python
        outcome = await collect(client, task.task_uuid, timeout=600)
        ```
    """
    policy = poll_policy(interval, timeout)
    polled = await client.poll({uuid: number_results}, timeout=policy.timeout, policy=policy)
    return polled[uuid]


def outcome_event(outcome: TaskOutcome, *, attempt: int) -> dict[str, Any]:
    """The JSON-safe summary of a finished (or timed-out) task: what the trigger fires.

    ``retryable`` is true only for a definite, transient task failure (``timeoutProvider``…):
    the next attempt's taskUUID may then be sent. ``permanent`` marks an error no retry can
    fix (a rejected option, content policy, credits). Results carry URLs and UUIDs, never bytes.

    Example:
        >>> from prefect_flux_erase.runware.task_outcome import TaskOutcome
        >>> item = ResultItem.model_validate({"taskUUID": "t", "imageUUID": "i",
        ...                                   "imageURL": "https://x/i.jpg", "cost": 0.0019})
        >>> outcome_event(TaskOutcome("t", "done", results=[item]), attempt=1)["results"]
        [{'image_uuid': 'i', 'image_url': 'https://x/i.jpg', 'cost': 0.0019, 'inline': False}]
    """
    status = {"done": "success", "failed": "failed", "timeout": "timeout"}.get(
        outcome.state, "timeout"
    )
    error = outcome.error
    return {
        "status": status,
        "task_uuid": outcome.task_uuid,
        "attempt": attempt,
        "results": [
            {
                "image_uuid": item.image_uuid,
                "image_url": item.image_url or item.media_url,
                "cost": item.cost,
                "inline": bool(item.image_base64_data or item.image_data_uri),
            }
            for item in outcome.results
        ],
        "error_code": None if error is None else error.code,
        "error_message": None if error is None else str(error),
        "retryable": bool(
            outcome.state == "failed" and outcome.definite and isinstance(error, TransientError)
        ),
        "permanent": bool(outcome.state == "failed" and isinstance(error, PermanentError)),
    }


async def write_output(
    client: RunwareClient,
    event: Mapping[str, Any],
    output: str,
    storage_options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Fetch the event's first result and write it to ``output``; return the XCom summary.

    A result delivered inline (``outputType`` base64Data or dataURI) is not in the event (no
    image bytes travel through the triggerer): it is read again with one ``getResponse``, which
    repeats every finished result.

    Example:
        ```python
        xcom = await write_output(client, event, "s3://bucket/out/photo.jpg", so)
        # {"task_uuid": "...", "output_uri": "s3://bucket/out/photo.jpg", "cost": 0.0019, ...}
        ```
    """
    uuid = str(event["task_uuid"])
    first = event["results"][0]
    if first.get("image_url") and not first.get("inline"):
        item = ResultItem.model_validate(
            {"taskUUID": uuid, "imageUUID": first.get("image_uuid"), "imageURL": first["image_url"]}
        )
    else:
        again = await collect(client, uuid, timeout=0.0)
        if not again.results:
            raise TransientError(f"task {uuid} finished but its result could not be read again")
        item = again.results[0]
    data = await client.fetch_output(item)
    await asyncio.to_thread(write_bytes, output, data, storage_options)
    costs = [r.get("cost") for r in event["results"] if r.get("cost") is not None]
    return {
        "task_uuid": uuid,
        "attempt": int(event.get("attempt", 1)),
        "output_uri": output,
        "image_uuid": first.get("image_uuid"),
        "cost": round(sum(costs), 6) if costs else None,
    }

"""`aerase_image` / `erase_image`: one image in, one erased image out (bytes or a written URI).

For small jobs and examples. Large jobs belong to :func:`~prefect_flux_erase.erase_manifest`,
which batches rows per task run; these tasks cost one Prefect task run per image.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal

from prefect import task

from prefect_flux_erase.blocks.credentials import RunwareCredentials
from prefect_flux_erase.blocks.settings import FluxEraseSettings
from prefect_flux_erase.shards.single_image import erase_single, erase_to, options_for_output
from prefect_flux_erase.shards.stage_loop import run_stage
from prefect_flux_erase.tasks.stage_options import stage_task_options

#: Seconds one image may take, end to end, before it is cancelled and retried.
IMAGE_TIMEOUT = 900.0


class _KeepStandaloneRunLogsLocal(logging.Filter):
    """Marks the logs of these tasks' standalone runs (called outside a flow) as local only.

    A task run outside a flow has no flow run to attach its logs to: Prefect's API log handler
    drops them anyway, but only after a ``UserWarning`` per call ("attempted to send logs to the
    API without a flow run id"). ``send_to_api=False`` is Prefect's own per-record opt-out, so
    the logs still reach the console and nothing else changes; runs inside a flow are untouched.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "task_name", None) in _SINGLE_TASKS and not getattr(
            record, "flow_run_id", None
        ):
            record.send_to_api = False
        return True


_SINGLE_TASKS = frozenset({"erase_image", "aerase_image"})
logging.getLogger("prefect.task_runs").addFilter(_KeepStandaloneRunLogsLocal())


@task(
    name="aerase_image",
    **stage_task_options(),
    timeout_seconds=IMAGE_TIMEOUT,
)
async def aerase_image(
    image: bytes | str,
    mask: bytes | str,
    *,
    output: str | None = None,
    backend: Literal["local", "runware"] = "local",
    credentials: RunwareCredentials | None = None,
    settings: FluxEraseSettings | None = None,
    dilate_pixels: int | None = None,
    storage_options: Mapping[str, Any] | None = None,
    output_storage_options: Mapping[str, Any] | None = None,
    pass_urls: bool = False,
    local_engine: str = "local",
) -> bytes | str:
    """Erase the masked object from one image (async).

    Args:
        image: The photo: bytes, or a URI on any fsspec backend.
        mask: The mask (white = erase), same size as the image: bytes or a URI.
        output: Where to write the result; ``None`` returns the bytes instead. Its extension
            picks the format (``.png`` PNG, ``.jpg``/``.jpeg`` JPG, ``.webp`` WEBP); settings
            that name another ``output_format`` are refused (``InvalidOptionError``).
        backend: ``"local"`` (embedded engine) or ``"runware"`` (the API or the emulator).
        credentials: For ``runware``; default ``RUNWARE_API_KEY``/``RUNWARE_BASE_URL``.
        settings: FLUX Erase options (``numberResults`` must be 1).
        dilate_pixels: Overrides ``settings.dilate_pixels`` for this image.
        storage_options: fsspec options for reading URI inputs.
        output_storage_options: fsspec options for ``output`` (default ``storage_options``).
        pass_urls: Send public http(s) inputs as URLs rather than inline bytes.
        local_engine: Engine of the ``local`` backend.

    Returns:
        The erased image's bytes, or ``output`` once written.

    Raises:
        InputReadError, ImageInputError, InvalidOptionError: the input or option a manifest
            run would fail the row for, with the same code (``emptyMask``,
            ``imageTooSmall``, ``invalidMaskDimensions``…), before any request.

    Example:
        ```python
        png = await aerase_image.fn(photo_bytes, mask_bytes,
                                    settings=FluxEraseSettings(output_format="PNG"))
        ```
    """
    options = options_for_output(
        (settings or FluxEraseSettings()).to_options(),
        output,
        format_given=settings is not None and "output_format" in settings.model_fields_set,
    )
    data = await erase_single(
        image,
        mask,
        backend=backend,
        settings=options,
        runware=credentials.to_config() if credentials is not None else None,
        storage_options=storage_options,
        dilate_pixels=dilate_pixels,
        pass_urls=pass_urls,
        local_engine=local_engine,
    )
    return await erase_to(
        output,
        data,
        output_storage_options if output_storage_options is not None else storage_options,
    )


@task(
    name="erase_image",
    **stage_task_options(),
)
def erase_image(
    image: bytes | str,
    mask: bytes | str,
    *,
    output: str | None = None,
    backend: Literal["local", "runware"] = "local",
    credentials: RunwareCredentials | None = None,
    settings: FluxEraseSettings | None = None,
    dilate_pixels: int | None = None,
    storage_options: Mapping[str, Any] | None = None,
    output_storage_options: Mapping[str, Any] | None = None,
    pass_urls: bool = False,
    local_engine: str = "local",
) -> bytes | str:
    """Erase the masked object from one image (blocking twin of :func:`aerase_image`).

    Runs :func:`aerase_image`'s body on an event loop of its own (a sync task reuses the flow's
    Prefect client; the timeout is enforced on that loop); the arguments are the same.

    Example:
        ```python
        erase_image("photos/cat.jpg", "masks/cat.png", output="erased/cat.jpg")
        ```
    """
    result: bytes | str = run_stage(
        aerase_image.fn(
            image,
            mask,
            output=output,
            backend=backend,
            credentials=credentials,
            settings=settings,
            dilate_pixels=dilate_pixels,
            storage_options=storage_options,
            output_storage_options=output_storage_options,
            pass_urls=pass_urls,
            local_engine=local_engine,
        ),
        IMAGE_TIMEOUT,
    )
    return result

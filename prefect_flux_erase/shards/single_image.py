"""Erase one image (bytes or URI) on either backend, Prefect-free: the small-job path."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from prefect_flux_erase.engine.imageio import decode_image, decode_mask
from prefect_flux_erase.runware.errors import InvalidOptionError
from prefect_flux_erase.runware.ids import task_uuid
from prefect_flux_erase.runware.media import to_data_uri
from prefect_flux_erase.shards.api_backend import PIPELINE_POLL_POLICY
from prefect_flux_erase.shards.local_backend import erase_and_encode, resolve_engine, result_seed
from prefect_flux_erase.shards.rows import row_dilate_pixels
from prefect_flux_erase.storage.files import is_public_http, read_bytes, write_bytes

if TYPE_CHECKING:
    from prefect_flux_erase.runware.config import RunwareConfig
    from prefect_flux_erase.runware.options import EraseOptions


def _load(source: bytes | str, storage_options: Mapping[str, Any] | None) -> bytes:
    return source if isinstance(source, bytes) else read_bytes(source, storage_options)


async def erase_single(
    image: bytes | str,
    mask: bytes | str,
    *,
    backend: str,
    settings: EraseOptions,
    runware: RunwareConfig | None = None,
    storage_options: Mapping[str, Any] | None = None,
    dilate_pixels: int | None = None,
    pass_urls: bool = False,
    local_engine: str = "local",
) -> bytes:
    """Erase one image and return the result's bytes (validation first, as for manifest rows).

    The taskUUID is derived from the inputs and options, so erasing the same thing twice is
    answered from the first task (``conflictTaskUUID`` → ``getResponse``), not charged twice.

    Raises:
        InputReadError, ImageInputError, InvalidOptionError: bad input, with a stable code.
        RunwareError: the API's error for this task.

    Example:
        ```python
        png = await erase_single(photo_bytes, mask_bytes, backend="local",
                                 settings=EraseOptions(output_format="PNG"))
        ```
    """
    if settings.number_results != 1:
        raise InvalidOptionError(
            "numberResults: erase_image makes one image; use erase_images or erase_manifest "
            f"for variations (got {settings.number_results})",
            parameter="numberResults",
        )
    dilate = row_dilate_pixels(dilate_pixels)
    image_bytes, mask_bytes = await asyncio.gather(
        asyncio.to_thread(_load, image, storage_options),
        asyncio.to_thread(_load, mask, storage_options),
    )
    decoded = await asyncio.to_thread(decode_image, image_bytes)
    binary = await asyncio.to_thread(decode_mask, mask_bytes, decoded.size)
    digest = hashlib.sha256(image_bytes + b"\x00" + mask_bytes).hexdigest()
    key = task_uuid(f"single:{backend}:{settings.wire_options()}", digest, 1)
    overrides: dict[str, Any] = {}
    if dilate is not None:
        overrides["settings"] = {"dilatePixels": dilate}
    if backend == "local":
        task = settings.to_task(key, image="local", mask="local", overrides=overrides)
        resolve_engine(local_engine)
        effective = (
            task.settings.dilate_pixels
            if task.settings is not None and task.settings.dilate_pixels is not None
            else 10
        )
        return await asyncio.to_thread(
            erase_and_encode,
            local_engine,
            decoded.rgb,
            decoded.alpha,
            binary,
            effective,
            result_seed(key, 0),
            settings.output_format,
            settings.output_quality,
        )
    if backend != "runware":
        raise ValueError(f"backend must be 'local' or 'runware'; got {backend!r}")
    from prefect_flux_erase.runware.config import RunwareConfig

    def form(source: bytes | str, data: bytes) -> str:
        if pass_urls and isinstance(source, str) and is_public_http(source):
            return source
        return to_data_uri(data)

    task = settings.to_task(
        key, image=form(image, image_bytes), mask=form(mask, mask_bytes), overrides=overrides
    )
    del image_bytes, mask_bytes
    # The manifest pipeline's cadence: a finished image should not wait a second to be seen.
    client = (runware or RunwareConfig()).open_client(poll_policy=PIPELINE_POLL_POLICY)
    async with client:
        items = await client.run(task)
        return await client.fetch_output(items[0])


async def erase_to(
    output: str | None,
    data: bytes,
    storage_options: Mapping[str, Any] | None = None,
) -> bytes | str:
    """Write ``data`` to ``output`` and return its URI, or return the bytes when no output.

    Example:
        >>> asyncio.run(erase_to(None, b"png"))
        b'png'
    """
    if output is None:
        return data
    await asyncio.to_thread(write_bytes, output, data, storage_options)
    return output

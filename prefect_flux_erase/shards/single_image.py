"""Erase one image (bytes or URI) on either backend, Prefect-free: the small-job path.

A single image takes the manifest rows' own path through validation
(:func:`~prefect_flux_erase.shards.rows.prepare_checked`): an input that a manifest run fails
with a code is refused by ``erase_image`` with the same code, on both backends.
"""

from __future__ import annotations

import asyncio
import hashlib
import posixpath
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from prefect_flux_erase.manifest.plan import ManifestSpec
from prefect_flux_erase.runware.errors import InvalidOptionError
from prefect_flux_erase.runware.ids import task_uuid
from prefect_flux_erase.shards.api_backend import PIPELINE_POLL_POLICY
from prefect_flux_erase.shards.job import ShardJob
from prefect_flux_erase.shards.local_backend import erase_and_encode, resolve_engine, result_seed
from prefect_flux_erase.shards.remote_inputs import input_kind
from prefect_flux_erase.shards.rows import (
    PreparedRow,
    RowTicket,
    prepare_checked,
    row_dilate_pixels,
)
from prefect_flux_erase.storage.files import read_bytes, write_bytes

if TYPE_CHECKING:
    from prefect_flux_erase.runware.config import RunwareConfig
    from prefect_flux_erase.runware.options import EraseOptions

#: Output file extensions and the ``outputFormat`` each one asks for.
FORMAT_OF_EXTENSION = {".jpg": "JPG", ".jpeg": "JPG", ".png": "PNG", ".webp": "WEBP"}


def _load(source: bytes | str, kind: str, options: Mapping[str, Any] | None) -> bytes | str:
    """The input's bytes, read once here (its digest names the task); a URL the API fetches
    itself (``pass_urls``) or an image UUID stays as it is."""
    if isinstance(source, bytes) or kind != "file":
        return source
    return read_bytes(source, options)


def options_for_output(
    options: EraseOptions, output: str | None, *, format_given: bool
) -> EraseOptions:
    """The options with ``outputFormat`` taken from ``output``'s extension, when it has one.

    ``erased/cat.png`` asks for PNG, ``cat.jpg``/``cat.jpeg`` for JPG, ``cat.webp`` for WEBP;
    another extension, or none, keeps ``options.output_format``.

    Raises:
        InvalidOptionError: ``format_given`` (the caller chose ``output_format``) and the name
            asks for another format: the file would hold one format under another's name.

    Example:
        >>> from prefect_flux_erase.runware.options import EraseOptions
        >>> options_for_output(EraseOptions(), "out/cat.png", format_given=False).output_format
        'PNG'
    """
    if output is None:
        return options
    extension = posixpath.splitext(output.split("?", 1)[0])[1].lower()
    wanted = FORMAT_OF_EXTENSION.get(extension)
    if wanted is None or wanted == options.output_format:
        return options
    if format_given:
        raise InvalidOptionError(
            f"outputFormat: the settings ask for {options.output_format} but output "
            f"{output!r} ends in {extension}; name the output *.{options.output_format.lower()}"
            f" or set output_format={wanted!r}",
            parameter="outputFormat",
        )
    return options.model_copy(update={"output_format": wanted})


def _single_job(
    backend: str,
    settings: EraseOptions,
    runware: RunwareConfig | None,
    storage_options: Mapping[str, Any] | None,
    pass_urls: bool,
    local_engine: str,
) -> ShardJob:
    """A one-row job: what :func:`prepare_checked` needs to validate and build the task."""
    if backend not in ("local", "runware"):
        raise ValueError(f"backend must be 'local' or 'runware'; got {backend!r}")
    mode: Literal["local", "runware"] = "local" if backend == "local" else "runware"
    return ShardJob(
        manifest=ManifestSpec("(one image)"),
        output="",
        run_key="single",
        backend=mode,
        options=settings,
        runware=runware,
        input_storage_options=storage_options,
        pass_urls=pass_urls,
        local_engine=local_engine,
        dedupe=False,  # one row: nothing to share a task with
    )


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
    """Erase one image and return the result's bytes, validated as a manifest row is.

    The taskUUID is derived from the inputs and options, so erasing the same thing twice is
    answered from the first task (``conflictTaskUUID`` → ``getResponse``), not charged twice.

    Raises:
        InputReadError, ImageInputError, InvalidOptionError: bad input, with the code a
            manifest row with the same input fails with (``emptyMask``, ``imageTooSmall``,
            ``invalidMaskDimensions``, ``invalidImage``, ``inputNotFound``…).
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
    job = _single_job(backend, settings, runware, storage_options, pass_urls, local_engine)
    dilate = row_dilate_pixels(dilate_pixels)
    if backend == "local":
        resolve_engine(local_engine)  # an unknown engine fails before anything is read
    column = job.manifest.image_column
    image_in, mask_in = await asyncio.gather(
        asyncio.to_thread(_load, image, input_kind(image, column, job), storage_options),
        asyncio.to_thread(_load, mask, input_kind(mask, column, job), storage_options),
    )
    digest = hashlib.sha256()
    for part in (image_in, mask_in):
        digest.update(part if isinstance(part, bytes) else part.encode())
        digest.update(b"\x00")
    # The per-image dilation is part of the request, so it is part of the task's identity.
    key = task_uuid(f"single:{backend}:{settings.wire_options()}:{dilate}", digest.hexdigest(), 1)
    ticket = RowTicket(
        row_index=0,
        row_key="image",
        image_uri=image_in,
        mask_uri=mask_in,
        dilate_pixels=dilate_pixels,
        task_uuid=key,
    )
    local = backend == "local"
    prepared = await asyncio.to_thread(
        prepare_checked, ticket, job, delivery=None, keep_decoded=local
    )
    del image_in, mask_in, ticket
    assert isinstance(prepared, PreparedRow)  # no result cache, no cost cap here
    task = prepared.task
    if local:
        assert prepared.image is not None
        assert prepared.mask is not None
        effective = (
            task.settings.dilate_pixels
            if task.settings is not None and task.settings.dilate_pixels is not None
            else 10
        )
        return await asyncio.to_thread(
            erase_and_encode,
            local_engine,
            prepared.image.rgb,
            prepared.image.alpha,
            prepared.mask,
            effective,
            result_seed(key, 0),
            settings.output_format,
            settings.output_quality,
        )
    from prefect_flux_erase.runware.config import RunwareConfig

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

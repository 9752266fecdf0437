"""``imageUpload`` and ``mediaStorage``: storing images whose UUIDs later serve as inputs (§7).

Example:
    ```python
    prepared = await prepare_image_upload(backend, {"taskType": "imageUpload",
                                                    "taskUUID": "…", "image": "data:…"},
                                          dry_run=False)
    (await prepared.commit()).data  # [{"taskType": "imageUpload", "imageUUID": …, "imageURL": …}]
    ```
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from PIL import Image

from prefect_flux_erase.emulator.envelopes import Outcome, error_object
from prefect_flux_erase.emulator.records import Prepared, TaskRecord
from prefect_flux_erase.emulator.request_parsing import (
    TaskRejected,
    parse_image_upload,
    parse_media_storage,
)
from prefect_flux_erase.engine.imageio import ImageInputError, decode_image
from prefect_flux_erase.runware.ids import deterministic_uuid4
from prefect_flux_erase.runware.media import ext_for_format, mime_for_format, sniff_mime

if TYPE_CHECKING:
    from prefect_flux_erase.emulator.backend import EmulatorBackend

#: Uploaded images live this long (the docs: deleted 30 days after last use).
UPLOAD_TTL: Final = 30 * 24 * 3600
#: Uploaded images are capped at this many pixels on the long side (documented for imageUpload).
UPLOAD_MAX_SIDE: Final = 2048
_EXT_BY_MIME: Final = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}


def normalise_upload(data: bytes, parameter: str) -> tuple[bytes, str, str]:
    """Check an uploaded file is an image; cap it at 2048 px on the long side (in a thread).

    Returns (bytes, MIME type, extension). Raises ``ImageInputError`` for a non-image.

    Example:
        >>> buf = io.BytesIO(); Image.new("RGB", (3000, 1000)).save(buf, "PNG")
        >>> data, mime, ext = normalise_upload(buf.getvalue(), "image")
        >>> Image.open(io.BytesIO(data)).size, mime
        ((2048, 683), 'image/png')
    """
    image = decode_image(data, parameter=parameter)
    mime = sniff_mime(data)
    if max(image.size) <= UPLOAD_MAX_SIDE and mime in _EXT_BY_MIME:
        return data, mime, _EXT_BY_MIME[mime]
    # Re-encode: too large, or a format (GIF, BMP) that outputs never use.
    img = Image.open(io.BytesIO(data))
    img.thumbnail((UPLOAD_MAX_SIDE, UPLOAD_MAX_SIDE))
    buf = io.BytesIO()
    img.convert("RGBA" if image.alpha is not None else "RGB").save(buf, "PNG")
    return buf.getvalue(), mime_for_format("PNG"), ext_for_format("PNG")


async def _stored_bytes(
    backend: EmulatorBackend, value: str, parameter: str
) -> tuple[bytes, str, str]:
    data = await backend.resolver.resolve(
        value, parameter, backend.client, fetch_timeout=backend.config.input_fetch_timeout
    )
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(backend.executor, normalise_upload, data, parameter)
    except ImageInputError as exc:
        raise TaskRejected(
            400, error_object(exc.code, exc.message, parameter=exc.parameter)
        ) from None


def _remember(
    backend: EmulatorBackend, task_uuid: str, task_type: str, item: dict[str, Any]
) -> None:
    record = TaskRecord(task_uuid=task_uuid, task_type=task_type, final_items=[item])
    record.finish()
    backend.tasks[task_uuid] = record


async def prepare_image_upload(
    backend: EmulatorBackend, raw: Mapping[str, Any], *, dry_run: bool
) -> Prepared:
    """Validate an ``imageUpload``; committing stores the image and answers its UUID and URL.

    Example:
        ```python
        prepared = await prepare_image_upload(backend, raw_task, dry_run=False)
        outcome = await prepared.commit()  # outcome.data[0]["imageUUID"] is reusable as input
        ```
    """
    task = parse_image_upload(raw)
    uuid = task.task_uuid
    backend.claim(uuid, "imageUpload")
    try:
        data, mime, ext = await _stored_bytes(backend, task.image, "image")
    except BaseException:
        backend.reserved.discard(uuid)
        raise

    def release() -> None:
        backend.reserved.discard(uuid)

    async def commit() -> Outcome:
        release()
        if dry_run:
            backend.stats.dry_runs += 1
            return Outcome(data=[{"taskType": "imageUpload", "taskUUID": uuid, "cost": 0.0}])
        image_uuid = deterministic_uuid4("emulator-upload", str(backend.config.seed), uuid)
        backend.store.put(image_uuid, data, mime, ext, ttl=UPLOAD_TTL, kind="upload")
        item = {
            "taskType": "imageUpload",
            "taskUUID": uuid,
            "imageUUID": image_uuid,
            "imageURL": backend.image_url(image_uuid, ext),
        }
        _remember(backend, uuid, "imageUpload", item)
        backend.stats.uploads["image_upload"] += 1
        return Outcome(data=[item])

    return Prepared(commit=commit, release=release)


async def prepare_media_storage(
    backend: EmulatorBackend, raw: Mapping[str, Any], *, dry_run: bool
) -> Prepared:
    """Validate a ``mediaStorage`` upload or delete; committing performs it.

    Example:
        ```python
        raw = {"taskType": "mediaStorage", "taskUUID": uuid4, "operation": "upload",
               "media": data_uri}
        (await (await prepare_media_storage(backend, raw, dry_run=False)).commit()).data
        # [{"taskType": "mediaStorage", ..., "mediaUUID": ..., "mediaURL": ...}]
        ```
    """
    req = parse_media_storage(raw)
    uuid = req.task_uuid
    base = {"taskType": "mediaStorage", "taskUUID": uuid, "operation": req.operation}
    backend.claim(uuid, "mediaStorage")
    data, mime, ext, target = b"", "", "", ""
    try:
        if req.operation == "delete":
            stored = backend.store.get(req.media.lower())
            target = stored.uuid if stored is not None and stored.kind == "media" else ""
            if not target:
                raise TaskRejected(
                    404,
                    error_object(
                        "mediaNotFound", f"No media with UUID {req.media}.", parameter="media"
                    ),
                )
        else:
            data, mime, ext = await _stored_bytes(backend, req.media, "media")
    except BaseException:
        backend.reserved.discard(uuid)
        raise

    def release() -> None:
        backend.reserved.discard(uuid)

    async def commit() -> Outcome:
        release()
        if dry_run:
            backend.stats.dry_runs += 1
            return Outcome(data=[{**base, "cost": 0.0}])
        if req.operation == "delete":
            backend.store.delete(target)
            item = {**base, "mediaUUID": target}
        else:
            media_uuid = deterministic_uuid4("emulator-media", str(backend.config.seed), uuid)
            backend.store.put(media_uuid, data, mime, ext, ttl=UPLOAD_TTL, kind="media")
            item = {
                **base,
                "mediaUUID": media_uuid,
                "mediaURL": backend.image_url(media_uuid, ext, "media"),
            }
            backend.stats.uploads["media_storage"] += 1
        _remember(backend, uuid, "mediaStorage", item)
        return Outcome(data=[item])

    return Prepared(commit=commit, release=release)

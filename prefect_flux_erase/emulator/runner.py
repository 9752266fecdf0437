"""Running an accepted ``imageInference`` task: latency, engine, storage, upload, billing, webhook.

Each generation runs the engine and the encoder in the backend's thread pool (so the loop stays
responsive) while its drawn latency runs on the event loop (so thousands can be in flight): it is
ready ``latency`` seconds after acceptance, or when the engine is done if that is later. It stores
the output, PUTs it to ``uploadEndpoint`` if asked, and only then is charged and marked done.
A generation that fails is never charged.

Example:
    ```python
    record.generations = [Generation(index=0, seed=7, image_uuid=..., latency=0.2)]
    await run_inference(backend, record)   # record.done is set; the ledger holds one charge
    ```
"""

from __future__ import annotations

import asyncio
import base64
import logging
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from prefect_flux_erase.emulator.config import EngineFn
from prefect_flux_erase.emulator.envelopes import error_object, webhook_body
from prefect_flux_erase.emulator.records import Generation, TaskRecord
from prefect_flux_erase.emulator.uploads import put_output
from prefect_flux_erase.engine.imageio import DecodedImage, encode_image
from prefect_flux_erase.runware.media import ext_for_format, mime_for_format, to_data_uri
from prefect_flux_erase.runware.models import ImageInferenceTask
from prefect_flux_erase.runware.pricing import output_size

if TYPE_CHECKING:
    from prefect_flux_erase.emulator.backend import EmulatorBackend

logger = logging.getLogger(__name__)

DEFAULT_DILATE = 10
DEFAULT_QUALITY = 95


def render(
    engine: EngineFn,
    image: DecodedImage,
    mask: NDArray[np.bool_],
    dilate_pixels: int,
    seed: int,
    output_format: str,
    quality: int,
) -> bytes:
    """Erase and encode one result (runs in a worker thread).

    Inputs over 4 MP are scaled to 4 MP first, as the model does; otherwise the output has the
    input's size.

    Example:
        >>> import numpy as np
        >>> img = DecodedImage(np.zeros((4, 4, 3), np.uint8), None, "PNG")
        >>> render(lambda rgb, m, d, s: rgb, img, np.zeros((4, 4), bool), 0, 0, "PNG", 95)[:4]
        b'\\x89PNG'
    """
    rgb, alpha, hole = image.rgb, image.alpha, mask
    size = output_size(*image.size)
    if size != image.size:
        rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS))
        hole = np.asarray(Image.fromarray(hole).resize(size, Image.Resampling.NEAREST))
        if alpha is not None:
            alpha = np.asarray(Image.fromarray(alpha).resize(size, Image.Resampling.LANCZOS))
    # Decoded inputs are shared between tasks with the same inputs: the engine gets copies.
    out = engine(rgb.copy(), hole.copy(), dilate_pixels, seed)
    if out.shape != rgb.shape or out.dtype != np.uint8:
        raise ValueError(f"engine returned {out.dtype} {out.shape}; expected uint8 {rgb.shape}")
    return encode_image(out, output_format, quality, alpha)


def safety_enabled(spec: ImageInferenceTask) -> bool:
    """Whether content checking runs: ``safety.mode`` decides when set, else ``checkContent``.

    Example:
        >>> from prefect_flux_erase.runware.models import build_task
        >>> safety_enabled(build_task({"taskUUID": "3f9a3c3e-2b7e-4a51-9d1b-6d6f0a2f8e11",
        ...     "inputs": {"image": "a", "mask": "b"}, "safety": {"checkContent": True}}))
        True
    """
    if spec.safety is None:
        return False
    if spec.safety.mode is not None:
        return spec.safety.mode != "none"
    return bool(spec.safety.check_content)


def result_item(
    backend: EmulatorBackend, record: TaskRecord, gen: Generation, data: bytes
) -> dict[str, Any]:
    """The §3 item of one finished result (without ``status``, which replies add).

    Example:
        ```python
        result_item(backend, record, gen, jpeg_bytes)
        # {"taskType": "imageInference", "taskUUID": ..., "imageUUID": ..., "imageURL": ...}
        ```
    """
    spec = record.spec
    assert spec is not None
    config = backend.config
    fmt = spec.effective_output_format
    item: dict[str, Any] = {
        "taskType": record.task_type,
        "taskUUID": record.task_uuid,
        "imageUUID": gen.image_uuid,
    }
    output_type = spec.effective_output_type
    if output_type == "URL":
        item["imageURL"] = backend.image_url(gen.image_uuid, ext_for_format(fmt))
    elif output_type == "base64Data":
        item["imageBase64Data"] = base64.b64encode(data).decode("ascii")
    else:
        item["imageDataURI"] = to_data_uri(data, mime_for_format(fmt))
    if config.emit_seed:
        item["seed"] = gen.seed
    if safety_enabled(spec):
        item["NSFWContent"] = False
    if spec.include_cost:
        item["cost"] = record.cost_each
    if config.emit_result_index:
        item["resultIndex"] = gen.index
    return item


async def run_inference(backend: EmulatorBackend, record: TaskRecord) -> None:
    """Run every generation of ``record`` concurrently, then mark it done.

    Example:
        ```python
        backend.spawn(run_inference(backend, record))
        await record.done.wait()  # every generation is success or error; the ledger is updated
        ```
    """
    stats = backend.stats
    stats.processing_started()
    record.read_output = partial(_stored_bytes, backend)
    try:
        await asyncio.gather(*(_generate(backend, record, gen) for gen in record.generations))
    finally:
        record.release_inputs(keep_spec=backend.config.keep_task_specs)
        record.finish()
        if stats is backend.stats:  # a reset in between starts the counts afresh
            stats.processing_finished()


def _stored_bytes(backend: EmulatorBackend, image_uuid: str) -> bytes | None:
    stored = backend.store.get(image_uuid)
    return stored.data if stored is not None else None


def _fail(
    backend: EmulatorBackend, record: TaskRecord, gen: Generation, code: str, msg: str
) -> None:
    gen.status, gen.error = "error", (code, msg)
    backend.stats.results_failed += 1
    spec = record.spec
    if spec is not None and spec.webhook_url:
        err = error_object(
            code, msg, task_uuid=record.task_uuid, task_type=record.task_type, status="error"
        )
        body = webhook_body(backend.config, err, failed=True)
        backend.spawn(backend.webhooks.deliver(spec.webhook_url, body, backend.config))


async def _generate(backend: EmulatorBackend, record: TaskRecord, gen: Generation) -> None:
    loop = asyncio.get_running_loop()
    gen.started_at = loop.time()

    async def rest_of_latency() -> None:
        remaining = gen.latency - (loop.time() - gen.started_at)
        if remaining > 0:
            await asyncio.sleep(remaining)

    spec, image, mask = record.spec, record.image, record.mask
    assert spec is not None
    assert image is not None
    assert mask is not None
    if record.fail_with is not None:
        await rest_of_latency()
        _fail(backend, record, gen, *record.fail_with)
        return
    config = backend.config
    fmt = spec.effective_output_format
    dilate = DEFAULT_DILATE
    if spec.settings is not None and spec.settings.dilate_pixels is not None:
        dilate = spec.settings.dilate_pixels
    quality = spec.output_quality if spec.output_quality is not None else DEFAULT_QUALITY
    # The engine works while the latency runs: a result is ready ``latency`` seconds after
    # its task was accepted (or when the engine is done, if that takes longer), whatever the
    # emulator's own load; results of one batch do not queue behind each other's rendering.
    try:
        engine = backend.engine()
        data = await loop.run_in_executor(
            backend.executor, render, engine, image, mask, dilate, gen.seed, fmt, quality
        )
    except Exception as exc:
        logger.warning("engine failed on task %s: %s", record.task_uuid, exc)
        await rest_of_latency()
        _fail(backend, record, gen, "inferenceError", f"The engine failed: {exc}")
        return
    await rest_of_latency()
    mime = mime_for_format(fmt)
    url_ttl = spec.ttl if spec.ttl is not None and spec.effective_output_type == "URL" else None
    backend.store.put(
        gen.image_uuid, data, mime, ext_for_format(fmt), ttl=url_ttl or config.default_ttl
    )
    item = result_item(backend, record, gen, data)
    if spec.upload_endpoint:
        problem = await put_output(
            backend.client, spec.upload_endpoint, data, mime, put_timeout=config.upload_timeout
        )
        backend.stats.uploads["endpoint_put_failed" if problem else "endpoint_put"] += 1
        if problem and config.upload_failure == "error":
            _fail(backend, record, gen, "uploadFailed", problem)
            return
    backend.ledger.charge(record.task_uuid, gen.image_uuid, record.cost_each)
    backend.stats.results_generated += 1
    if spec.webhook_url:
        body = webhook_body(config, dict(item), failed=False)
        backend.spawn(backend.webhooks.deliver(spec.webhook_url, body, config))
    # An inline result's bytes stay in the image store (bounded, spilled to disk), not in the
    # record: replies read them back when they are rendered.
    for name in ("imageBase64Data", "imageDataURI"):
        if name in item:
            del item[name]
            gen.inline = (name, mime if name == "imageDataURI" else None)
    gen.item, gen.status = item, "success"

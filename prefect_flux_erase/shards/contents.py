"""Content keys: when two rows are the same erase, and so may share one result and one charge.

Two rows are the same erase when their image bytes, their mask bytes and every setting that
shapes the output are equal: the effective ``dilatePixels``, ``outputFormat``,
``outputQuality``, ``numberResults``, the safety check, the row's presigned upload target and
the engine that erases (the API at one base URL, or a named local engine). The key is a
128-bit BLAKE2b over those, in hex; inputs the pipeline does not read (a Runware image UUID,
a URL passed through to the API) take part by their text instead of their bytes.

The same key names a row's task (:func:`row_task_key`), so rows with equal content submit the
same taskUUID and the API answers every one after the first with ``conflictTaskUUID``: one
inference, one charge, whatever shard, process or orchestrator runs them. It also names the
row's entry in the cross-run result cache (:mod:`~prefect_flux_erase.results.cache`).

Example:
    >>> from prefect_flux_erase.runware.options import EraseOptions
    >>> fp = settings_fingerprint(EraseOptions(), engine="local:echo")
    >>> a = content_key(digest_bytes(b"img"), digest_bytes(b"mask"), dilate=10, fingerprint=fp)
    >>> b = content_key(digest_bytes(b"img"), digest_bytes(b"mask"), dilate=12, fingerprint=fp)
    >>> len(a), a != b
    (32, True)
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prefect_flux_erase.runware.options import EraseOptions
    from prefect_flux_erase.shards.job import ShardJob

#: Bytes of every digest and key (128 bits: no collision in any realistic manifest).
DIGEST_BYTES = 16


def new_digest() -> hashlib.blake2b:
    """A streaming digest for one input's bytes (``update`` it chunk by chunk).

    Example:
        >>> d = new_digest(); d.update(b"im"); d.update(b"g")
        >>> d.digest() == digest_bytes(b"img")
        True
    """
    return hashlib.blake2b(digest_size=DIGEST_BYTES)


def digest_bytes(data: bytes) -> bytes:
    """The digest of an input's bytes.

    Example:
        >>> len(digest_bytes(b"png"))
        16
    """
    return hashlib.blake2b(data, digest_size=DIGEST_BYTES).digest()


def digest_reference(kind: str, value: str) -> bytes:
    """The digest of an input known by reference (``"uuid"`` or ``"url"``), not by bytes.

    Example:
        >>> digest_reference("url", "https://x/a.png") != digest_bytes(b"https://x/a.png")
        True
    """
    return hashlib.blake2b(
        f"{kind}\0{value.strip()}".encode(), digest_size=DIGEST_BYTES, person=b"flux-erase-ref"
    ).digest()


def engine_identity(job: ShardJob) -> str:
    """Who erases: ``runware:<base URL>`` or ``local:<engine>`` (results of one never stand in
    for the other's).

    Example:
        >>> from prefect_flux_erase.runware.options import EraseOptions
        >>> from prefect_flux_erase.shards.job import ShardJob
        >>> engine_identity(ShardJob(manifest=None, output="o", run_key="k",  # type: ignore
        ...                          backend="local", options=EraseOptions(), local_engine="echo"))
        'local:echo'
    """
    if job.backend == "runware":
        from prefect_flux_erase.runware.client import DEFAULT_BASE_URL

        base = job.runware.base_url if job.runware is not None else DEFAULT_BASE_URL
        return f"runware:{base.split('?', 1)[0].rstrip('/')}"
    return f"local:{job.local_engine}"


def settings_fingerprint(options: EraseOptions, *, engine: str) -> str:
    """The settings that shape a result, and the engine, as one canonical string.

    ``outputType``, ``deliveryMethod``, ``ttl``, ``includeCost`` and ``webhookURL`` change how
    a result is delivered, not its pixels, and are left out.

    Example:
        >>> from prefect_flux_erase.runware.options import EraseOptions
        >>> a = settings_fingerprint(EraseOptions(output_type="URL"), engine="local:echo")
        >>> a == settings_fingerprint(EraseOptions(output_type="base64Data"), engine="local:echo")
        True
    """
    return json.dumps(
        {
            "engine": engine,
            "format": options.output_format,
            "quality": options.output_quality,
            "results": options.number_results,
            "safety": [options.check_content, options.safety_mode],
            "endpoint": options.upload_endpoint,
        },
        sort_keys=True,
    )


def job_fingerprint(job: ShardJob) -> str:
    """:func:`settings_fingerprint` of a job's options and engine.

    Example:
        >>> from prefect_flux_erase.runware.options import EraseOptions
        >>> from prefect_flux_erase.shards.job import ShardJob
        >>> job = ShardJob(manifest=None, output="o", run_key="k",  # type: ignore
        ...                backend="local", options=EraseOptions())
        >>> '"engine": "local:local"' in job_fingerprint(job)
        True
    """
    return settings_fingerprint(job.options, engine=engine_identity(job))


def content_key(
    image: bytes,
    mask: bytes,
    *,
    dilate: int,
    fingerprint: str,
    upload_url: str | None = None,
) -> str:
    """The key of one erase: input digests, effective ``dilatePixels``, upload target, settings.

    Example:
        >>> k = content_key(b"i" * 16, b"m" * 16, dilate=10, fingerprint="{}")
        >>> k == content_key(b"i" * 16, b"m" * 16, dilate=10, fingerprint="{}", upload_url=None)
        True
    """
    h = hashlib.blake2b(digest_size=DIGEST_BYTES, person=b"flux-erase-key")
    h.update(image)
    h.update(mask)
    h.update(f"\0{dilate}\0{upload_url or ''}\0{fingerprint}".encode())
    return h.hexdigest()


def row_task_key(content: str) -> str:
    """What a row's taskUUID derives from when its content key is known (instead of its row
    key): equal contents, equal taskUUIDs.

    Example:
        >>> row_task_key("ab" * 16)
        'content:abababababababababababababababab'
    """
    return f"content:{content}"

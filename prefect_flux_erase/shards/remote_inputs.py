"""Inputs that are already remote, and inputs uploaded once.

A manifest cell is one of three kinds of input (:func:`input_kind`):

- ``"uuid"``: the UUID of an image already at Runware (an earlier ``imageUpload`` or a
  generated image). Sent as it is; the pipeline cannot read it, the API validates it.
- ``"url"``: a public http(s) URL of a column that passes URLs (``pass_urls``). Sent as it is,
  for Runware to fetch; the pipeline never downloads it (a cost estimate reads its header
  with one ranged request, :func:`read_url_header`).
- ``"file"``: anything else (a path, ``s3://``, ``gs://``, a private URL…). The pipeline reads
  it, validates it and sends its bytes (inline, or as an uploaded image's UUID with
  ``upload_inputs``).

URLs that look private (loopback, private networks, ``.local`` names) are never passed to a
remote API unless their host is named in ``allow_private_hosts``.

Example:
    >>> passes_urls(True, "image_uri"), passes_urls(("mask_uri",), "image_uri")
    (True, False)
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Collection
from typing import TYPE_CHECKING, Any, Literal

from prefect_flux_erase.runware.media import is_image_uuid
from prefect_flux_erase.storage.safe_keys import is_public_http

if TYPE_CHECKING:
    from prefect_flux_erase.shards.job import ShardJob

InputKind = Literal["file", "uuid", "url"]

#: Bytes of a passed-through URL read for its header (sizes for the estimate and the cap).
HEADER_BYTES = 64 * 1024


def passes_urls(pass_urls: bool | Collection[str], column: str) -> bool:
    """Whether public URLs of ``column`` are passed through (``True``: every column).

    Example:
        >>> passes_urls(False, "image_uri"), passes_urls(["image_uri"], "image_uri")
        (False, True)
    """
    if isinstance(pass_urls, bool):
        return pass_urls
    return column in pass_urls


def input_kind(value: Any, column: str, job: ShardJob) -> InputKind:
    """How a cell of ``column`` travels to the erase (see the module docstring).

    Only the ``runware`` backend can use remote inputs; the local engine reads every input.

    Example:
        >>> from prefect_flux_erase.manifest.plan import ManifestSpec
        >>> from prefect_flux_erase.runware.options import EraseOptions
        >>> from prefect_flux_erase.shards.job import ShardJob
        >>> job = ShardJob(manifest=ManifestSpec("m.parquet"), output="o", run_key="k",
        ...                backend="runware", options=EraseOptions(), pass_urls=True)
        >>> input_kind("https://images.example.com/a.jpg", "image_uri", job)
        'url'
        >>> input_kind("http://127.0.0.1/a.jpg", "image_uri", job)
        'file'
        >>> input_kind("5c1e0b7a-8d44-4f0e-a3b2-1f6c9e2d7a90", "image_uri", job)
        'uuid'
    """
    if job.backend != "runware" or not isinstance(value, str):
        return "file"
    text = value.strip()
    if is_image_uuid(text):
        return "uuid"
    if passes_urls(job.pass_urls, column) and is_public_http(text, job.allow_private_hosts):
        return "url"
    return "file"


def read_url_header(url: str, *, timeout: float = 10.0) -> bytes:
    """The first :data:`HEADER_BYTES` of a URL, asked for with a ``Range`` request (a server
    that ignores it is cut off there): enough for an image's size, never the whole file.

    Raises:
        OSError: the URL cannot be read (network error, HTTP status >= 400).

    Example:
        ```python
        header_size(read_url_header("https://images.example.com/a.jpg"))   # (4032, 3024)
        ```
    """
    import httpx

    headers = {
        "Range": f"bytes=0-{HEADER_BYTES - 1}",
        "User-Agent": "prefect-flux-erase (image header)",
    }
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=True) as client,
            client.stream("GET", url, headers=headers) as response,
        ):
            if response.status_code >= 400:
                raise OSError(f"HTTP {response.status_code}")
            data = bytearray()
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) >= HEADER_BYTES:
                    break
            return bytes(data[:HEADER_BYTES])
    except httpx.HTTPError as exc:
        raise OSError(f"{type(exc).__name__}: {exc}") from exc


class UploadedInputs:
    """Which input contents this process already uploaded with ``imageUpload``, and as what
    UUID: an input (the mask many rows share, a row's image across ``numberResults`` and
    attempts) is uploaded once per endpoint, not once per task.

    Bounded (least recently used first out); thread-safe.

    Example:
        >>> uploads = UploadedInputs(capacity=2)
        >>> uploads.put("https://api", b"d1", "uuid-1"); uploads.get("https://api", b"d1")
        'uuid-1'
        >>> uploads.get("https://other", b"d1") is None
        True
    """

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[str, bytes], str] = OrderedDict()

    def get(self, endpoint: str, digest: bytes) -> str | None:
        """The UUID ``digest``'s content was uploaded as at ``endpoint``, if it was."""
        with self._lock:
            found = self._items.get((endpoint, digest))
            if found is not None:
                self._items.move_to_end((endpoint, digest))
            return found

    def put(self, endpoint: str, digest: bytes, image_uuid: str) -> None:
        """Remember an upload."""
        with self._lock:
            self._items[(endpoint, digest)] = image_uuid
            self._items.move_to_end((endpoint, digest))
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)


#: The uploads of this process (every backend of every run shares it: same bytes, same UUID).
UPLOADED = UploadedInputs()

"""Turning an input string into image bytes: URL, data URI, raw base64, or a stored UUID.

Every failure becomes a 400 error object naming the parameter (``inputs.image``,
``inputs.mask``, ``image`` or ``media``), as a real server's validation would.

Example:
    >>> from prefect_flux_erase.emulator.store import Clock, ImageStore
    >>> resolver = InputResolver(ImageStore(Clock()))
    >>> resolver.inline("data:image/png;base64,YWJj", "inputs.image")
    b'abc'
"""

from __future__ import annotations

import re
from typing import Final

import httpx

from prefect_flux_erase.emulator.envelopes import error_object
from prefect_flux_erase.emulator.request_parsing import TaskRejected
from prefect_flux_erase.emulator.store import ImageStore, StoredImage
from prefect_flux_erase.runware.media import decode_inline, is_data_uri, is_image_uuid, is_url

_OWN_URL: Final = re.compile(r"/(?:image|media)/(?P<uuid>[0-9a-fA-F-]{36})\.\w+$")


def input_error_code(parameter: str) -> str:
    """The code of an input that cannot be resolved: ``invalid`` + the parameter's path.

    Example:
        >>> input_error_code("inputs.mask")
        'invalidInputsMask'
    """
    return "invalid" + "".join(p[:1].upper() + p[1:] for p in parameter.split("."))


class InputResolver:
    """Resolves input strings against the network and the emulator's own store.

    Example:
        >>> from prefect_flux_erase.emulator.store import Clock, ImageStore
        >>> store, uuid = ImageStore(Clock()), "3f9a3c3e-2b7e-4a51-9d1b-6d6f0a2f8e11"
        >>> _ = store.put(uuid, b"png", "image/png", "png", ttl=60)
        >>> InputResolver(store).lookup(uuid, "inputs.image", accept_media=True)
        b'png'
    """

    def __init__(self, store: ImageStore, root: str | None = None) -> None:
        self.store = store
        self.root = root

    def reject(self, parameter: str, message: str, task_uuid: str | None = None) -> TaskRejected:
        """A 400 for an input that cannot be used."""
        return TaskRejected(
            400,
            error_object(
                input_error_code(parameter), message, parameter=parameter, task_uuid=task_uuid
            ),
        )

    def inline(self, value: str, parameter: str) -> bytes:
        """Decode a data URI or raw base64 string, or raise :class:`TaskRejected`."""
        try:
            return decode_inline(value)
        except ValueError:
            kind = "data URI" if is_data_uri(value) else "URL, data URI, base64 string or UUID"
            raise self.reject(parameter, f"{parameter}: not a valid {kind}") from None

    def lookup(self, uuid: str, parameter: str, *, accept_media: bool) -> bytes:
        """Bytes of a stored image (generated or uploaded), or of stored media if accepted."""
        item: StoredImage | None = self.store.get(uuid.lower())
        if item is None or (item.kind == "media" and not accept_media):
            raise self.reject(
                parameter,
                f"{parameter}: no uploaded or generated image has UUID {uuid} (or it expired)",
            )
        return item.data

    async def resolve(
        self,
        value: str,
        parameter: str,
        client: httpx.AsyncClient,
        *,
        fetch_timeout: float,
        accept_media: bool = True,
    ) -> bytes:
        """Bytes behind any accepted input form; raise :class:`TaskRejected` (400) otherwise."""
        if is_url(value):
            own = self._own_uuid(value)
            if own is not None:
                return self.lookup(own, parameter, accept_media=True)
            return await self._fetch(value, parameter, client, fetch_timeout)
        if is_image_uuid(value):
            return self.lookup(value, parameter, accept_media=accept_media)
        return self.inline(value, parameter)

    def _own_uuid(self, url: str) -> str | None:
        # The emulator's own output URLs are read from the store: no request to ourselves.
        if not self.root or not url.startswith(self.root + "/"):
            return None
        match = _OWN_URL.search(url.split("?", 1)[0])
        return match.group("uuid") if match else None

    async def _fetch(
        self, url: str, parameter: str, client: httpx.AsyncClient, fetch_timeout: float
    ) -> bytes:
        shown = url.split("?", 1)[0]  # query strings may carry signatures: never echo them
        try:
            response = await client.get(url, timeout=fetch_timeout, follow_redirects=True)
        except httpx.HTTPError as exc:
            raise self.reject(
                parameter, f"{parameter}: could not download {shown} ({type(exc).__name__})"
            ) from None
        if response.status_code >= 400:
            raise self.reject(
                parameter, f"{parameter}: downloading {shown} returned HTTP {response.status_code}"
            )
        return response.content

"""How image bytes travel in the protocol: data URIs, raw base64, URLs and UUIDs.

Example:
    >>> uri = to_data_uri(b"\\x89PNG\\r\\n\\x1a\\nrest")
    >>> uri.startswith("data:image/png;base64,"), decode_inline(uri)[:4]
    (True, b'\\x89PNG')
"""

from __future__ import annotations

import base64
import binascii
import re

from prefect_flux_erase.runware.ids import is_uuid4

_MIME_BY_FORMAT = {"JPG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
_EXT_BY_FORMAT = {"JPG": "jpg", "PNG": "png", "WEBP": "webp"}
_DATA_URI_RE = re.compile(
    r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^,;]*)*?);base64,", re.I
)


def mime_for_format(output_format: str) -> str:
    """MIME type of an ``outputFormat`` (JPG, PNG, WEBP).

    Example:
        >>> mime_for_format("WEBP")
        'image/webp'
    """
    return _MIME_BY_FORMAT[output_format.upper()]


def ext_for_format(output_format: str) -> str:
    """File extension of an ``outputFormat``.

    Example:
        >>> ext_for_format("JPG")
        'jpg'
    """
    return _EXT_BY_FORMAT[output_format.upper()]


def sniff_mime(data: bytes) -> str:
    """Guess an image MIME type from magic bytes (``application/octet-stream`` if unknown).

    Example:
        >>> sniff_mime(b"\\xff\\xd8\\xff\\xe0....")
        'image/jpeg'
    """
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:2] == b"BM":
        return "image/bmp"
    return "application/octet-stream"


def to_data_uri(data: bytes, mime: str | None = None) -> str:
    """Encode bytes as a ``data:<mime>;base64,...`` URI.

    Example:
        >>> to_data_uri(b"abc", "image/png")
        'data:image/png;base64,YWJj'
    """
    return f"data:{mime or sniff_mime(data)};base64,{base64.b64encode(data).decode('ascii')}"


def is_url(value: str) -> bool:
    """Whether an input string is an http(s) URL.

    Example:
        >>> is_url("https://x/a.png"), is_url("data:image/png;base64,AA==")
        (True, False)
    """
    return value.startswith(("http://", "https://"))


def is_data_uri(value: str) -> bool:
    """Whether an input string is a base64 data URI."""
    return bool(_DATA_URI_RE.match(value))


def is_image_uuid(value: str) -> bool:
    """Whether an input string is the UUID of an uploaded or generated image."""
    return is_uuid4(value.lower()) if len(value) == 36 else False


def decode_inline(value: str) -> bytes:
    """Decode a data URI or raw base64 string to bytes; raise ``ValueError`` if it is neither.

    Example:
        >>> decode_inline("YWJj")
        b'abc'
    """
    match = _DATA_URI_RE.match(value)
    payload = value[match.end() :] if match else value
    payload = "".join(payload.split())
    try:
        return base64.b64decode(payload + "=" * (-len(payload) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not valid base64 data") from exc

"""Guards for names and locations: safe file stems, "is this inside the output root", and
whether a URL is one a remote API could fetch. Pure string logic, no I/O.

Re-exported by :mod:`prefect_flux_erase.storage.files`, where the rest of the URI toolkit lives.

Example:
    >>> target = "s3://bucket/out/images/" + safe_key("../../etc/passwd") + ".jpg"
    >>> target, is_within("s3://bucket/out", target)
    ('s3://bucket/out/images/______etc_passwd-3754d6cb3a.jpg', True)
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import posixpath
import re
import unicodedata
from collections.abc import Collection
from urllib.parse import urlsplit

import fsspec
from fsspec.core import split_protocol
from fsspec.implementations.local import LocalFileSystem

_UNSAFE_CHARS = frozenset('/\\:*?"<>|#%[]{}')
_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL"} | {f"{p}{i}" for p in ("COM", "LPT") for i in range(1, 10)}
)
#: Longest safe key, in UTF-8 bytes, before the hash suffix (file names allow 255 bytes).
MAX_KEY_BYTES = 100


def safe_key(row_key: str) -> str:
    """Turn any row key into a file stem that cannot escape its directory.

    Readable keys (letters of any script, digits, spaces, ``-_.,+=@~()``) are kept as they
    are. Path separators, ``..``, leading dots, control and format characters, characters
    that break URLs or Windows (``:*?"<>|#%[]{}``) become ``_``; keys over
    :data:`MAX_KEY_BYTES` are truncated. Whenever the key changed, a short hash of the
    original is appended, so two keys that sanitise alike still give distinct stems.

    Example:
        >>> safe_key("café 01"), safe_key("a/b") != safe_key("a_b")
        ('café 01', True)
        >>> safe_key("..")
        '__-5ec1f7e700'
    """
    text = unicodedata.normalize("NFC", row_key)
    chars: list[str] = []
    for ch in text:
        category = unicodedata.category(ch)
        if ch in _UNSAFE_CHARS or category[0] == "C" or category in ("Zl", "Zp"):
            chars.append("_")
        elif category == "Zs":
            chars.append(" ")  # exotic spaces (NBSP, ideographic) become a plain one
        else:
            chars.append(ch)
    stem = "".join(chars).strip(" ")
    stem = re.sub(r"\.{2,}", lambda m: "_" * len(m.group(0)), stem)
    stem = re.sub(r"^[.~]+", lambda m: "_" * len(m.group(0)), stem)
    stem = stem.rstrip(". ")  # Windows drops trailing dots and spaces
    if stem.split(".", 1)[0].upper() in _WINDOWS_RESERVED:
        stem = "_" + stem
    encoded = stem.encode("utf-8")
    if len(encoded) > MAX_KEY_BYTES:
        stem = encoded[:MAX_KEY_BYTES].decode("utf-8", errors="ignore").rstrip(". ")
    if not stem:
        stem = "row"
    if stem != row_key:
        digest = hashlib.sha256(row_key.encode("utf-8", errors="surrogatepass")).hexdigest()
        stem = f"{stem}-{digest[:10]}"
    return stem


def _normalized_location(uri: str) -> tuple[type, str] | None:
    if any(unicodedata.category(ch) == "Cc" for ch in uri):
        return None
    protocol, _ = split_protocol(uri)
    try:
        cls = fsspec.get_filesystem_class(protocol or "file")
    except (ValueError, ImportError):
        return None
    path = str(cls._strip_protocol(uri))
    if issubclass(cls, LocalFileSystem):
        # realpath: a symlink inside the root must not lead a write outside it.
        return cls, os.path.realpath(path)
    # Treat ".." as traversal even where the store would take it literally: refuse, not guess.
    return cls, posixpath.normpath("/" + path)


def is_within(root: str, uri: str) -> bool:
    """Whether ``uri`` is ``root`` itself or lies under it, on the same kind of filesystem.

    The last guard before any write: ``..`` segments are resolved first (and local symlinks
    followed), so ``root/../elsewhere`` is outside.

    Example:
        >>> is_within("s3://bucket/out", "s3://bucket/out/images/a.jpg")
        True
        >>> is_within("s3://bucket/out", "s3://bucket/out/../other/a.jpg")
        False
        >>> is_within("s3://bucket/out", "s3://bucket/outside/a.jpg")
        False
    """
    base, target = _normalized_location(root), _normalized_location(uri)
    if base is None or target is None or base[0] is not target[0]:
        return False
    base_path, target_path = base[1].rstrip("/") or "/", target[1]
    if base_path == "/":
        return True
    return target_path == base_path or target_path.startswith(base_path + "/")


_PRIVATE_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa", ".intranet")


def is_public_http(uri: object, allow_hosts: Collection[str] = ()) -> bool:
    """Whether ``uri`` is an http(s) URL that a remote API server could fetch itself.

    False for loopback, private and link-local addresses, single-label or ``.local``-style
    host names, and URLs with credentials in them (those must not be handed to a third party).
    ``allow_hosts`` names hosts (``host`` or ``host:port``) that the caller knows the API can
    reach although they look private (an emulator's neighbour on loopback, an intranet server
    next to a self-hosted API); nothing is allowed unless named.

    Example:
        >>> is_public_http("https://images.example.com/a.png")
        True
        >>> is_public_http("http://127.0.0.1:8000/a.png"), is_public_http("s3://b/a.png")
        (False, False)
        >>> is_public_http("http://127.0.0.1:8000/a.png", allow_hosts=["127.0.0.1:8000"])
        True
    """
    if not isinstance(uri, str):
        return False
    try:
        parts = urlsplit(uri.strip())
        host = parts.hostname
        port = parts.port
    except ValueError:
        return False
    if parts.scheme.lower() not in ("http", "https") or not host or "@" in parts.netloc:
        return False
    host = host.lower().rstrip(".")
    if allow_hosts:
        allowed = {h.strip().lower().rstrip(".") for h in allow_hosts}
        if host in allowed or (port is not None and f"{host}:{port}" in allowed):
            return True
    try:
        return ipaddress.ip_address(host).is_global
    except ValueError:
        pass
    return not (host == "localhost" or host.endswith(_PRIVATE_SUFFIXES) or "." not in host)

"""Everything the pipeline reads or writes, addressed by URI plus fsspec ``storage_options``.

Any fsspec backend works: plain local paths, ``file://``, ``s3://``, ``gs://``, ``az://``,
``memory://`` and read-only ``http(s)://``. Nothing here assumes a local path, and every error
names the URI with presigned signatures redacted.

Example:
    >>> write_bytes("memory://doc/storage/a.bin", b"abc")
    >>> read_bytes("memory://doc/storage/a.bin"), exists("memory://doc/storage/a.bin")
    (b'abc', True)
    >>> join("s3://bucket/out/", "images", safe_key("../../etc/passwd"))
    's3://bucket/out/images/______etc_passwd-3754d6cb3a'
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import math
import os
import posixpath
import re
import tempfile
import unicodedata
import uuid
from collections.abc import Iterator, Mapping
from typing import IO, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import fsspec
from fsspec.core import split_protocol, url_to_fs
from fsspec.implementations.local import LocalFileSystem

#: Default cap on one input file (images and masks are read whole into memory).
DEFAULT_MAX_BYTES = 200 * 1024 * 1024

# Backends whose file objects upload only on close and can abort an upload (``discard``):
# writing straight to the final name is atomic there.
_UPLOAD_ON_CLOSE = frozenset({"s3", "s3a", "gs", "gcs"})
_READ_ONLY = frozenset({"http", "https"})
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class InputReadError(Exception):
    """An input that cannot be read, with a stable ``code`` and a ``message`` naming the URI.

    Codes: ``missingUri``, ``inputNotFound``, ``inputPermissionDenied``, ``inputTooLarge``,
    ``inputUnreadable``.

    Example:
        >>> try:
        ...     read_bytes(None)
        ... except InputReadError as e:
        ...     e.code
        'missingUri'
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep both arguments when pickled to another worker process.
        return (type(self), (self.code, self.message))


# --------------------------------------------------------------------------- redaction

# Query parameters that carry a secret in presigned URLs (S3, GCS, Azure SAS, CloudFront) or
# in ad-hoc token URLs.
_SECRET_PARAM_RE = re.compile(
    r"signature|sig$|token|credential|secret|password|passwd|policy|auth|key|code$", re.I
)
_URL_IN_TEXT_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def _redact_one_url(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, "***" if _SECRET_PARAM_RE.search(k) else v) for k, v in pairs], safe="*"
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_url(text: str) -> str:
    """Redact secrets from every URL in ``text``: signature/token query values and user info.

    Works on a bare URL or on free text (an exception message) that contains URLs.

    Example:
        >>> redact_url("https://b.s3.amazonaws.com/a.png?X-Amz-Expires=60&X-Amz-Signature=abc")
        'https://b.s3.amazonaws.com/a.png?X-Amz-Expires=60&X-Amz-Signature=***'
        >>> redact_url("failed: https://user:pw@host/x.png")
        'failed: https://***@host/x.png'
    """
    return _URL_IN_TEXT_RE.sub(lambda m: _redact_one_url(m.group(0)), text)


# --------------------------------------------------------------------------- addressing


def resolve(
    uri: str, storage_options: Mapping[str, Any] | None = None
) -> tuple[fsspec.AbstractFileSystem, str]:
    """Return the filesystem for ``uri`` and the path within it (plain paths are local).

    Example:
        >>> fs, path = resolve("memory://doc/resolve/x.txt")
        >>> type(fs).__name__, path
        ('MemoryFileSystem', '/doc/resolve/x.txt')
    """
    fs, path = url_to_fs(uri, **dict(storage_options or {}))
    return fs, str(path)


def join(root: str, *parts: str) -> str:
    """Join URI path segments with ``/`` (never ``os.path``), keeping the root's protocol.

    Empty segments are skipped and slashes between segments are not doubled.

    Example:
        >>> join("s3://bucket/out/", "images", "a.jpg")
        's3://bucket/out/images/a.jpg'
        >>> join("memory://", "x")
        'memory://x'
    """
    match = _SCHEME_RE.match(root)
    head, rest = (root[: match.end()], root[match.end() :]) if match else ("", root)
    out = rest.rstrip("/") if rest.strip("/") else rest
    for part in parts:
        segment = part.strip("/")
        if not segment:
            continue
        out = f"{out}/{segment}" if out and not out.endswith("/") else f"{out}{segment}"
    return head + out


def is_local(fs: fsspec.AbstractFileSystem) -> bool:
    """Whether ``fs`` is the local disk.

    Example:
        >>> is_local(resolve("/tmp")[0]), is_local(resolve("memory://x")[0])
        (True, False)
    """
    return isinstance(fs, LocalFileSystem)


def _protocol_of(fs: fsspec.AbstractFileSystem) -> str:
    protocol = fs.protocol
    return str(protocol[0] if isinstance(protocol, tuple | list) else protocol)


def exists(uri: str, storage_options: Mapping[str, Any] | None = None) -> bool:
    """Whether ``uri`` exists (file or directory), bypassing cached listings.

    Example:
        >>> exists("memory://doc/exists/nothing-here")
        False
    """
    fs, path = resolve(uri, storage_options)
    # s3fs and friends cache listings: another process may have written since.
    fs.invalidate_cache(path)
    return bool(fs.exists(path))


# --------------------------------------------------------------------------- reading


def _require_uri(uri: object) -> str:
    if uri is None or (isinstance(uri, float) and math.isnan(uri)):
        raise InputReadError("missingUri", "no URI given (the manifest cell is empty)")
    if not isinstance(uri, str):
        raise InputReadError(
            "inputUnreadable", f"expected a URI string, got {type(uri).__name__} {uri!r:.80}"
        )
    if not uri.strip():
        raise InputReadError("missingUri", "no URI given (the manifest cell is an empty string)")
    return uri.strip()


def http_status(exc: BaseException) -> int | None:
    """The HTTP status behind an error, searching its causes (fsspec's http backend turns a
    403 into ``FileNotFoundError`` and keeps the real response error as the cause).

    Example:
        >>> http_status(FileNotFoundError("x")) is None
        True
    """
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            break
        status = getattr(seen, "status", None) or getattr(seen, "status_code", None)
        if isinstance(status, int):
            return status
        seen = seen.__cause__ or seen.__context__
    return None


def _classify_read_error(exc: BaseException, shown: str) -> InputReadError:
    detail = redact_url(f"{type(exc).__name__}: {exc}")
    status = http_status(exc)
    if isinstance(exc, PermissionError) or status in (401, 403):
        return InputReadError(
            "inputPermissionDenied",
            f"{shown}: access denied ({detail}); check the credentials in storage_options "
            "and the bucket policy",
        )
    if isinstance(exc, FileNotFoundError) or status in (404, 410):
        return InputReadError("inputNotFound", f"{shown} does not exist")
    if isinstance(exc, IsADirectoryError):
        return InputReadError("inputUnreadable", f"{shown} is a directory, not a file")
    if isinstance(exc, ImportError):
        return InputReadError(
            "inputUnreadable", f"{shown}: the filesystem for this URI is not installed ({detail})"
        )
    return InputReadError("inputUnreadable", f"{shown}: cannot read ({detail})")


def read_bytes(
    uri: object,
    storage_options: Mapping[str, Any] | None = None,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> bytes:
    """Read a whole (image or mask) file, refusing anything over ``max_bytes``.

    Raises:
        InputReadError: with a stable code; the message names the redacted URI.

    Example:
        >>> write_bytes("memory://doc/read/big.bin", b"0123456789")
        >>> try:
        ...     read_bytes("memory://doc/read/big.bin", max_bytes=4)
        ... except InputReadError as e:
        ...     e.code
        'inputTooLarge'
    """
    if max_bytes < 1:
        raise ValueError(f"max_bytes must be >= 1; got {max_bytes}")
    text = _require_uri(uri)
    shown = redact_url(text)
    too_large = InputReadError(
        "inputTooLarge", f"{shown} is larger than the {max_bytes:,}-byte limit for one input"
    )
    try:
        fs, path = resolve(text, storage_options)
        # HTTP: stream (block_size=0) so servers without Range support still work.
        kwargs: dict[str, Any] = {"block_size": 0} if _protocol_of(fs) in _READ_ONLY else {}
        with fs.open(path, "rb", **kwargs) as f:
            size = getattr(f, "size", None)
            if isinstance(size, int) and size > max_bytes:
                raise too_large
            data = f.read(max_bytes + 1)
    except InputReadError:
        raise
    except Exception as exc:
        raise _classify_read_error(exc, shown) from exc
    if len(data) > max_bytes:
        raise too_large
    return bytes(data)


# --------------------------------------------------------------------------- writing


def _check_writable(fs: fsspec.AbstractFileSystem, uri: str) -> None:
    if _protocol_of(fs) in _READ_ONLY:
        raise ValueError(f"{redact_url(uri)}: http(s) locations are read-only; write elsewhere")


def _local_temp(path: str) -> tuple[int, str]:
    parent = os.path.dirname(path) or "."
    os.makedirs(parent, exist_ok=True)
    # Same directory, so the final os.replace is a rename on one filesystem (atomic); the
    # leading dot keeps readers that skip hidden files from ever seeing a half-written file.
    return tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=parent)


def write_bytes(uri: str, data: bytes, storage_options: Mapping[str, Any] | None = None) -> None:
    """Write ``data`` to ``uri`` so that readers see the old object or the whole new one.

    On local disk: a temporary file in the same directory, fsync, then rename (parent
    directories are created). On object stores and ``memory://``: one PUT of the final object.

    Example:
        >>> write_bytes("memory://doc/write/a.txt", b"hi")
        >>> read_bytes("memory://doc/write/a.txt")
        b'hi'
    """
    fs, path = resolve(uri, storage_options)
    _check_writable(fs, uri)
    if is_local(fs):
        fd, temp = _local_temp(path)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        return
    fs.pipe_file(path, bytes(data))


@contextlib.contextmanager
def atomic_writer(
    uri: str, storage_options: Mapping[str, Any] | None = None
) -> Iterator[IO[bytes]]:
    """Open ``uri`` for a streamed write that becomes visible only if the block succeeds.

    Local disk: temporary file + rename. S3/GCS: the upload is completed on success and aborted
    on error. Other backends: a hidden temporary object moved into place on success.

    Example:
        >>> with atomic_writer("memory://doc/atomic/a.txt") as f:
        ...     _ = f.write(b"whole")
        >>> read_bytes("memory://doc/atomic/a.txt")
        b'whole'
    """
    fs, path = resolve(uri, storage_options)
    _check_writable(fs, uri)
    if is_local(fs):
        fd, temp = _local_temp(path)
        try:
            with os.fdopen(fd, "wb") as local_file:
                yield local_file
                local_file.flush()
                os.fsync(local_file.fileno())
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        return
    if _protocol_of(fs) in _UPLOAD_ON_CLOSE:
        remote = fs.open(path, "wb")
        try:
            yield remote
        except BaseException:
            remote.discard()
            remote.closed = True  # nothing left to flush: the upload was aborted
            raise
        remote.close()
        return
    parent, name = posixpath.split(path)
    temp = posixpath.join(parent, f".{name}.{uuid.uuid4().hex}.tmp")
    try:
        with fs.open(temp, "wb") as other:
            yield other
        fs.mv(temp, path)
    except BaseException:
        with contextlib.suppress(Exception):
            fs.rm(temp)
        raise


# --------------------------------------------------------------------------- safety

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


def is_public_http(uri: object) -> bool:
    """Whether ``uri`` is an http(s) URL that a remote API server could fetch itself.

    False for loopback, private and link-local addresses, single-label or ``.local``-style
    host names, and URLs with credentials in them (those must not be handed to a third party).

    Example:
        >>> is_public_http("https://images.example.com/a.png")
        True
        >>> is_public_http("http://127.0.0.1:8000/a.png"), is_public_http("s3://b/a.png")
        (False, False)
    """
    if not isinstance(uri, str):
        return False
    try:
        parts = urlsplit(uri.strip())
        host = parts.hostname
    except ValueError:
        return False
    if parts.scheme.lower() not in ("http", "https") or not host or "@" in parts.netloc:
        return False
    host = host.lower().rstrip(".")
    try:
        return ipaddress.ip_address(host).is_global
    except ValueError:
        pass
    return not (host == "localhost" or host.endswith(_PRIVATE_SUFFIXES) or "." not in host)

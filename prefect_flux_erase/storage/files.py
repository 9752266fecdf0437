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
import math
import os
import posixpath
import re
import tempfile
import threading
import uuid
from collections.abc import Iterator, Mapping
from typing import IO, Any

import fsspec
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem

from prefect_flux_erase.errors import FluxEraseError

# The one redaction rule of the package, re-exported: every message here names URIs with it.
from prefect_flux_erase.runware.redaction import install_log_redaction, redact_url

# Which failures mean what (denied, not found, may pass) is decided in faults.py, for every
# caller; the two status helpers are re-exported as part of this API.
from prefect_flux_erase.storage.faults import http_status, is_gcsfs_http_error, read_fault

# Write guards and URL classification live in safe_keys.py; re-exported as part of this API.
from prefect_flux_erase.storage.safe_keys import MAX_KEY_BYTES, is_public_http, is_within, safe_key

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_KEY_BYTES",
    "InputReadError",
    "atomic_writer",
    "exists",
    "http_status",
    "is_gcsfs_http_error",
    "is_local",
    "is_public_http",
    "is_within",
    "iter_bytes",
    "join",
    "listed_uri",
    "read_bytes",
    "redact_url",
    "resolve",
    "safe_key",
    "write_bytes",
]

#: Default cap on one input file (images and masks are read whole into memory).
DEFAULT_MAX_BYTES = 200 * 1024 * 1024

# Backends whose file objects upload only on close and can abort an upload (``discard``):
# writing straight to the final name is atomic there.
_UPLOAD_ON_CLOSE = frozenset({"s3", "s3a", "gs", "gcs"})
_READ_ONLY = frozenset({"http", "https"})
#: The local filesystem, for plain paths written without a look-up (:func:`_plain_local_path`).
LOCAL_FS = LocalFileSystem()
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

# fsspec's http backend logs the (possibly presigned) URLs this module reads, at DEBUG.
install_log_redaction()


class InputReadError(FluxEraseError):
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

    code: str

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message, code=code)


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


def listed_uri(fs: fsspec.AbstractFileSystem, path: str, given: str) -> str:
    """The URI of ``path``, a file found by listing ``given`` on ``fs``, in ``given``'s scheme.

    Local files stay plain paths. fsspec names a file with its filesystem's first protocol
    (adlfs: ``abfs://`` for ``az://``); the scheme the user gave is kept, so manifests, results
    and messages name the files as the user does.

    Example:
        >>> fs, _ = resolve("/data/images")
        >>> listed_uri(fs, "/data/images/a.png", "/data/images")
        '/data/images/a.png'
        >>> fs, _ = resolve("memory://doc/listed")
        >>> listed_uri(fs, "/doc/listed/a.png", "memory://doc/listed")
        'memory:///doc/listed/a.png'
    """
    if is_local(fs):
        return path
    uri = str(fs.unstrip_protocol(path))
    scheme = given.partition("://")[0]
    found, _, rest = uri.partition("://")
    protocols = fs.protocol if isinstance(fs.protocol, tuple | list) else (fs.protocol,)
    if scheme != found and scheme in protocols:
        return f"{scheme}://{rest}"
    return uri


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


def _plain_local_path(uri: str, storage_options: Mapping[str, Any] | None) -> str | None:
    """The path of a local file given as a plain path or ``file://`` URI without storage
    options, else ``None``.

    Such files are read and written with the OS's calls directly: going through fsspec
    (``url_to_fs``, its file object) cost ~0.05 ms per file, two or three times per row
    (issue 16); the errors are classified by the same rule.
    """
    if storage_options:
        return None
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
    elif _SCHEME_RE.match(uri) or "::" in uri:
        return None
    return os.path.abspath(os.path.expanduser(uri))


def _require_uri(uri: object) -> str:
    if uri is None or (isinstance(uri, float) and math.isnan(uri)):
        raise InputReadError("no URI given (the manifest cell is empty)", code="missingUri")
    if not isinstance(uri, str):
        raise InputReadError(
            f"expected a URI string, got {type(uri).__name__} {uri!r:.80}", code="inputUnreadable"
        )
    if not uri.strip():
        raise InputReadError(
            "no URI given (the manifest cell is an empty string)", code="missingUri"
        )
    return uri.strip()


def _classify_read_error(exc: BaseException, shown: str) -> InputReadError:
    detail = redact_url(f"{type(exc).__name__}: {exc}")
    fault = read_fault(exc)
    if fault == "denied":
        return InputReadError(
            f"{shown}: access denied ({detail}); check the credentials in storage_options "
            "and the bucket policy",
            code="inputPermissionDenied",
        )
    if fault == "notFound":
        return InputReadError(f"{shown} does not exist", code="inputNotFound")
    if fault == "directory":
        return InputReadError(f"{shown} is a directory, not a file", code="inputUnreadable")
    if fault == "noFilesystem":
        return InputReadError(
            f"{shown}: the filesystem for this URI is not installed ({detail})",
            code="inputUnreadable",
        )
    return InputReadError(f"{shown}: cannot read ({detail})", code="inputUnreadable")


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
        f"{shown} is larger than the {max_bytes:,}-byte limit for one input", code="inputTooLarge"
    )
    local = _plain_local_path(text, storage_options)
    if local is not None:
        try:
            with open(local, "rb") as f:
                if os.fstat(f.fileno()).st_size > max_bytes:
                    raise too_large
                data = f.read(max_bytes + 1)
        except InputReadError:
            raise
        except Exception as exc:
            raise _classify_read_error(exc, shown) from exc
        if len(data) > max_bytes:
            raise too_large
        return data
    try:
        fs, path = resolve(text, storage_options)
        # HTTP: stream (block_size=0) so servers without Range support still work.
        kwargs: dict[str, Any] = {"block_size": 0} if _protocol_of(fs) in _READ_ONLY else {}
        with fs.open(path, "rb", **kwargs) as f:
            # adlfs opens a "directory" (a blob name prefix) as a file of no size, which then
            # fails to read with a TypeError; its details (from the open) already say what it is.
            details = getattr(f, "details", None)
            if isinstance(details, dict) and details.get("type") == "directory":
                raise InputReadError(f"{shown} is a directory, not a file", code="inputUnreadable")
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
    if not data and _is_directory(fs, path):
        # Object stores read a "directory" (a key prefix) as an empty file.
        raise InputReadError(f"{shown} is a directory, not a file", code="inputUnreadable")
    return bytes(data)


def iter_bytes(
    uri: object,
    storage_options: Mapping[str, Any] | None = None,
    *,
    chunk_size: int = 1 << 20,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Iterator[bytes]:
    """Stream a file in chunks of at most ``chunk_size`` bytes (to hash it with flat memory).

    The first chunk is at most 64 KiB, so a caller that only needs a header can stop early.

    Raises:
        InputReadError: with the codes of :func:`read_bytes`.

    Example:
        >>> write_bytes("memory://doc/iter/a.bin", b"0123456789")
        >>> b"".join(iter_bytes("memory://doc/iter/a.bin", chunk_size=4))
        b'0123456789'
    """
    text = _require_uri(uri)
    shown = redact_url(text)
    total = 0
    try:
        local = _plain_local_path(text, storage_options)
        if local is not None:
            opened: Any = open(local, "rb")  # noqa: SIM115 - closed by the with below
        else:
            fs, path = resolve(text, storage_options)
            kwargs: dict[str, Any] = {"block_size": 0} if _protocol_of(fs) in _READ_ONLY else {}
            opened = fs.open(path, "rb", **kwargs)
        with opened as f:
            size = min(chunk_size, 64 * 1024)
            while True:
                chunk = f.read(size)
                if not chunk:
                    break
                total += len(chunk)
                if total > max_bytes:
                    raise InputReadError(
                        f"{shown} is larger than the {max_bytes:,}-byte limit for one input",
                        code="inputTooLarge",
                    )
                yield bytes(chunk)
                size = chunk_size
    except InputReadError:
        raise
    except GeneratorExit:
        raise
    except Exception as exc:
        raise _classify_read_error(exc, shown) from exc


def _is_directory(fs: fsspec.AbstractFileSystem, path: str) -> bool:
    try:
        return bool(fs.isdir(path))
    except Exception:  # a listing that fails says nothing more than the empty read
        return False


# --------------------------------------------------------------------------- writing


def _check_writable(fs: fsspec.AbstractFileSystem, uri: str) -> None:
    if _protocol_of(fs) in _READ_ONLY:
        raise ValueError(f"{redact_url(uri)}: http(s) locations are read-only; write elsewhere")


def _current_umask() -> int:
    """The process's umask, read without changing it where the system allows (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _UMASK_LOCK:  # elsewhere, set and restore it (the lock keeps our own threads apart)
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


_UMASK_LOCK = threading.Lock()


def _local_temp(path: str) -> tuple[int, str]:
    parent = os.path.dirname(path) or "."
    os.makedirs(parent, exist_ok=True)
    # Same directory, so the final os.replace is a rename on one filesystem (atomic); the
    # leading dot keeps readers that skip hidden files from ever seeing a half-written file.
    fd, temp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=parent)
    # mkstemp creates the file 0600; the published file gets what open() would have given it
    # (0644 under the usual umask 022), so a downstream job or a web server can read it.
    try:
        os.fchmod(fd, 0o666 & ~_current_umask())
    except BaseException:
        os.close(fd)
        os.unlink(temp)
        raise
    return fd, temp


def write_bytes(uri: str, data: bytes, storage_options: Mapping[str, Any] | None = None) -> None:
    """Write ``data`` to ``uri`` so that readers see the old object or the whole new one.

    On local disk: a temporary file in the same directory, fsync, then rename (parent
    directories are created). On object stores and ``memory://``: one PUT of the final object.

    Example:
        >>> write_bytes("memory://doc/write/a.txt", b"hi")
        >>> read_bytes("memory://doc/write/a.txt")
        b'hi'
    """
    local = _plain_local_path(uri, storage_options)
    if local is not None:
        fs, path = LOCAL_FS, local
    else:
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
            # Abort the upload. An abort that fails too (gcsfs cancels a resumable upload with
            # a request of its own) must not hide why the write failed: an upload never
            # completed is never published, and the store drops it after a while.
            with contextlib.suppress(Exception):
                remote.discard()
            remote.closed = True  # nothing left to flush: the upload was aborted or abandoned
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

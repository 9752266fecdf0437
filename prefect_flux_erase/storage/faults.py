"""What a failure of storage (or of the way to the API) means: the one place that classifies it.

fsspec backends fail in their own ways: s3fs raises bare ``OSError``s, fsspec's http backend a
``FileNotFoundError`` for a 403 with the response error as its cause, gcsfs its own
``HttpError`` (not an ``OSError``) or a bare ``OSError("Forbidden: ...")``, adlfs lets the
Azure SDK's errors through (sometimes wrapped in a ``RuntimeError``). Two questions are asked of
them, each answered here once, for every caller:

- :func:`read_fault`: why could a file not be read (denied, not found, a directory, ...)?
  Reading an input (:func:`~prefect_flux_erase.storage.read_bytes`) and reading a manifest
  (:mod:`~prefect_flux_erase.manifest.reader`) turn the answer into their own codes.
- :func:`is_transient_fault`: may the same work succeed if retried? Every orchestrator's stage
  retries ask it: the core's asyncio executor, the Prefect stage tasks (their
  ``retry_condition_fn`` is a thin wrapper) and the Airflow shard operator. It covers the
  Runware client's errors and the transport too, so it is the whole stage-retry rule.

HTTP statuses are judged by the package's one rule,
:func:`~prefect_flux_erase.errors.is_transient_status`. Nothing here imports an optional backend:
a library that is not loaded raised nothing.

Example:
    >>> read_fault(FileNotFoundError("s3://b/a.png")), read_fault(OSError("Forbidden: b/a.png"))
    ('notFound', 'denied')
    >>> is_transient_fault(OSError(5, "S3 answered 503 SlowDown")), is_transient_fault(KeyError())
    (True, False)
"""

from __future__ import annotations

import errno
import sys
from typing import Literal

from prefect_flux_erase.errors import FluxEraseError, is_transient_status

__all__ = [
    "ReadFault",
    "http_status",
    "is_gcsfs_http_error",
    "is_transient_fault",
    "read_fault",
]

#: Why a file could not be read: ``denied`` (401/403 or a ``PermissionError``), ``notFound``
#: (404/410 or a ``FileNotFoundError``), ``directory`` (a directory, not a file),
#: ``noFilesystem`` (the fsspec backend for the URI is not installed), ``other``.
ReadFault = Literal["denied", "notFound", "directory", "noFilesystem", "other"]

#: Storage errors that say what is wrong with the request, not that the service hiccuped.
_PERMANENT_OS_ERRORS = (
    FileNotFoundError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
    FileExistsError,
)
_PERMANENT_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.ENAMETOOLONG, errno.EINVAL})


def http_status(exc: BaseException) -> int | None:
    """The HTTP status behind an error, searching its causes (fsspec's http backend turns a
    403 into ``FileNotFoundError`` and keeps the real response error as the cause).

    gcsfs's errors carry theirs differently: its ``HttpError`` (an ``Exception``, not an
    ``OSError``) in ``code``, and a 403 comes as a bare ``OSError("Forbidden: <path>...")``.

    Example:
        >>> http_status(FileNotFoundError("x")) is None
        True
        >>> http_status(OSError("Forbidden: bucket/a.png\\nno storage.objects.get access"))
        403
    """
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            break
        status = getattr(seen, "status", None) or getattr(seen, "status_code", None)
        if isinstance(status, int):
            return status
        status = _gcsfs_status(seen)
        if status is not None:
            return status
        seen = seen.__cause__ or seen.__context__
    return None


def is_gcsfs_http_error(exc: BaseException) -> bool:
    """Whether ``exc`` is gcsfs's ``HttpError``: what gcsfs raises for an error answer other
    than 403, 404 and 412 (a 429 or 5xx once its own retries are spent), an ``Exception``
    rather than an ``OSError``.

    Example:
        >>> is_gcsfs_http_error(OSError("S3 answered 503"))
        False
    """
    retry_module = sys.modules.get("gcsfs.retry")
    if retry_module is None:
        return False  # gcsfs is not loaded, so it raised nothing
    http_error = getattr(retry_module, "HttpError", None)
    return isinstance(http_error, type) and isinstance(exc, http_error)


def _gcsfs_status(exc: BaseException) -> int | None:
    if is_gcsfs_http_error(exc):
        code = getattr(exc, "code", None)
        return int(code) if isinstance(code, int | str) and str(code).isdigit() else None
    # gcsfs.retry.validate_response: ``raise OSError(f"Forbidden: {path}\n{msg}")``.
    if type(exc) is OSError and exc.errno is None and str(exc).startswith("Forbidden: "):
        return 403
    return None


def read_fault(exc: BaseException) -> ReadFault:
    """Why reading a file failed, whatever the backend: the one mapping behind the read codes
    (``inputPermissionDenied`` / ``manifestPermissionDenied``, ``inputNotFound`` /
    ``manifestNotFound``, ...).

    Example:
        >>> read_fault(PermissionError("s3://b/a.png")), read_fault(IsADirectoryError("/tmp"))
        ('denied', 'directory')
        >>> read_fault(ImportError("Install s3fs to access S3")), read_fault(ValueError("bad"))
        ('noFilesystem', 'other')
    """
    status = http_status(exc)
    if isinstance(exc, PermissionError) or status in (401, 403):
        return "denied"
    if isinstance(exc, FileNotFoundError) or status in (404, 410):
        return "notFound"
    if isinstance(exc, IsADirectoryError):
        return "directory"
    if isinstance(exc, ImportError):
        return "noFilesystem"
    return "other"


def is_transient_fault(exc: BaseException | None) -> bool:
    """Whether an exception is a fault that may pass, so that retrying the work can succeed.

    The package's own errors say so themselves (``retryable``: only the Runware client's
    transient errors); timeouts, lost connections and the HTTP client's transport errors may
    pass; a storage error decides by the service's HTTP status where it carries one, and
    otherwise an ``OSError`` may pass unless it names a missing object, a denied key, a full
    disk or the like. Anything else (a ``KeyError``, a ``ValueError``...) is a bug or a bad
    input and would fail the same way again.

    Example:
        >>> from prefect_flux_erase.runware.errors import TransientError, PermanentError
        >>> is_transient_fault(TransientError("503")), is_transient_fault(PermanentError("key"))
        (True, False)
        >>> is_transient_fault(TimeoutError()), is_transient_fault(ConnectionResetError())
        (True, True)
        >>> is_transient_fault(OSError(5, "S3 answered 503")), is_transient_fault(PermissionError())
        (True, False)
        >>> is_transient_fault(OSError("Forbidden: bucket/a.png"))  # gcsfs's 403
        False
        >>> is_transient_fault(KeyError("a bug")), is_transient_fault(None)
        (False, False)
    """
    if exc is None:
        return False
    if isinstance(exc, FluxEraseError):
        return exc.retryable
    if isinstance(exc, TimeoutError | ConnectionError) or _is_httpx_transport_error(exc):
        return True
    azure = _azure_fault(exc)
    if azure is not None:
        return azure
    # gcsfs raises its own HttpError (an Exception, not an OSError) once its retries of a 408,
    # 429 or 5xx are spent, and a bare OSError("Forbidden: ...") for a 403: where an error
    # carries the service's status, the status decides.
    if isinstance(exc, OSError) or is_gcsfs_http_error(exc):
        status = http_status(exc)
        if status is not None:
            return is_transient_status(status)
    # s3fs raises a bare OSError for a throttled or failing service once its own retries are
    # spent; a missing object, a denied key or a full disk fails the same way again.
    return (
        isinstance(exc, OSError)
        and not isinstance(exc, _PERMANENT_OS_ERRORS)
        and exc.errno not in _PERMANENT_ERRNOS
    )


def _is_httpx_transport_error(exc: BaseException) -> bool:
    """httpx's own transport errors (no answer at all), should one escape the Runware client."""
    httpx = sys.modules.get("httpx")
    if httpx is None:
        return False  # httpx is not loaded, so it raised nothing
    return isinstance(exc, httpx.TransportError)


def _azure_fault(exc: BaseException) -> bool | None:
    """adlfs lets the Azure SDK's own errors through once the SDK's retries are spent: no
    connection (``ServiceRequestError``), a broken answer (``ServiceResponseError``), or the
    service's answer (``HttpResponseError`` with its status; 404 and 403 are its subclasses).
    Some reach us wrapped in adlfs's ``RuntimeError`` ("Failed to upload block: ...").
    ``None`` when ``exc`` is no Azure error."""
    if "azure.core.exceptions" not in sys.modules:
        return None  # the Azure SDK is not loaded, so it raised nothing
    from azure.core.exceptions import (
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    seen: BaseException | None = exc
    for _ in range(4):
        if not isinstance(seen, RuntimeError) or seen.__cause__ is None:
            break
        seen = seen.__cause__
    if isinstance(seen, ServiceRequestError | ServiceResponseError):
        return True
    if isinstance(seen, HttpResponseError):
        return is_transient_status(seen.status_code)
    return None

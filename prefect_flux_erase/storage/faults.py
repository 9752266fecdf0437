"""Which faults may pass: one rule for the API's, the network's and every storage service's.

A stage (or a whole request) that failed with a transient fault can succeed when run again; a
permanent one (a missing object, a denied key, a full disk, a bug) fails the same way again.
Every orchestrator's stage retries use :func:`is_transient_fault`: the core's asyncio executor,
the Prefect stage tasks and the Airflow shard operator.
"""

from __future__ import annotations

import asyncio
import errno
import sys

import httpx

from prefect_flux_erase.errors import is_transient_status
from prefect_flux_erase.runware.errors import RunwareError
from prefect_flux_erase.shards.api_backend import RunAborted
from prefect_flux_erase.storage.files import http_status, is_gcsfs_http_error

#: Storage errors that say what is wrong with the request, not that the service hiccuped.
_PERMANENT_OS_ERRORS = (
    FileNotFoundError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
    FileExistsError,
)
_PERMANENT_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.ENAMETOOLONG, errno.EINVAL})


def is_transient_fault(exc: BaseException | None) -> bool:
    """Whether an exception is a fault that may pass (so a retry can succeed).

    Example:
        >>> from prefect_flux_erase.runware.errors import TransientError, PermanentError
        >>> is_transient_fault(TransientError("503")), is_transient_fault(PermanentError("bad key"))
        (True, False)
        >>> is_transient_fault(TimeoutError()), is_transient_fault(ConnectionResetError())
        (True, True)
        >>> slow_down = OSError(5, "S3 answered 503 SlowDown")
        >>> is_transient_fault(slow_down), is_transient_fault(PermissionError())
        (True, False)
        >>> is_transient_fault(OSError("Forbidden: bucket/a.png"))  # gcsfs's 403
        False
        >>> is_transient_fault(KeyError("a bug"))
        False
    """
    if exc is None or isinstance(exc, RunAborted):
        return False
    if isinstance(exc, RunwareError):
        return exc.retryable
    if isinstance(
        exc, TimeoutError | asyncio.TimeoutError | ConnectionError | httpx.TransportError
    ):
        return True
    if _is_transient_azure(exc):
        return True
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


def _is_transient_azure(exc: BaseException) -> bool:
    """adlfs lets the Azure SDK's own errors through once the SDK's retries are spent: no
    connection (``ServiceRequestError``), a broken answer (``ServiceResponseError``), or the
    service's answer (``HttpResponseError`` with its status; 404 and 403 are its subclasses).
    Some reach us wrapped in adlfs's ``RuntimeError`` ("Failed to upload block: ...")."""
    if "azure.core.exceptions" not in sys.modules:
        return False  # the Azure SDK is not loaded, so it raised nothing
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
    return False

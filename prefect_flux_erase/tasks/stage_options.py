"""Which failures of a stage task are worth a Prefect retry: transient ones only.

Row problems never reach this point: they are failed rows, not failed tasks. What does reach it
is a fault of the whole stage — the API or the storage unreachable, a timeout, a rejected API
key, a bug. Retrying helps only the first kind; a permanent API error or a programming error
would fail the same way again, so it fails at once with its real message.
"""

from __future__ import annotations

import asyncio
import errno
import sys
from typing import TYPE_CHECKING, Any

import httpx
from prefect.tasks import exponential_backoff

from prefect_flux_erase.runware.errors import RunwareError
from prefect_flux_erase.shards.api_backend import RunAborted
from prefect_flux_erase.storage.files import http_status, is_gcsfs_http_error

if TYPE_CHECKING:
    from prefect.client.schemas.objects import State, TaskRun
    from prefect.tasks import Task

#: Prefect retries of one stage task (on top of the HTTP client's own per-request retries).
STAGE_RETRIES = 3
#: First delay between Prefect retries, doubled each time and jittered.
BACKOFF_FACTOR = 2.0
#: Up to this fraction of each delay is added at random, so shards do not retry in lockstep.
JITTER_FACTOR = 0.5


#: Storage errors that say what is wrong with the request, not that the service hiccuped.
_PERMANENT_OS_ERRORS = (
    FileNotFoundError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
    FileExistsError,
)
_PERMANENT_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.ENAMETOOLONG, errno.EINVAL})
#: A storage service's answers that may pass (besides 5xx): request timeout, throttling.
_TRANSIENT_STATUSES = frozenset({408, 429})


def _is_transient_status(status: int | None) -> bool:
    """One rule for every storage service's HTTP status: 408, 429 and 5xx may pass."""
    return status is not None and (status in _TRANSIENT_STATUSES or status >= 500)


def is_transient(exc: BaseException | None) -> bool:
    """Whether an exception is a fault that may pass (so a retry can succeed).

    Example:
        >>> from prefect_flux_erase.runware.errors import TransientError, PermanentError
        >>> is_transient(TransientError("503")), is_transient(PermanentError("bad key"))
        (True, False)
        >>> is_transient(TimeoutError()), is_transient(ConnectionResetError())
        (True, True)
        >>> is_transient(OSError(5, "S3 answered 503 SlowDown")), is_transient(PermissionError())
        (True, False)
        >>> is_transient(OSError("Forbidden: bucket/a.png"))  # gcsfs's 403
        False
        >>> is_transient(KeyError("a bug"))
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
            return _is_transient_status(status)
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
        return _is_transient_status(seen.status_code)
    return False


def retry_if_transient(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Prefect ``retry_condition_fn``: retry the stage only after a transient fault.

    Example:
        ```python
        @task(retries=3, retry_condition_fn=retry_if_transient)
        def submit_erase(...): ...
        ```
    """
    data = state.data
    if isinstance(data, BaseException):
        return is_transient(data)
    try:
        result = state.result(raise_on_failure=False)
    except Exception:  # an unreadable state is not evidence of a transient fault
        return False
    return isinstance(result, BaseException) and is_transient(result)


def stage_retry_delays() -> Any:
    """Exponential backoff for stage retries: 2 s, 4 s, 8 s (each jittered by up to 50 %).

    Example:
        >>> stage_retry_delays()(3)
        [2.0, 4.0, 8.0]
    """
    return exponential_backoff(backoff_factor=BACKOFF_FACTOR)


def stage_task_options() -> dict[str, Any]:
    """The retry and caching options every erase task shares, for ``@task(...)``.

    Transient failures are retried with jittered backoff, nothing else is; results are neither
    cached across runs (a rerun is decided by the results ledger) nor held in memory.

    Example:
        >>> options = stage_task_options()
        >>> options["retries"], options["cache_result_in_memory"]
        (3, False)
    """
    from prefect.cache_policies import NO_CACHE

    return {
        "retries": STAGE_RETRIES,
        "retry_delay_seconds": stage_retry_delays(),
        "retry_jitter_factor": JITTER_FACTOR,
        "retry_condition_fn": retry_if_transient,
        "cache_policy": NO_CACHE,
        "cache_result_in_memory": False,
    }

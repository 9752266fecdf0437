"""One exception tree for everything the Runware API (or the way to it) can do wrong.

``RunwareError`` is the Runware branch of the package's one coded-error base,
:class:`~prefect_flux_erase.errors.FluxEraseError` (``code``, ``message``, picklable).

```
RunwareError
├── TransientError            retry with backoff: 408/425/429/5xx, timeouts, resets, provider faults
│   ├── RateLimitError        429 (carries retry_after)
│   └── TransportError        no HTTP answer: connect/read timeout, reset, bad JSON on 2xx
├── PermanentError            do not retry: validation, auth, credits, content policy, not found
│   ├── InvalidOptionError    rejected client-side, before any request (also a ValueError)
│   ├── AuthenticationError   401/403, invalidApiKey, missingApiKey
│   ├── InsufficientCreditsError  402, insufficientCredits
│   ├── ContentPolicyError    safety blocks
│   └── TaskNotFoundError     taskFailedOrNotFound, *NotFound, *Expired
└── ConflictTaskUUIDError     conflictTaskUUID: the task was submitted before; poll it instead
```

:func:`classify` is the one place that decides which branch an API error belongs to; which HTTP
statuses are transient is the package's one rule,
:func:`~prefect_flux_erase.errors.is_transient_status`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from prefect_flux_erase.errors import FluxEraseError, is_transient_status

_TIMEOUT_RE = re.compile("timeout", re.IGNORECASE)
_RATE_RE = re.compile("ratelimit", re.IGNORECASE)

_CONTENT_POLICY = {
    "providerContentPolicyViolation",
    "contentPolicyViolation",
    "nsfwContentDetected",
    "imageBlocked",
    "moderationFailed",
}
_TRANSIENT_CODES = {
    "internalServerError",
    "serviceUnavailable",
    "unknownError",
    "inferenceError",
    "processingFailed",
    "taskFailed",
    "downloadFailed",
    "noAvailableServer",
    "modelUnavailable",
    "rateLimitExceeded",
    "httpError",
    "parseError",
    "connectionError",
}
_AUTH_CODES = {"invalidApiKey", "missingApiKey", "unauthorized", "forbidden"}
_CREDIT_CODES = {"insufficientCredits"}
_NOT_FOUND_CODES = {"taskFailedOrNotFound", "taskCancelled"}


class RunwareError(FluxEraseError):
    """Base of every error raised by this package's Runware layer.

    Attributes mirror the API's error object: ``code``, ``message``, ``parameter`` (first entry
    when the API sent a list), ``parameters`` (all of them), ``task_uuid``, plus ``http_status``
    and ``retry_after`` (seconds, from a ``Retry-After`` header) when known. Unlike the
    package's other errors, ``code`` may be ``None`` (an error object without one).

    Example:
        >>> err = RunwareError("boom", code="unknownError", http_status=500)
        >>> err.code, err.http_status
        ('unknownError', 500)
    """

    parameter: str | None
    parameters: list[str]
    task_uuid: str | None
    http_status: int | None
    retry_after: float | None
    documentation: str | None

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        parameter: str | None = None,
        parameters: Sequence[str] | None = None,
        task_uuid: str | None = None,
        http_status: int | None = None,
        retry_after: float | None = None,
        documentation: str | None = None,
    ) -> None:
        listed = list(parameters) if parameters else ([parameter] if parameter else [])
        super().__init__(
            message,
            code=code,
            parameter=parameter if parameter is not None else (listed[0] if listed else None),
            parameters=listed,
            task_uuid=task_uuid,
            http_status=http_status,
            retry_after=retry_after,
            documentation=documentation,
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, "
            f"parameter={self.parameter!r}, task_uuid={self.task_uuid!r}, "
            f"http_status={self.http_status!r})"
        )


class TransientError(RunwareError):
    """A fault that may pass: retry with backoff (honouring ``retry_after`` when set).

    Example:
        >>> TransientError("busy", code="serviceUnavailable", http_status=503).retryable
        True
    """

    retryable = True


class RateLimitError(TransientError):
    """HTTP 429 or a rate-limit code: slow down, then retry.

    Example:
        >>> err = RateLimitError("queue full", http_status=429, retry_after=0.5)
        >>> isinstance(err, TransientError), err.retry_after
        (True, 0.5)
    """


class TransportError(TransientError):
    """No usable HTTP answer: connection refused or reset, timeout, unparseable 2xx body.

    Example:
        >>> TransportError("connection reset", code="connectionError").retryable
        True
    """


class PermanentError(RunwareError):
    """A fault that retrying will not fix: validation, authentication, credits, policy.

    Example:
        >>> PermanentError("bad mask", code="invalidMaskDimensions").retryable
        False
    """


class InvalidOptionError(PermanentError, ValueError):
    """An option value rejected before any request was sent.

    Example:
        >>> InvalidOptionError("outputQuality: ...; got 150", parameter="outputQuality").code
        'invalidOption'
    """

    default_code = "invalidOption"


class AuthenticationError(PermanentError):
    """The API key is missing, invalid or lacks permission (401/403).

    Example:
        >>> classify("invalidApiKey", 401) is AuthenticationError
        True
    """


class InsufficientCreditsError(PermanentError):
    """The account balance is too low (402 / ``insufficientCredits``).

    Example:
        >>> classify(None, 402) is InsufficientCreditsError
        True
    """


class ContentPolicyError(PermanentError):
    """The input or output was blocked by content safety.

    Example:
        >>> classify("providerContentPolicyViolation") is ContentPolicyError
        True
    """


class TaskNotFoundError(PermanentError):
    """The task is unknown, cancelled or expired on the server.

    Example:
        >>> classify("taskFailedOrNotFound") is TaskNotFoundError
        True
    """


class ConflictTaskUUIDError(RunwareError):
    """``conflictTaskUUID``: this taskUUID was submitted before. Poll it; do not resubmit.

    Example:
        >>> err = error_from_object({"code": "conflictTaskUUID", "taskUUID": "t"}, http_status=400)
        >>> type(err).__name__, err.retryable
        ('ConflictTaskUUIDError', False)
    """


def classify(code: str | None, http_status: int | None = None) -> type[RunwareError]:
    """Return the exception class for an API error ``code`` and HTTP status.

    The code decides when it is known; otherwise the HTTP status does; otherwise permanent.
    Any code containing "timeout" in any case is transient, whatever else it says.

    Example:
        >>> classify("timeoutProvider").__name__
        'TransientError'
        >>> classify("invalidMaskDimensions", 400).__name__
        'PermanentError'
        >>> classify(None, 503).__name__
        'TransientError'
        >>> classify("httpError", 400).__name__, classify("httpError", 502).__name__
        ('PermanentError', 'TransientError')
    """
    if code == "httpError" and http_status is not None:
        # A synthesised code for a non-JSON error body: only the status says what it means.
        code = None
    if code:
        if code == "conflictTaskUUID":
            return ConflictTaskUUIDError
        if _TIMEOUT_RE.search(code):
            # Any code naming a timeout, in any case, is transient: checked before the
            # not-found/expired suffix rules so that e.g. ``gatewayTimeoutExpired`` is retried.
            return TransientError
        if code in _AUTH_CODES:
            return AuthenticationError
        if code in _CREDIT_CODES:
            return InsufficientCreditsError
        if code in _CONTENT_POLICY:
            return ContentPolicyError
        if code in _NOT_FOUND_CODES or code.endswith(("NotFound", "Expired")):
            return TaskNotFoundError
        if _RATE_RE.search(code):
            return RateLimitError
        if code in _TRANSIENT_CODES or code.startswith("provider"):
            return TransientError
        if code.startswith(
            ("invalid", "missing", "value", "max", "min", "duplicate", "unsupported", "unknown")
        ) or code in {"incompatibleParameters"}:
            return PermanentError
    if http_status is not None:
        if http_status == 429:
            return RateLimitError
        if is_transient_status(http_status):
            return TransientError
        if http_status in (401, 403):
            return AuthenticationError
        if http_status == 402:
            return InsufficientCreditsError
        if http_status == 404:
            return TaskNotFoundError
    return PermanentError


def _as_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def error_from_object(
    obj: Mapping[str, Any],
    *,
    http_status: int | None = None,
    retry_after: float | None = None,
    task_uuid: str | None = None,
) -> RunwareError:
    """Build the right exception from an API error object (any of the documented shapes).

    Example:
        >>> e = error_from_object({"code": "invalidMaskDimensions", "message": "size",
        ...                        "parameter": ["inputs.mask", "inputs.image"]}, http_status=400)
        >>> type(e).__name__, e.parameter, e.parameters
        ('PermanentError', 'inputs.mask', ['inputs.mask', 'inputs.image'])
    """
    code = _as_str(obj.get("code")) or ("httpError" if http_status and http_status >= 400 else None)
    raw_param = obj.get("parameter")
    params: list[str] = []
    if isinstance(raw_param, str):
        params = [raw_param]
    elif isinstance(raw_param, list):
        params = [p for p in raw_param if isinstance(p, str)]
    message = _as_str(obj.get("message")) or (code or "Runware API error")
    cls = classify(code, http_status)
    return cls(
        message,
        code=code,
        parameters=params,
        task_uuid=_as_str(obj.get("taskUUID")) or task_uuid,
        http_status=http_status,
        retry_after=retry_after,
        documentation=_as_str(obj.get("documentation")),
    )


def redact(text: str, secret: str | None) -> str:
    """Replace every occurrence of ``secret`` in ``text`` (used on every message we surface).

    Example:
        >>> redact("bad key sk-123", "sk-123")
        'bad key ***'
    """
    if secret and len(secret) >= 4:
        return text.replace(secret, "***")
    return text

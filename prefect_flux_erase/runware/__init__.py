"""The Prefect-free Runware core: wire models, errors, reply parsing and the HTTP client.

Example:
    >>> from prefect_flux_erase.runware import RetryPolicy, redact_url
    >>> RetryPolicy(base=0.1, jitter=0.0).delay(1)
    0.2
    >>> redact_url("https://x/o?sig=abc")
    'https://x/o?sig=REDACTED'
"""

from prefect_flux_erase.runware.client import RunwareClient, run_sync
from prefect_flux_erase.runware.client_stats import ClientStats, RetryEvent
from prefect_flux_erase.runware.errors import (
    AuthenticationError,
    ConflictTaskUUIDError,
    ContentPolicyError,
    InsufficientCreditsError,
    InvalidOptionError,
    PermanentError,
    RateLimitError,
    RunwareError,
    TaskNotFoundError,
    TransientError,
    TransportError,
    classify,
    error_from_object,
)
from prefect_flux_erase.runware.ids import task_uuid
from prefect_flux_erase.runware.limiter import AdaptiveLimiter
from prefect_flux_erase.runware.models import (
    MODEL_ID,
    EraseInputs,
    EraseSettings,
    ImageInferenceTask,
    Safety,
    build_task,
)
from prefect_flux_erase.runware.polling import PollPolicy
from prefect_flux_erase.runware.redaction import redact_text, redact_url
from prefect_flux_erase.runware.responses import ResultItem, parse_reply
from prefect_flux_erase.runware.retry_policy import RetryPolicy, parse_retry_after
from prefect_flux_erase.runware.task_outcome import TaskOutcome, TaskState

__all__ = [
    "MODEL_ID",
    "AdaptiveLimiter",
    "AuthenticationError",
    "ClientStats",
    "ConflictTaskUUIDError",
    "ContentPolicyError",
    "EraseInputs",
    "EraseSettings",
    "ImageInferenceTask",
    "InsufficientCreditsError",
    "InvalidOptionError",
    "PermanentError",
    "PollPolicy",
    "RateLimitError",
    "ResultItem",
    "RetryEvent",
    "RetryPolicy",
    "RunwareClient",
    "RunwareError",
    "Safety",
    "TaskNotFoundError",
    "TaskOutcome",
    "TaskState",
    "TransientError",
    "TransportError",
    "build_task",
    "classify",
    "error_from_object",
    "parse_reply",
    "parse_retry_after",
    "redact_text",
    "redact_url",
    "run_sync",
    "task_uuid",
]

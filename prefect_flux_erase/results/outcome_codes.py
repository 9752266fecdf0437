"""Which failed rows a rerun tries again: one table of row error codes, final or retryable.

A row that failed is either **final** — its inputs or options are wrong, or the content was
refused: running it again gives the same answer, so a rerun with the same run key leaves it
alone (unless its inputs changed, or ``retry_failed`` names its code) — or **retryable**: the
fault may pass (a transport fault, a 5xx or 429 past its retries, a timeout, a run stopped
before the row ran), so a rerun tries it again. Retryable rows are tried in one of two ways:

- ``resume``: submitted again under the task UUID it last used. If the API already has that
  task, it answers ``conflictTaskUUID`` and the row is collected with ``getResponse`` (never
  charged twice); if the task failed there, the row moves on to its next attempt.
- ``refetch``: its result was generated, and paid for, but never reached the output (the
  download or the write failed). Only its output is fetched again, with ``getResponse`` on the
  same task UUID: no new task, no new charge.

Every face (the Prefect flow, the CLI, the Airflow provider, :func:`~prefect_flux_erase.run.
run_manifest`) reads this table; add a code here, not elsewhere. Codes the API passes
through unchanged that are not listed are classified like the API error they are
(:func:`~prefect_flux_erase.runware.errors.classify`): transient ones are retryable.

Example:
    >>> is_final("invalidMaskDimensions"), is_final("pollTimeout"), is_final("timeoutProvider")
    (True, False, False)
    >>> rerun_action("downloadFailed"), rerun_action("connectionError")
    ('refetch', 'resume')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final, Literal

RerunAction = Literal["keep", "resume", "refetch"]

#: Codes whose row a rerun leaves alone: the inputs, the options or the content are the
#: problem, and the same request would get the same answer.
FINAL_CODES: Final[frozenset[str]] = frozenset(
    {
        # Found before any API call (validation of the row).
        "missingInputsImage",
        "missingInputsMask",
        "missingUri",
        "inputNotFound",
        "inputPermissionDenied",
        "inputTooLarge",
        "emptyInput",
        "invalidImage",
        "imageTooLarge",
        "imageTooSmall",
        "invalidMaskDimensions",
        "invalidOption",
        "unsafeRowKey",
        "duplicateRowKey",
        "emptyMask",
        "unsafeOutputPath",
        "invalidURL",
        "tooManyRedirects",
        # The local engine failed on this row: it is deterministic.
        "engineError",
        # The API refused the task or its content, or no longer knows it.
        "unsupportedParameter",
        "providerContentPolicyViolation",
        "contentPolicyViolation",
        "nsfwContentDetected",
        "imageBlocked",
        "moderationFailed",
        "taskFailedOrNotFound",
        "uploadFailed",
    }
)

#: Retryable codes whose result was generated (and paid for) but not stored: a rerun fetches
#: the output again by the row's task UUID instead of submitting the row.
REFETCH_CODES: Final[frozenset[str]] = frozenset(
    {"downloadFailed", "outputWriteFailed", "missingOutput", "invalidOutput"}
)

#: Retryable codes of the pipeline's own (the API's transient codes are classified by
#: :func:`~prefect_flux_erase.runware.errors.classify`). A rerun submits the row again under
#: its last task UUID: a task that already ran is collected, not charged twice.
RESUME_CODES: Final[frozenset[str]] = frozenset(
    {
        # The row was sent, and may have run, but its answer never came.
        "pollTimeout",
        "notFinished",
        "unanswered",
        "missingReply",
        "noReply",
        "requestTimeout",
        "connectionError",
        "httpError",
        "parseError",
        "unknownError",
        # The run stopped (interrupted, or a run-level fault) before the row was sent.
        "notAttempted",
        # A storage fault while reading the inputs; reading them again is free.
        "inputUnreadable",
        # The run's spending cap was reached before the row ran.
        "budgetExhausted",
    }
)


def is_final(code: str | None) -> bool:
    """Whether a row that failed with ``code`` stays failed on a rerun (unless its inputs
    change or ``retry_failed`` names the code).

    Example:
        >>> is_final("emptyMask"), is_final("downloadFailed"), is_final("serviceUnavailable")
        (True, False, False)
    """
    if code is None:
        return False  # a failure without a code says nothing: try again
    if code in FINAL_CODES:
        return True
    if code in REFETCH_CODES or code in RESUME_CODES:
        return False
    from prefect_flux_erase.runware.errors import ConflictTaskUUIDError, TransientError, classify

    cls = classify(code)
    return not issubclass(cls, TransientError | ConflictTaskUUIDError)


def rerun_action(code: str | None, *, backend: str = "runware") -> RerunAction:
    """What a rerun does with a row that failed with ``code``: ``keep`` it (final),
    ``resume`` it (submit again under its last task UUID) or ``refetch`` its paid result.

    The ``local`` backend has no server holding results: its rows are erased again.

    Example:
        >>> rerun_action("inputNotFound"), rerun_action("timeoutProvider")
        ('keep', 'resume')
        >>> rerun_action("outputWriteFailed"), rerun_action("outputWriteFailed", backend="local")
        ('refetch', 'resume')
    """
    if is_final(code):
        return "keep"
    if code in REFETCH_CODES and backend == "runware":
        return "refetch"
    return "resume"


def retry_codes(retry_failed: bool | Iterable[str] | None) -> frozenset[str]:
    """``retry_failed`` as a set of codes; ``{"*"}`` means every failed row.

    Example:
        >>> sorted(retry_codes(["emptyMask", "uploadFailed"])), retry_codes(True)
        (['emptyMask', 'uploadFailed'], frozenset({'*'}))
        >>> retry_codes(False), retry_codes(None)
        (frozenset(), frozenset())
    """
    if retry_failed is None or retry_failed is False:
        return frozenset()
    if retry_failed is True:
        return frozenset({"*"})
    if isinstance(retry_failed, str):
        return frozenset({retry_failed})
    codes = frozenset(str(c) for c in retry_failed)
    return codes or frozenset({"*"})


def retried_by_request(code: str | None, codes: frozenset[str]) -> bool:
    """Whether ``retry_failed`` (as :func:`retry_codes` gives it) names this code.

    Example:
        >>> retried_by_request("emptyMask", frozenset({"*"}))
        True
        >>> retried_by_request("emptyMask", frozenset({"uploadFailed"}))
        False
    """
    return "*" in codes or (code is not None and code in codes)


def needs_rerun(error_counts: Mapping[str, int], codes: frozenset[str] = frozenset()) -> bool:
    """Whether a shard whose failed rows have these codes has work for a rerun, before
    looking at its inputs: a retryable row, or a code ``retry_failed`` names.

    Example:
        >>> needs_rerun({"emptyMask": 2}), needs_rerun({"emptyMask": 2, "pollTimeout": 1})
        (False, True)
        >>> needs_rerun({"emptyMask": 2}, frozenset({"emptyMask"}))
        True
    """
    return any(
        count and (not is_final(code) or retried_by_request(code, codes))
        for code, count in error_counts.items()
    )

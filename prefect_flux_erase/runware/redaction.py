"""Keep credentials out of logs and messages: signed URLs, URL passwords and the API key.

Presigned upload/download URLs (S3 ``X-Amz-Signature``, GCS ``X-Goog-Signature``, Azure SAS
``sig=``, CloudFront ``Signature=``, webhook ``token=``) grant access to whoever holds them, so
their credential parameters are replaced by ``REDACTED`` wherever this package logs or surfaces a
URL. :func:`redact_url` does it for one URL, :func:`redact_text` for any message (URLs found
anywhere in it, plus explicit secrets), and :func:`install_log_redaction` applies the same
rewriting to the HTTP libraries' own log records (httpx logs every request URL at INFO).

Example:
    >>> redact_url("https://b.s3.amazonaws.com/o.png?X-Amz-Expires=60&X-Amz-Signature=abc123")
    'https://b.s3.amazonaws.com/o.png?X-Amz-Expires=60&X-Amz-Signature=REDACTED'
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Final

from prefect_flux_erase.runware.errors import redact

#: Query parameters whose value is a credential (compared case-insensitively).
SENSITIVE_QUERY_PARAMS: Final[tuple[str, ...]] = (
    "X-Amz-Signature",
    "X-Amz-Credential",
    "X-Amz-Security-Token",
    "X-Goog-Signature",
    "X-Goog-Credential",
    "Signature",
    "sig",
    "token",
    "access_token",
    "apiKey",
    "api_key",
    "Policy",
    "Key-Pair-Id",
)
REDACTED: Final = "REDACTED"

_PARAM_RE = re.compile(
    r"(?P<head>[?&;](?:" + "|".join(re.escape(p) for p in SENSITIVE_QUERY_PARAMS) + r")=)"
    r"[^&#\s\"'<>]*",
    re.IGNORECASE,
)
# `scheme://user:password@host`: keep the user, drop the password.
_USERINFO_RE = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^/\s:@\"'<>]+:)[^@/\s\"'<>]+@", re.I)


def redact_url(url: str) -> str:
    """Return ``url`` with signature/credential query values and any password replaced.

    Example:
        >>> redact_url("https://acct.blob.core.windows.net/c/o.png?sv=2024&sig=s3cr3t%3D")
        'https://acct.blob.core.windows.net/c/o.png?sv=2024&sig=REDACTED'
        >>> redact_url("https://user:pw@host/path")
        'https://user:REDACTED@host/path'
    """
    return redact_text(url)


def redact_text(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Redact every signed URL found in ``text``, then every given secret string.

    Example:
        >>> redact_text("PUT https://x/o?X-Goog-Signature=ff00 failed (key rk-canary-1)",
        ...             ["rk-canary-1"])
        'PUT https://x/o?X-Goog-Signature=REDACTED failed (key ***)'
    """
    out = _PARAM_RE.sub(lambda m: m.group("head") + REDACTED, text)
    out = _USERINFO_RE.sub(lambda m: m.group("head") + REDACTED + "@", out)
    for secret in secrets:
        out = redact(out, secret)
    return out


class RedactingLogFilter(logging.Filter):
    """A logging filter that rewrites a record's message with :func:`redact_text`.

    The message is formatted once, redacted, and stored without arguments, so handlers further
    down see only the redacted text. Filters run only for records that pass the level check, so
    this costs nothing when the HTTP libraries' logging is off.

    Example:
        >>> rec = logging.LogRecord("httpx", logging.INFO, "", 0, "GET %s", ("https://x/?sig=1",),
        ...                         None)
        >>> RedactingLogFilter().filter(rec), rec.getMessage()
        (True, 'GET https://x/?sig=REDACTED')
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record in place and keep it (always returns True).

        Example:
            >>> rec = logging.LogRecord("x", logging.INFO, "", 0, "at %s", ("https://h/?sig=z",),
            ...                         None)
            >>> RedactingLogFilter().filter(rec), rec.msg
            (True, 'at https://h/?sig=REDACTED')
        """
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is not ours to drop
            return True
        redacted = redact_text(message)
        if redacted != message or record.args:
            record.msg = redacted
            record.args = None
        if record.exc_info and not record.exc_text:
            # Tracebacks quote exceptions whose text holds the signed URL (aiohttp's do).
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
            record.exc_info = None  # handlers print exc_text, never re-render the exception
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


#: Loggers that print request URLs or response headers (httpx at INFO, httpcore, aiohttp and
#: fsspec's http backend at DEBUG).
HTTP_LOGGERS: Final[tuple[str, ...]] = (
    "httpx",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "aiohttp.client",
    "aiohttp.internal",
    # fsspec's http backend logs every input URL it reads, and tracebacks quoting it.
    "fsspec",
    "fsspec.http",
)
_FILTER = RedactingLogFilter()


def install_log_redaction(loggers: Iterable[str] = HTTP_LOGGERS) -> None:
    """Attach the redacting filter to the HTTP libraries' loggers (idempotent).

    A filter on a logger applies only to records created on that very logger, not to records
    propagated from children, hence the explicit list of httpcore's sub-loggers.

    Example:
        >>> install_log_redaction(); install_log_redaction()
        >>> sum(isinstance(f, RedactingLogFilter) for f in logging.getLogger("httpx").filters)
        1
    """
    for name in loggers:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingLogFilter) for f in logger.filters):
            logger.addFilter(_FILTER)

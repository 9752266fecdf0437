"""When to try a request again: exponential backoff with jitter that honours ``Retry-After``.

:class:`RetryPolicy` is an injectable value object: the client asks it for the delay before each
retry and records the answer (see :class:`~prefect_flux_erase.runware.client_stats.ClientStats`), so
tests can check the chosen delays instead of measuring wall time, and use tiny values.

Example:
    >>> policy = RetryPolicy(base=0.5, cap=4.0, jitter=0.0)
    >>> [policy.delay(n) for n in range(5)]
    [0.5, 1.0, 2.0, 4.0, 4.0]
    >>> policy.delay(0, retry_after=3.0)
    3.0
"""

from __future__ import annotations

import email.utils
import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff for transient faults: ``min(cap, base * 2**attempt)``, jittered, ≥ ``Retry-After``.

    Args:
        base: Delay before the first retry, in seconds (before jitter).
        cap: Largest backoff delay, in seconds (before jitter).
        max_retries: Retries after the first attempt (so ``max_retries + 1`` attempts in all).
        jitter: Fraction of the delay that is randomised, 0 to 1: the delay is drawn uniformly
            from ``[d * (1 - jitter), d]``. 0 gives exact delays; 1 is "full jitter".
        max_retry_after: A server's ``Retry-After`` is honoured up to this many seconds.
        rng: Source of the jitter (inject a seeded ``random.Random`` for reproducible delays).

    Example:
        >>> RetryPolicy(base=0.001, jitter=0.0).delay(2)
        0.004
        >>> 0.5 <= RetryPolicy(base=1.0, jitter=0.5).delay(0) <= 1.0
        True
    """

    base: float = 1.0
    cap: float = 30.0
    max_retries: int = 5
    jitter: float = 0.5
    max_retry_after: float = 300.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.base < 0 or self.cap < 0 or self.max_retry_after < 0:
            raise ValueError("base, cap and max_retry_after must be >= 0")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0; got {self.max_retries}")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"jitter must be between 0 and 1; got {self.jitter}")

    def backoff(self, attempt: int) -> float:
        """The jittered exponential delay before retry number ``attempt`` (0-based).

        Example:
            >>> RetryPolicy(base=1.0, cap=30.0, jitter=0.0).backoff(10)
            30.0
        """
        # 2**attempt overflows floats long after the cap is reached; stop growing early.
        raw = self.cap if attempt >= 64 else min(self.cap, self.base * 2.0**attempt)
        if self.jitter:
            raw *= 1.0 - self.jitter * self.rng.random()
        return raw

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based).

        A server's ``Retry-After`` is a floor: the delay is never shorter than it asks (up to
        ``max_retry_after``), and never shorter than the jittered backoff either.

        Example:
            >>> RetryPolicy(base=0.01, jitter=0.0).delay(0, retry_after=0.25)
            0.25
            >>> RetryPolicy(base=2.0, jitter=0.0).delay(0, retry_after=0.25)
            2.0
        """
        chosen = self.backoff(attempt)
        if retry_after is not None and math.isfinite(retry_after) and retry_after > 0:
            chosen = max(chosen, min(retry_after, self.max_retry_after))
        return chosen


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Read a ``Retry-After`` header: seconds (fractional allowed) or an HTTP date.

    Returns ``None`` when the header is absent or unreadable; a date in the past gives ``0.0``.

    Example:
        >>> parse_retry_after("1.5"), parse_retry_after("soon"), parse_retry_after(None)
        (1.5, None, None)
        >>> parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT",
        ...                   now=datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC))
        10.0
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())

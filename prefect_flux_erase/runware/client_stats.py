"""What the client did, for observability and for tests that must not measure wall time.

Example:
    >>> stats = ClientStats()
    >>> stats.record_retry(RetryEvent(attempt=0, delay=0.25, retry_after=0.25, code="x",
    ...                               http_status=429))
    >>> stats.retries, list(stats.retry_delays)
    (1, [0.25])
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

#: How many recent retry events a client keeps (older ones are counted but not kept).
RETRY_HISTORY = 10_000


@dataclass(frozen=True)
class RetryEvent:
    """One retry the client decided on: which attempt, the delay chosen and why.

    Example:
        >>> RetryEvent(attempt=1, delay=2.0, retry_after=None, code="httpError",
        ...            http_status=503).delay
        2.0
    """

    attempt: int
    delay: float
    retry_after: float | None
    code: str | None
    http_status: int | None


@dataclass
class ClientStats:
    """Counters of one :class:`~prefect_flux_erase.runware.client.RunwareClient`.

    Attributes:
        requests: HTTP requests sent (API calls, retries and output downloads).
        statuses: Responses by HTTP status; ``"transport"`` counts requests with no answer.
        retries: Retries scheduled.
        rate_limited: Rate-limit answers (429 or a rate-limit code).
        retry_delays: The delays chosen for recent retries, in order (seconds).
        retry_events: The recent retries with their reasons.

    Example:
        >>> ClientStats().statuses[200]
        0
    """

    requests: int = 0
    statuses: Counter[int | str] = field(default_factory=Counter)
    retries: int = 0
    rate_limited: int = 0
    retry_delays: deque[float] = field(default_factory=lambda: deque(maxlen=RETRY_HISTORY))
    retry_events: deque[RetryEvent] = field(default_factory=lambda: deque(maxlen=RETRY_HISTORY))

    def record_retry(self, event: RetryEvent) -> None:
        """Count a retry and remember its delay.

        Example:
            >>> s = ClientStats(); s.record_retry(RetryEvent(0, 0.5, None, "httpError", 503))
            >>> s.retries, s.retry_events[0].http_status
            (1, 503)
        """
        self.retries += 1
        self.retry_delays.append(event.delay)
        self.retry_events.append(event)

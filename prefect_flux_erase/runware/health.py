"""`ApiHealth`: is the API reachable at all, and should this run's clients stop?

Shared by every client of one run in a process (each shard stage opens its own). It tells a
blip from an outage by what every client saw, not one request:

- a connection-level failure (refused, reset, no route, connect timeout) counts; any HTTP
  answer (even a 503) proves the API is there and clears the count;
- the API counts as **unreachable** after :attr:`failures` such failures in a row with no
  answer in between, spread over at least :attr:`first_contact_seconds` when it never
  answered in this run (a wrong base URL, a dead network: the run stops within seconds), or
  :attr:`outage_seconds` when it did (a few resets mid-run are ridden out; a long outage
  stops the run rather than spending every row's retries).

It is also the run's stop switch for its clients: :meth:`stop` (a run-level fault, or an
interruption with a grace period) makes the clients stop retrying and polling once the grace
is over (:attr:`halted`), while the shard stages stop sending new rows at once
(:attr:`stop_requested`).

Example:
    >>> health = ApiHealth(failures=2, first_contact_seconds=0.0)
    >>> health.unreachable("http://127.0.0.1:9/v1", "ConnectError")
    >>> health.halted
    False
    >>> health.unreachable("http://127.0.0.1:9/v1", "ConnectError")
    >>> health.halted, health.reason.code
    (True, 'apiUnreachable')
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

from prefect_flux_erase.runware.errors import TransportError
from prefect_flux_erase.runware.redaction import redact_url

#: Connection failures in a row, with no answer between them, before the API is unreachable.
UNREACHABLE_AFTER_FAILURES = 3
#: ...spread over at least this many seconds when the API never answered in this run.
FIRST_CONTACT_SECONDS = 2.0
#: ...or over this many seconds when it had answered before (an outage, not a blip).
OUTAGE_SECONDS = 30.0
#: Longest nap of :meth:`ApiHealth.pause` before it looks at the switch again.
_NAP = 0.1


class ApiHealth:
    """Reachability of the API as every client of one run sees it, and their stop switch.

    Example:
        >>> health = ApiHealth()
        >>> health.answered(); health.stop_requested, health.halted
        (False, False)
    """

    def __init__(
        self,
        *,
        failures: int = UNREACHABLE_AFTER_FAILURES,
        first_contact_seconds: float = FIRST_CONTACT_SECONDS,
        outage_seconds: float = OUTAGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures = failures
        self.first_contact_seconds = first_contact_seconds
        self.outage_seconds = outage_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._ever_answered = False
        self._in_a_row = 0
        self._since = 0.0
        self._reason: BaseException | None = None
        self._halt_at: float | None = None

    def answered(self) -> None:
        """An HTTP answer came (any status): the API is reachable."""
        with self._lock:
            self._ever_answered = True
            self._in_a_row = 0

    def unreachable(self, url: str, detail: str) -> None:
        """A request to ``url`` got no connection (refused, reset, unroutable); may trip."""
        with self._lock:
            now = self._clock()
            if self._in_a_row == 0:
                self._since = now
            self._in_a_row += 1
            span = now - self._since
            needed = self.outage_seconds if self._ever_answered else self.first_contact_seconds
            if self._reason is not None or self._in_a_row < self.failures or span < needed:
                return
            what = "stopped answering" if self._ever_answered else "cannot be reached"
            self._reason = TransportError(
                f"the Runware API at {redact_url(url)} {what} ({detail}; {self._in_a_row} "
                f"connection failures in {span:.0f} s, no answer): check the base URL "
                "(RUNWARE_BASE_URL, --base-url, or the credentials' base_url) and the "
                "network, then run again with the same arguments to resume",
                code="apiUnreachable",
            )
            self._halt_at = now

    def stop(self, reason: BaseException, *, grace: float = 0.0) -> None:
        """Stop the run's clients: new rows are not sent from now on, and requests stop being
        retried or polled ``grace`` seconds from now. The first reason given is kept.

        Example:
            >>> health = ApiHealth()
            >>> health.stop(KeyboardInterrupt(), grace=60)
            >>> health.stop_requested, health.halted
            (True, False)
        """
        with self._lock:
            if self._reason is None:
                self._reason = reason
            halt_at = self._clock() + max(0.0, grace)
            if self._halt_at is None or halt_at < self._halt_at:
                self._halt_at = halt_at

    @property
    def reason(self) -> BaseException | None:
        """Why the run stops (``None`` while it runs)."""
        return self._reason

    @property
    def stop_requested(self) -> bool:
        """Whether the run is stopping: send no new row."""
        return self._reason is not None

    @property
    def halted(self) -> bool:
        """Whether the run's clients must stop retrying and polling now."""
        halt_at = self._halt_at
        return halt_at is not None and self._clock() >= halt_at

    async def pause(self, seconds: float) -> None:
        """Sleep ``seconds``, waking early once :attr:`halted`.

        Example:
            >>> health = ApiHealth(); health.stop(RuntimeError("stop"))
            >>> asyncio.run(health.pause(3600))   # returns at once
        """
        deadline = self._clock() + seconds
        while not self.halted:
            left = deadline - self._clock()
            if left <= 0:
                return
            await asyncio.sleep(min(_NAP, left))

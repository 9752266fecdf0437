"""An adaptive cap on requests in flight (AIMD, as TCP congestion control does it).

Runware has no fixed rate limit: overload shows as latency, then 429/503. The client therefore
starts at its full concurrency and, on a rate-limit answer, halves the number of requests it lets
out at once; each success then adds ``increase / window`` (one slot per window's worth of
successes), so the cap creeps back up while the server keeps up.

A burst of 429s from requests sent under the same window counts as one congestion signal: each
slot remembers the *epoch* it was granted in, and only a signal from the current epoch shrinks
the window (otherwise 64 concurrent 429s would collapse a window of 64 down to 1).

One limiter may be shared by clients on several threads, each with its own event loop (the
pipeline shares one per run and process, so that a 429 seen by one shard holds the window for
the next shard too): its state is guarded by a lock, and a slot freed on one thread is handed
to a waiter on another through that waiter's own loop.

Example:
    >>> import asyncio
    >>> async def demo() -> tuple[int, int]:
    ...     limiter = AdaptiveLimiter(8)
    ...     async with limiter.slot() as slot:
    ...         slot.rate_limited()
    ...     return limiter.window, limiter.in_flight
    >>> asyncio.run(demo())
    (4, 0)
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass


@dataclass
class Slot:
    """One granted permission to send a request; report how it went before leaving.

    Example:
        ```python
        async with limiter.slot() as slot:
            response = await http.post(...)
            if response.status_code == 429:
                slot.rate_limited()
            elif response.is_success:
                slot.succeeded()
        ```
    """

    epoch: int
    outcome: str = "neutral"

    def rate_limited(self) -> None:
        """The server said slow down (429 / rate-limit code): shrink the window.

        Example:
            >>> slot = Slot(epoch=0); slot.rate_limited(); slot.outcome
            'rate_limited'
        """
        self.outcome = "rate_limited"

    def succeeded(self) -> None:
        """The request succeeded: let the window grow.

        Example:
            >>> slot = Slot(epoch=0); slot.succeeded(); slot.outcome
            'success'
        """
        self.outcome = "success"


class AdaptiveLimiter:
    """At most :attr:`window` requests in flight; the window adapts by AIMD. Thread-safe.

    Args:
        limit: Largest window (and the starting one), e.g. the connection pool size.
        min_limit: Smallest window.
        decrease: Factor applied to the window on a rate-limit signal (0 < decrease < 1).
        increase: Slots regained per full window of successes.

    Example:
        >>> limiter = AdaptiveLimiter(64)
        >>> limiter.window, limiter.limit
        (64, 64)
    """

    def __init__(
        self,
        limit: int,
        *,
        min_limit: int = 1,
        decrease: float = 0.5,
        increase: float = 1.0,
    ) -> None:
        if limit < 1 or not 1 <= min_limit <= limit:
            raise ValueError(f"need 1 <= min_limit <= limit; got {min_limit=}, {limit=}")
        if not 0.0 < decrease < 1.0 or increase <= 0:
            raise ValueError("need 0 < decrease < 1 and increase > 0")
        self.limit = limit
        self.min_limit = min_limit
        self._decrease = decrease
        self._increase = increase
        self._window = float(limit)
        self._in_flight = 0
        self._epoch = 0
        self._lock = threading.Lock()
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[int]]] = deque()
        #: How many times the window was shrunk (for observability).
        self.decreases = 0

    def __repr__(self) -> str:
        return (
            f"AdaptiveLimiter(window={self.window}, limit={self.limit}, "
            f"in_flight={self._in_flight}, waiting={len(self._waiters)})"
        )

    @property
    def window(self) -> int:
        """Requests currently allowed in flight."""
        return max(self.min_limit, int(self._window))

    @property
    def in_flight(self) -> int:
        """Requests currently holding a slot."""
        return self._in_flight

    @property
    def waiting(self) -> int:
        """Requests queued for a slot."""
        return len(self._waiters)

    async def acquire(self) -> int:
        """Wait for a slot; returns the epoch it was granted in (pass it to :meth:`release`).

        Example:
            ```python
            epoch = await limiter.acquire()
            try:
                response = await send()
            finally:
                limiter.release(epoch, "success" if response.is_success else "neutral")
            ```
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._in_flight < self.window and not self._waiters:
                self._in_flight += 1
                return self._epoch
            waiter: asyncio.Future[int] = loop.create_future()
            entry = (loop, waiter)
            self._waiters.append(entry)
        try:
            return await waiter
        except asyncio.CancelledError:
            with self._lock:
                if entry in self._waiters:
                    self._waiters.remove(entry)  # never granted: nothing to give back
                    raise
            if waiter.done() and not waiter.cancelled():
                self.release(waiter.result())  # granted just as we were cancelled: hand it on
            # Otherwise the grant is on its way to this loop; _grant gives the slot back.
            raise

    def release(self, epoch: int, outcome: str = "neutral") -> None:
        """Give a slot back, reporting ``"success"``, ``"rate_limited"`` or ``"neutral"``.

        Example:
            >>> import asyncio
            >>> limiter = AdaptiveLimiter(10)
            >>> limiter.release(asyncio.run(limiter.acquire()), "rate_limited"); limiter.window
            5
        """
        with self._lock:
            self._in_flight -= 1
            if outcome == "rate_limited":
                if epoch == self._epoch:
                    self._window = max(float(self.min_limit), self._window * self._decrease)
                    self._epoch += 1
                    self.decreases += 1
            elif outcome == "success":
                self._window = min(float(self.limit), self._window + self._increase / self._window)
            self._wake()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[Slot]:
        """Hold a slot for the duration of the block; report the outcome on the slot.

        Example:
            ```python
            async with limiter.slot() as slot:
                if (await send()).status_code == 429:
                    slot.rate_limited()
            ```
        """
        slot = Slot(await self.acquire())
        try:
            yield slot
        finally:
            self.release(slot.epoch, slot.outcome)

    def _wake(self) -> None:
        # Called with the lock held: grant free slots to waiters, first come first served.
        while self._waiters and self._in_flight < self.window:
            loop, waiter = self._waiters.popleft()
            if waiter.done():
                continue
            self._in_flight += 1
            try:
                loop.call_soon_threadsafe(self._grant, waiter, self._epoch)
            except RuntimeError:  # that waiter's loop has closed: it will never take the slot
                self._in_flight -= 1

    def _grant(self, waiter: asyncio.Future[int], epoch: int) -> None:
        # Runs on the waiter's own loop.
        if waiter.done():  # cancelled meanwhile: the slot goes to the next waiter
            self.release(epoch)
        else:
            waiter.set_result(epoch)

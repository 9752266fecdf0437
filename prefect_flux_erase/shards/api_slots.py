"""API slots: how many shards of a run may be at the API at once, so one more can get ready.

The flow keeps ``max_shards_in_flight`` shards at the API (submitted, not yet all answered).
Without a look-ahead, each time a shard is answered the API window has a gap: the next shard's
submit stage starts only then, and reads and validates its rows before its first request. With
API slots the driver starts one shard more; that shard reads and validates its rows at once,
then waits here for a slot, and its request goes out the moment an answered shard gives its
slot back. The window stays full.

A shard takes its slot just before its first request (``submit_shard``) and gives it back when
its poll stage ends, whichever way (``poll_shard``); a submit stage that fails gives it back
too. Slots live in the flow's process: the driver uses them only on a thread-pool task runner
with enough threads for every shard it keeps going (see ``drive_shards``), so a shard waiting
for a slot can never hold the thread that a shard holding one needs to finish.

Example:
    ```python
    slots = slots_for("run-1234", capacity=4)
    await slots.acquire(shard.index, wait_limit=900)    # before the shard's first request
    ...
    slots.release(shard.index)                          # when its poll stage ends
    ```
"""

from __future__ import annotations

import asyncio
import contextlib
import threading


class ApiSlots:
    """A counting gate shared by the shard stages of one run, across threads and event loops.

    Example:
        >>> slots = ApiSlots(1)
        >>> asyncio.run(slots.acquire(0, wait_limit=1.0)), slots.in_use
        (True, 1)
        >>> asyncio.run(slots.acquire(1, wait_limit=0.01))   # full: gives up, goes anyway
        False
        >>> slots.release(0); slots.release(1); slots.release(1); slots.in_use
        0
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1; got {capacity}")
        self.capacity = capacity
        self._lock = threading.Lock()
        self._held: set[int] = set()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()
        self._closed = False

    @property
    def in_use(self) -> int:
        """Slots taken now."""
        with self._lock:
            return len(self._held)

    def _take(self, holder: int, *, force: bool = False) -> bool:
        with self._lock:
            if holder in self._held:
                return True
            if force or self._closed or len(self._held) < self.capacity:
                self._held.add(holder)
                return True
            return False

    async def acquire(self, holder: int, *, wait_limit: float) -> bool:
        """Take a slot for ``holder`` (a shard index), waiting up to ``wait_limit`` seconds.

        Returns ``False`` if none came free in time: the holder then goes ahead anyway (a
        slot is a pacing aid, never a reason to stall a run). Taking a slot twice is a no-op.

        Example:
            >>> asyncio.run(ApiSlots(2).acquire(7, wait_limit=0))
            True
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_limit
        while not self._take(holder):
            waiter: asyncio.Future[None] = loop.create_future()
            entry = (loop, waiter)
            with self._lock:
                self._waiters.add(entry)
            # A release between the failed take and registering would be missed: look again.
            if self._take(holder):
                with self._lock:
                    self._waiters.discard(entry)
                return True
            remaining = deadline - loop.time()
            try:
                await asyncio.wait_for(waiter, timeout=max(0.0, remaining))
            except TimeoutError:
                self._take(holder, force=True)
                return False
            finally:
                with self._lock:
                    self._waiters.discard(entry)
        return True

    def close(self) -> None:
        """Stop gating: every waiter goes ahead now, and so does every later ``acquire``.

        The flow calls this when it stops driving shards, whichever way: a shard still
        waiting for a slot then must not wait for one that will never be given back.

        Example:
            >>> slots = ApiSlots(1); slots.close()
            >>> [asyncio.run(slots.acquire(i, wait_limit=0)) for i in (0, 1)]
            [True, True]
        """
        with self._lock:
            self._closed = True
            waiters, self._waiters = self._waiters, set()
        for loop, waiter in waiters:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_wake, waiter)

    def release(self, holder: int) -> None:
        """Give back ``holder``'s slot (a no-op if it holds none) and wake the waiters.

        Example:
            >>> ApiSlots(1).release(3)
        """
        with self._lock:
            if holder not in self._held:
                return
            self._held.discard(holder)
            waiters, self._waiters = self._waiters, set()
        for loop, waiter in waiters:
            with contextlib.suppress(RuntimeError):  # that waiter's loop has closed
                loop.call_soon_threadsafe(_wake, waiter)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


_REGISTRY: dict[str, ApiSlots] = {}
_REGISTRY_LOCK = threading.Lock()


def slots_for(key: str, capacity: int) -> ApiSlots:
    """The slots of run ``key`` in this process (created with ``capacity`` on first use).

    Example:
        >>> slots_for("doc-run", 2) is slots_for("doc-run", 2)
        True
        >>> forget("doc-run")
    """
    with _REGISTRY_LOCK:
        slots = _REGISTRY.get(key)
        if slots is None:
            slots = _REGISTRY[key] = ApiSlots(capacity)
        return slots


def forget(key: str) -> None:
    """Close run ``key``'s slots and drop them (the flow calls this when it stops driving).

    Example:
        >>> forget("never-created")
    """
    with _REGISTRY_LOCK:
        slots = _REGISTRY.pop(key, None)
    if slots is not None:
        slots.close()

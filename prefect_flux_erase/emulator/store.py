"""Stored images (generated, uploaded, media) with expiry, against an injectable clock.

Lookups are by UUID; expired entries are dropped lazily from a heap of expiry times, so no
request ever scans the whole store. A byte budget evicts the oldest entries first, so a long
run of large images cannot exhaust memory (their URLs then answer 404 early).

Example:
    >>> clock = Clock()
    >>> store = ImageStore(clock)
    >>> store.put("u", b"img", "image/png", "png", ttl=60).ext
    'png'
    >>> clock.advance(61); store.get("u") is None
    True
"""

from __future__ import annotations

import heapq
import threading
import time
from dataclasses import dataclass


class Clock:
    """Wall-clock seconds plus an offset that tests move forward instead of sleeping.

    Example:
        >>> c = Clock(); before = c.now(); c.advance(3600); c.now() - before >= 3600
        True
    """

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        """Current time in seconds since the epoch, shifted by every :meth:`advance`."""
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the clock forward (expiry checks see the future; nothing sleeps)."""
        with self._lock:
            self._offset += seconds

    def reset(self) -> None:
        """Back to real time."""
        with self._lock:
            self._offset = 0.0


@dataclass(frozen=True)
class StoredImage:
    """Encoded bytes of an image the emulator serves or accepts by UUID.

    Example:
        >>> StoredImage("u", b"x", "image/png", "png", expires_at=0.0, kind="upload").ext
        'png'
    """

    uuid: str
    data: bytes
    mime: str
    ext: str
    expires_at: float
    kind: str


class ImageStore:
    """UUID -> :class:`StoredImage`; entries vanish after their TTL.

    Example:
        >>> s = ImageStore(Clock(), max_bytes=4); _ = s.put("a", b"xy", "image/jpeg", "jpg", ttl=10)
        >>> s.get("a").data, len(s)
        (b'xy', 1)
        >>> _ = s.put("b", b"zzz", "image/png", "png", ttl=10)  # over budget: "a" goes first
        >>> s.get("a"), s.get("b").data
        (None, b'zzz')
    """

    def __init__(self, clock: Clock, max_bytes: int | None = None) -> None:
        self._clock = clock
        self.max_bytes = max_bytes
        # Insertion-ordered: the first entries are the oldest, evicted first over budget.
        self._items: dict[str, StoredImage] = {}
        self._expiry: list[tuple[float, str]] = []
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    def put(
        self, uuid: str, data: bytes, mime: str, ext: str, *, ttl: float, kind: str = "generated"
    ) -> StoredImage:
        """Store bytes under ``uuid`` for ``ttl`` seconds and return the entry."""
        self._prune()
        item = StoredImage(uuid, data, mime, ext, self._clock.now() + ttl, kind)
        self._drop(uuid)
        self._items[uuid] = item
        self._bytes += len(data)
        heapq.heappush(self._expiry, (item.expires_at, uuid))
        while self.max_bytes is not None and self._bytes > self.max_bytes and len(self._items) > 1:
            self._drop(next(iter(self._items)))
        return item

    @property
    def stored_bytes(self) -> int:
        """Bytes held by live (and not yet pruned) entries."""
        return self._bytes

    def _drop(self, uuid: str) -> bool:
        item = self._items.pop(uuid, None)
        if item is None:
            return False
        self._bytes -= len(item.data)
        return True

    def get(self, uuid: str) -> StoredImage | None:
        """The live entry for ``uuid``, or None when unknown or expired."""
        item = self._items.get(uuid)
        if item is None:
            return None
        if item.expires_at <= self._clock.now():
            self._drop(uuid)
            return None
        return item

    def delete(self, uuid: str) -> bool:
        """Forget ``uuid``; return whether it was stored."""
        return self._drop(uuid)

    def clear(self) -> None:
        """Forget everything."""
        self._items.clear()
        self._expiry.clear()
        self._bytes = 0

    def _prune(self) -> None:
        now = self._clock.now()
        while self._expiry and self._expiry[0][0] <= now:
            expires_at, uuid = heapq.heappop(self._expiry)
            item = self._items.get(uuid)
            # A UUID stored again later has a newer expiry: only drop the entry this one timed.
            if item is not None and item.expires_at == expires_at:
                self._drop(uuid)

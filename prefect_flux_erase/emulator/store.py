"""Stored images (generated, uploaded, media) with expiry, against an injectable clock.

Lookups are by UUID; expired entries are dropped lazily from a heap of expiry times, so no
request ever scans the whole store. Memory is bounded by a byte budget: over it, the oldest
entries move to files in a spill directory (when the store has one) or are evicted (their URLs
then answer 404 early). The spill directory has a byte budget of its own, over which its
oldest files are evicted. A long dry run (100,000 rows) kept every generated image in memory
and grew past 2.6 GB before images spilled (issue 16).

Example:
    >>> clock = Clock()
    >>> store = ImageStore(clock)
    >>> store.put("u", b"img", "image/png", "png", ttl=60).ext
    'png'
    >>> clock.advance(61); store.get("u") is None
    True
"""

from __future__ import annotations

import contextlib
import heapq
import os
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


@dataclass(frozen=True, slots=True)
class _Spilled:
    """An entry whose bytes live in a file of the spill directory."""

    uuid: str
    path: str
    size: int
    mime: str
    ext: str
    expires_at: float
    kind: str

    def load(self) -> StoredImage | None:
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except OSError:
            return None
        return StoredImage(self.uuid, data, self.mime, self.ext, self.expires_at, self.kind)


class ImageStore:
    """UUID -> :class:`StoredImage`; entries vanish after their TTL.

    ``max_bytes`` bounds the bytes held in memory: over it the oldest entries spill to files
    under ``spill_dir`` (if given, else they are evicted), and ``max_disk_bytes`` bounds the
    spilled bytes (the oldest files are evicted past it).

    Example:
        >>> s = ImageStore(Clock(), max_bytes=4); _ = s.put("a", b"xy", "image/jpeg", "jpg", ttl=10)
        >>> s.get("a").data, len(s)
        (b'xy', 1)
        >>> _ = s.put("b", b"zzz", "image/png", "png", ttl=10)  # over budget: "a" goes first
        >>> s.get("a"), s.get("b").data
        (None, b'zzz')
    """

    def __init__(
        self,
        clock: Clock,
        max_bytes: int | None = None,
        *,
        spill_dir: str | None = None,
        max_disk_bytes: int | None = None,
    ) -> None:
        self._clock = clock
        self.max_bytes = max_bytes
        self.spill_dir = spill_dir
        self.max_disk_bytes = max_disk_bytes
        # Insertion-ordered: the first entries are the oldest, spilled or evicted first.
        self._items: dict[str, StoredImage] = {}
        self._spilled: dict[str, _Spilled] = {}
        self._expiry: list[tuple[float, str]] = []
        self._bytes = 0
        self._disk_bytes = 0

    def __len__(self) -> int:
        return len(self._items) + len(self._spilled)

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
            oldest = next(iter(self._items))
            if self.spill_dir is None or not self._spill(oldest):
                self._drop(oldest)
        while self.max_disk_bytes is not None and self._disk_bytes > self.max_disk_bytes:
            self._drop(next(iter(self._spilled)))
        return item

    @property
    def stored_bytes(self) -> int:
        """Bytes held in memory by live (and not yet pruned) entries."""
        return self._bytes

    @property
    def spilled_bytes(self) -> int:
        """Bytes of live entries held in files of the spill directory."""
        return self._disk_bytes

    def _spill(self, uuid: str) -> bool:
        item = self._items.pop(uuid)
        self._bytes -= len(item.data)
        assert self.spill_dir is not None
        path = os.path.join(self.spill_dir, f"{uuid}.{item.ext}")
        try:
            os.makedirs(self.spill_dir, exist_ok=True)
            with open(path, "wb") as f:
                f.write(item.data)
        except OSError:
            return False  # the entry is gone either way: evicted instead of spilled
        self._spilled[uuid] = _Spilled(
            uuid, path, len(item.data), item.mime, item.ext, item.expires_at, item.kind
        )
        self._disk_bytes += len(item.data)
        return True

    def _drop(self, uuid: str) -> bool:
        item = self._items.pop(uuid, None)
        if item is not None:
            self._bytes -= len(item.data)
            return True
        spilled = self._spilled.pop(uuid, None)
        if spilled is None:
            return False
        self._disk_bytes -= spilled.size
        with contextlib.suppress(OSError):
            os.unlink(spilled.path)
        return True

    def _entry(self, uuid: str) -> StoredImage | _Spilled | None:
        return self._items.get(uuid) or self._spilled.get(uuid)

    def get(self, uuid: str) -> StoredImage | None:
        """The live entry for ``uuid``, or None when unknown or expired."""
        entry = self._entry(uuid)
        if entry is None:
            return None
        if entry.expires_at <= self._clock.now():
            self._drop(uuid)
            return None
        return entry.load() if isinstance(entry, _Spilled) else entry

    def delete(self, uuid: str) -> bool:
        """Forget ``uuid``; return whether it was stored."""
        return self._drop(uuid)

    def clear(self) -> None:
        """Forget everything (spilled files included)."""
        for uuid in list(self._spilled):
            self._drop(uuid)
        self._items.clear()
        self._expiry.clear()
        self._bytes = 0
        self._disk_bytes = 0

    def _prune(self) -> None:
        now = self._clock.now()
        while self._expiry and self._expiry[0][0] <= now:
            expires_at, uuid = heapq.heappop(self._expiry)
            entry = self._entry(uuid)
            # A UUID stored again later has a newer expiry: only drop the entry this one timed.
            if entry is not None and entry.expires_at == expires_at:
                self._drop(uuid)

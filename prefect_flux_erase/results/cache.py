"""The cross-run result cache: erased images by content key, on any fsspec backend (opt-in).

A run given ``cache="s3://bucket/flux-erase-cache"`` looks every row up by its content key
(:mod:`~prefect_flux_erase.shards.contents`: image bytes, mask bytes, the settings that shape the
output and the engine) before it would send it, and copies a cached result to the row's output
instead of paying for it again; rows it erases are added. Rows served from the cache are marked
``cached`` in ``results.parquet`` and cost nothing.

Layout, per key ``k``::

    {cache}/{k[:2]}/{k}/{token}-{i}.{ext}    the results, written first (one object each)
    {cache}/{k[:2]}/{k}.json                 the entry, written last: names the results

An entry is published by one atomic write of its JSON after all its results are written, so a
reader sees no entry or a whole one, never a partial one; a crash in between leaves only
unnamed objects. Writers never share object names (``token`` is the writing task's UUID), so
two runs caching the same key at once each publish a whole entry and the last one wins.

Example:
    >>> cache = ResultCache("memory://doc/cache")
    >>> cache.put_result("ab" * 16, "t1", 0, "png", b"png-bytes")
    >>> cache.get("ab" * 16) is None          # not published yet
    True
    >>> cache.publish("ab" * 16, "t1", count=1, ext="png", cost=0.03)
    >>> cache.read_result(cache.get("ab" * 16), 0)
    b'png-bytes'
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from prefect_flux_erase import storage

_KEY = re.compile(r"^[0-9a-f]{32}$")
_TOKEN = re.compile(r"^[0-9A-Za-z-]{1,64}$")
#: Version of the entry format; entries of another version are ignored (a miss).
ENTRY_VERSION = 1


@dataclass(frozen=True)
class CacheEntry:
    """A published cache entry: where its results are, and what the erase cost when made.

    Example:
        >>> CacheEntry("ab" * 16, ("memory://c/ab/x-0.png",), 0.03).results[0]
        'memory://c/ab/x-0.png'
    """

    key: str
    results: tuple[str, ...]
    cost: float | None = None


class ResultCache:
    """A content-addressed store of erased images under ``uri`` (see the module docstring).

    Example:
        >>> ResultCache("s3://bucket/flux-erase-cache").entry_uri("ab" * 16)
        's3://bucket/flux-erase-cache/ab/abababababababababababababababab.json'
    """

    def __init__(self, uri: str, storage_options: Mapping[str, Any] | None = None) -> None:
        self.uri = uri.rstrip("/") or uri
        self.storage_options = storage_options

    def __repr__(self) -> str:
        return f"ResultCache({storage.redact_url(self.uri)!r})"

    @staticmethod
    def _check(key: str) -> str:
        if not _KEY.match(key):
            raise ValueError(f"not a content key: {key!r}")
        return key

    def entry_uri(self, key: str) -> str:
        """Where the entry of ``key`` is published."""
        key = self._check(key)
        return storage.join(self.uri, key[:2], f"{key}.json")

    def result_uri(self, key: str, token: str, index: int, ext: str) -> str:
        """Where result ``index`` of the entry written by ``token`` goes."""
        key = self._check(key)
        if not _TOKEN.match(token):
            raise ValueError(f"not a cache token: {token!r}")
        return storage.join(self.uri, key[:2], key, f"{token}-{index}.{ext}")

    def get(self, key: str) -> CacheEntry | None:
        """The published entry of ``key``, or ``None`` (missing, unreadable or foreign).

        Example:
            >>> ResultCache("memory://doc/cache-get").get("cd" * 16) is None
            True
        """
        try:
            raw = storage.read_bytes(self.entry_uri(key), self.storage_options)
            data = json.loads(raw)
        except (storage.InputReadError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("version") != ENTRY_VERSION:
            return None
        names = data.get("results")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            return None
        base = storage.join(self.uri, key[:2], key)
        results = tuple(storage.join(base, n) for n in names)
        if not all(storage.is_within(base, r) for r in results):
            return None  # an entry naming objects elsewhere is not ours to trust
        cost = data.get("cost")
        return CacheEntry(key, results, float(cost) if isinstance(cost, int | float) else None)

    def has(self, key: str) -> bool:
        """Whether ``key`` has a published entry."""
        return storage.exists(self.entry_uri(key), self.storage_options)

    def read_result(self, entry: CacheEntry, index: int) -> bytes:
        """The bytes of result ``index`` of ``entry``.

        Raises:
            InputReadError: the object is gone (the entry is then treated as a miss).
        """
        return storage.read_bytes(entry.results[index], self.storage_options)

    def put_result(self, key: str, token: str, index: int, ext: str, data: bytes) -> None:
        """Write one result of an entry being made (not visible until :meth:`publish`)."""
        storage.write_bytes(self.result_uri(key, token, index, ext), data, self.storage_options)

    def publish(
        self, key: str, token: str, *, count: int, ext: str, cost: float | None = None
    ) -> None:
        """Publish the entry of ``key`` whose ``count`` results ``token`` wrote (atomically)."""
        body = {
            "version": ENTRY_VERSION,
            "results": [f"{token}-{i}.{ext}" for i in range(count)],
            "cost": cost,
            "created": time.time(),
        }
        storage.write_bytes(self.entry_uri(key), json.dumps(body).encode(), self.storage_options)

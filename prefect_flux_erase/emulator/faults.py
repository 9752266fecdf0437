"""Which fault, if any, hits a request: scripted faults first, then seeded random draws.

Kinds (``FAULT_KINDS``):

- ``http_429`` (with ``Retry-After``), ``http_500``, ``http_502``, ``http_503``, ``http_504``:
  answered before the request is processed.
- ``reset_before``: the connection is closed without an answer; nothing was processed.
- ``reset_after``: the request is processed (the task exists and will be billed), then the
  connection is closed without an answer: the client must recover through ``conflictTaskUUID``.
- ``slow``: processed, then answered only after ``slow_delay`` seconds.
- ``malformed_json``: processed, then answered 200 with a truncated JSON body.
- ``timeout_provider``: the submitted inference tasks end in a ``timeoutProvider`` error.

Example:
    >>> faults = FaultInjector(seed=0)
    >>> faults.script(["http_503", "reset_after"])
    >>> [faults.draw("submit", {"http_429": 0.0}, {"submit"}) for _ in range(3)]
    ['http_503', 'reset_after', None]
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Collection, Iterable, Mapping
from typing import Final

from prefect_flux_erase.emulator.config import FAULT_KINDS, RequestKind

#: Faults that make sense per request kind (a download has no task to time out, no JSON).
APPLICABLE: Final[dict[str, frozenset[str]]] = {
    "submit": frozenset(FAULT_KINDS),
    "getResponse": frozenset(FAULT_KINDS) - {"timeout_provider"},
    "download": frozenset(FAULT_KINDS) - {"timeout_provider", "malformed_json"},
}
#: A scripted entry that lets one eligible request through untouched.
NO_FAULT: Final = "none"


class FaultInjector:
    """Seeded fault decisions; ``script`` queues deterministic faults for the next requests.

    Example:
        >>> injector = FaultInjector(seed=1)
        >>> injector.draw("submit", {"http_503": 1.0}, {"submit"})
        'http_503'
        >>> injector.draw("download", {"http_503": 1.0}, {"submit"}) is None  # not a target
        True
    """

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self._script: deque[str] = deque()

    def reseed(self, seed: int) -> None:
        """Restart the random sequence and drop scripted faults."""
        self._rng = random.Random(seed)
        self._script.clear()

    def script(self, kinds: Iterable[str]) -> None:
        """Queue faults that fire, in order, on the next eligible requests they apply to.

        ``"none"`` lets one eligible request through. Unknown kinds raise ``ValueError``.
        """
        kinds = list(kinds)
        unknown = [k for k in kinds if k not in FAULT_KINDS and k != NO_FAULT]
        if unknown:
            raise ValueError(f"unknown fault kinds {unknown}; known: {', '.join(FAULT_KINDS)}")
        self._script.extend(kinds)

    @property
    def scripted(self) -> list[str]:
        """Scripted faults not fired yet."""
        return list(self._script)

    def draw(
        self, kind: RequestKind, rates: Mapping[str, float], targets: Collection[str]
    ) -> str | None:
        """The fault for one request of ``kind``, or None.

        A scripted fault that does not apply to this kind of request (``timeout_provider`` on a
        poll) waits for a request it applies to, so scripts stay in order.
        """
        if kind not in targets:
            return None
        applicable = APPLICABLE[kind]
        if self._script:
            head = self._script[0]
            if head == NO_FAULT or head in applicable:
                self._script.popleft()
                return None if head == NO_FAULT else head
            return None
        if not rates:
            return None
        roll = self._rng.random()
        edge = 0.0
        for fault in FAULT_KINDS:
            edge += rates.get(fault, 0.0)
            if roll < edge:
                return fault if fault in applicable else None
        return None

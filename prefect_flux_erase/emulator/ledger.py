"""The billing ledger: each generated result is charged exactly once, whatever happened around it.

A charge is keyed by (taskUUID, imageUUID), so a retried completion, a redelivered webhook or a
reset connection can never bill the same result twice. Failed results and dry runs are never
charged: the backend only calls :meth:`Ledger.charge` for a finished result.

Example:
    >>> ledger = Ledger()
    >>> [ledger.charge("t", image, 0.03) for image in ("i1", "i1", "i2")]
    [True, False, True]
    >>> ledger.snapshot()["billed"]["t"], ledger.total_usd
    ({'count': 2, 'usd': 0.06}, 0.06)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class _TaskCharges:
    images: set[str] = field(default_factory=set)
    usd: float = 0.0


class Ledger:
    """Charges per task and in total, in USD.

    Example:
        >>> ledger = Ledger(); _ = ledger.charge("task", "image", 0.03)
        >>> ledger.charged("task"), ledger.results_billed
        ((1, 0.03), 1)
    """

    def __init__(self) -> None:
        self._tasks: dict[str, _TaskCharges] = {}
        self._total_usd = 0.0
        self._count = 0

    def charge(self, task_uuid: str, image_uuid: str, usd: float) -> bool:
        """Charge one result; return False (and charge nothing) if it was charged before."""
        entry = self._tasks.setdefault(task_uuid, _TaskCharges())
        if image_uuid in entry.images:
            return False
        entry.images.add(image_uuid)
        entry.usd += usd
        self._total_usd += usd
        self._count += 1
        return True

    def charged(self, task_uuid: str) -> tuple[int, float]:
        """(results charged, USD) for one task.

        Example:
            >>> Ledger().charged("unknown")
            (0, 0.0)
        """
        entry = self._tasks.get(task_uuid)
        return (len(entry.images), round(entry.usd, 6)) if entry else (0, 0.0)

    @property
    def total_usd(self) -> float:
        """Everything charged so far, rounded to micro-dollars."""
        return round(self._total_usd, 6)

    @property
    def results_billed(self) -> int:
        """How many results were charged."""
        return self._count

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready view: per-task counts and USD, and the totals."""
        return {
            "billed": {
                uuid: {"count": len(entry.images), "usd": round(entry.usd, 6)}
                for uuid, entry in self._tasks.items()
            },
            "results_billed": self._count,
            "total_usd": self.total_usd,
        }

"""Counters for introspection: requests, tasks, faults, conflicts, webhooks and uploads.

Example:
    >>> s = Stats(); s.request(200); s.request("reset"); s.fault("reset_after")
    >>> s.snapshot()["requests_by_status"], s.snapshot()["faults"]
    ({'200': 1, 'reset': 1}, {'reset_after': 1})
"""

from __future__ import annotations

from collections import Counter, deque
from typing import Any, Final

#: How many webhook retry waits ``webhook_retry_delays`` keeps (the most recent ones).
WEBHOOK_DELAYS_KEPT: Final = 1000


class Stats:
    """Counts of everything observable from outside, reset with the emulator.

    Example:
        >>> s = Stats(); s.task("imageInference"); s.snapshot()["requests_by_task_type"]
        {'imageInference': 1}
    """

    def __init__(self) -> None:
        self.requests_by_status: Counter[str] = Counter()
        self.requests_by_task_type: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.webhooks: Counter[str] = Counter()
        self.uploads: Counter[str] = Counter()
        #: The waits (seconds) the webhook sender chose before each retry, oldest first.
        self.webhook_retry_delays: deque[float] = deque(maxlen=WEBHOOK_DELAYS_KEPT)
        self.tasks_accepted = 0
        self.conflicts = 0
        self.dry_runs = 0
        self.results_generated = 0
        self.results_failed = 0
        #: Inference tasks accepted and not yet finished, now and at most (what an account's
        #: concurrency limit on the real API counts).
        self.processing = 0
        self.max_processing = 0

    def request(self, status: int | str) -> None:
        """Count one finished request by its HTTP status (or ``"reset"``)."""
        self.requests_by_status[str(status)] += 1

    def task(self, task_type: str) -> None:
        """Count one task object by its ``taskType``."""
        self.requests_by_task_type[task_type] += 1

    def processing_started(self) -> None:
        """Count one inference task that starts processing."""
        self.processing += 1
        self.max_processing = max(self.max_processing, self.processing)

    def processing_finished(self) -> None:
        """Count one inference task whose every generation is finished."""
        self.processing -= 1

    def fault(self, kind: str) -> None:
        """Count one injected fault."""
        self.faults[kind] += 1

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready view of every counter."""
        return {
            "requests_by_status": dict(self.requests_by_status),
            "requests_total": sum(self.requests_by_status.values()),
            "requests_by_task_type": dict(self.requests_by_task_type),
            "tasks_accepted": self.tasks_accepted,
            "results_generated": self.results_generated,
            "results_failed": self.results_failed,
            "processing": self.processing,
            "max_processing": self.max_processing,
            "conflicts": self.conflicts,
            "dry_runs": self.dry_runs,
            "faults": dict(self.faults),
            "webhooks": {
                "delivered": self.webhooks["delivered"],
                "failed": self.webhooks["failed"],
                "attempts": self.webhooks["attempts"],
            },
            "webhook_retry_delays": list(self.webhook_retry_delays),
            "uploads": {
                "endpoint_put": self.uploads["endpoint_put"],
                "endpoint_put_failed": self.uploads["endpoint_put_failed"],
                "image_upload": self.uploads["image_upload"],
                "media_storage": self.uploads["media_storage"],
            },
        }

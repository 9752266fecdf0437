"""`TaskOutcome`: where one submitted task stands after :meth:`submit` or :meth:`poll`.

Example:
    >>> TaskOutcome("3f9a3c3e-2b7e-4a51-9d1b-6d6f0a2f8e11", "accepted").is_terminal
    False
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from prefect_flux_erase.runware.errors import RunwareError
from prefect_flux_erase.runware.responses import ResultItem

TaskState = Literal["done", "failed", "accepted", "conflict", "timeout"]


@dataclass
class TaskOutcome:
    """The state of one task, matched by ``taskUUID``.

    States:
        ``done``: every expected result arrived (``results``, deduplicated).
        ``failed``: the task ended with ``error`` (``results`` keeps any that did finish).
        ``accepted``: the server took the task (async delivery); poll it.
        ``conflict``: the taskUUID was submitted before (``conflictTaskUUID``); poll it.
        ``timeout``: polling ran out of time; ``error.code == "pollTimeout"``.

    Attributes:
        requests: HTTP requests that carried this task (retries and polls included).
        definite: Whether the server answered for this very task. ``False`` means the client
            never got an answer (transport faults exhausted the retries, or polling timed out):
            the task may have run, so resubmit it under the *same* taskUUID (which cannot be
            charged twice) rather than starting a new attempt.

    Example:
        >>> TaskOutcome("t", "failed", definite=False).is_terminal
        True
    """

    task_uuid: str
    state: TaskState
    results: list[ResultItem] = field(default_factory=list)
    error: RunwareError | None = None
    requests: int = 0
    definite: bool = True

    @property
    def is_terminal(self) -> bool:
        """Whether nothing more will happen without a new request (done, failed, timeout)."""
        return self.state in ("done", "failed", "timeout")

    @property
    def needs_poll(self) -> bool:
        """Whether the results must be fetched with ``getResponse`` (accepted or conflict)."""
        return self.state in ("accepted", "conflict")

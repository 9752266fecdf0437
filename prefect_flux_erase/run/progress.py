"""Progress of a running run, for whoever is watching in this process (the CLI's bar).

The front door (and so every flow) reports each committed shard to the listener installed with
:func:`listen`; nothing is reported when no listener is installed, and a listener's failure
never fails the run.

Example:
    >>> seen = []
    >>> with listen(seen.append):
    ...     report_progress(Progress(done_rows=5, total_rows=10, failed_rows=1))
    >>> seen[0].fraction
    0.5
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    """Rows finished so far (skipped shards included) out of the manifest's rows.

    Example:
        >>> Progress(done_rows=30, total_rows=120, failed_rows=2).fraction
        0.25
    """

    done_rows: int
    total_rows: int
    failed_rows: int = 0
    cost: float = 0.0
    message: str = ""
    #: The run's key (names its artifacts); empty when the reporter does not know it.
    run_key: str = ""

    @property
    def fraction(self) -> float:
        """Finished share, 0 to 1 (1 for an empty manifest)."""
        return self.done_rows / self.total_rows if self.total_rows else 1.0


Listener = Callable[[Progress], None]

_LISTENER: contextvars.ContextVar[Listener | None] = contextvars.ContextVar(
    "flux_erase_progress_listener", default=None
)


@contextlib.contextmanager
def listen(listener: Listener) -> Iterator[None]:
    """Send the progress of runs started inside this block (same thread) to ``listener``.

    Example:
        >>> seen = []
        >>> with listen(seen.append):
        ...     report_progress(Progress(done_rows=1, total_rows=2))
        >>> seen[0].done_rows
        1
    """
    token = _LISTENER.set(listener)
    try:
        yield
    finally:
        _LISTENER.reset(token)


def current_listener() -> Listener | None:
    """The listener installed by :func:`listen` in this context, if any."""
    return _LISTENER.get()


def report_progress(progress: Progress, listener: Listener | None = None) -> None:
    """Tell the listener (given, or the installed one) about ``progress``; never raises."""
    target = listener or _LISTENER.get()
    if target is None:
        return
    with contextlib.suppress(Exception):
        target(progress)

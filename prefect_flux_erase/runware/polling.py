"""``getResponse`` polling: the cadence (:class:`PollPolicy`) and the per-task collector.

Poll replies are cumulative (each repeats every result finished so far) and may carry a task's
failure in either form (top-level ``errors[]`` or a ``data[]`` item with ``status: "error"``,
both normalised by :func:`~prefect_flux_erase.runware.responses.parse_reply`). A
:class:`PollTracker` folds successive replies for one task into deduplicated results and
decides when the task is finished.

Example:
    >>> from itertools import islice
    >>> list(islice(PollPolicy().delays(), 5))
    [1.0, 0.5, 0.75, 1.125, 1.6875]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from prefect_flux_erase.runware.errors import RunwareError, TransientError
from prefect_flux_erase.runware.responses import ResultItem
from prefect_flux_erase.runware.task_outcome import TaskOutcome


@dataclass(frozen=True)
class PollPolicy:
    """When to ask ``getResponse`` again (runware-sdk's cadence by default, RUNWARE_API §4.4).

    Args:
        initial_delay: Seconds before the first poll (the task needs time to run).
        interval: Seconds before the second poll.
        multiplier: Growth of the interval after each poll.
        max_interval: Largest interval.
        timeout: Overall budget of one :meth:`RunwareClient.poll` call, in seconds.
        adaptive: Let the pipeline learn the first poll's delay from the batches it has seen
            finish (:class:`~prefect_flux_erase.shards.first_poll.FirstPollLearner`), starting
            from ``initial_delay``: the first ``getResponse`` then goes out about when the
            results are ready, instead of too early (a wasted request) or too late (idle
            rows). :meth:`RunwareClient.poll` itself always follows the delays as given.

    Example:
        >>> from itertools import islice
        >>> fast = PollPolicy(initial_delay=0.0, interval=0.01, max_interval=0.02)
        >>> list(islice(fast.delays(), 4))
        [0.0, 0.01, 0.015, 0.02]
    """

    initial_delay: float = 1.0
    interval: float = 0.5
    multiplier: float = 1.5
    max_interval: float = 10.0
    timeout: float = 1200.0
    adaptive: bool = False

    def __post_init__(self) -> None:
        if min(self.initial_delay, self.interval, self.max_interval) < 0 or self.timeout < 0:
            raise ValueError("poll delays and timeout must be >= 0")
        if self.multiplier < 1.0:
            raise ValueError(f"multiplier must be >= 1; got {self.multiplier}")

    def delays(self) -> Iterator[float]:
        """The waits before each poll: ``initial_delay``, then ``interval`` growing to the cap.

        Example:
            >>> from itertools import islice
            >>> doubling = PollPolicy(initial_delay=2.0, interval=1.0, multiplier=2.0)
            >>> list(islice(doubling.delays(), 4))
            [2.0, 1.0, 2.0, 4.0]
        """
        yield self.initial_delay
        current = min(self.interval, self.max_interval)
        while True:
            yield current
            current = min(current * self.multiplier, self.max_interval)


@dataclass
class PollTracker:
    """What is known about one polled task: deduplicated results, its error, requests spent.

    Example:
        >>> t = PollTracker("t", expected=2)
        >>> item = ResultItem.model_validate({"taskUUID": "t", "imageUUID": "i", "imageURL": "u"})
        >>> t.add([item, item]); t.finished, len(t.results)
        (False, 1)
    """

    task_uuid: str
    expected: int
    results: dict[str, ResultItem] = field(default_factory=dict)
    error: RunwareError | None = None
    requests: int = 0
    #: The last whole-request fault seen while polling (reported if the deadline passes).
    last_fault: RunwareError | None = None

    @property
    def finished(self) -> bool:
        """All expected results arrived, or the task failed."""
        return self.error is not None or len(self.results) >= self.expected

    def add(self, items: Iterable[ResultItem]) -> None:
        """Fold in a reply's items for this task; unfinished (processing) items are ignored.

        Example:
            >>> t = PollTracker("t", expected=1)
            >>> t.add([ResultItem.model_validate({"taskUUID": "t", "status": "processing"})])
            >>> t.finished
            False
        """
        for item in items:
            if item.is_final:
                self.results.setdefault(item.dedupe_key, item)

    def fail(self, error: RunwareError) -> None:
        """Record the task's failure (the first one wins).

        Example:
            >>> t = PollTracker("t", expected=1); t.fail(TransientError("late", code="x"))
            >>> t.outcome().state
            'failed'
        """
        if self.error is None:
            self.error = error

    def outcome(self) -> TaskOutcome:
        """The :class:`TaskOutcome` now: done, failed, or timeout if still unfinished.

        Example:
            >>> o = PollTracker("t", expected=1).outcome()
            >>> o.state, o.error.code, o.definite
            ('timeout', 'pollTimeout', False)
        """
        results = list(self.results.values())
        if self.error is not None:
            return TaskOutcome(self.task_uuid, "failed", results, self.error, self.requests)
        if len(results) >= self.expected:
            return TaskOutcome(self.task_uuid, "done", results, None, self.requests)
        detail = f"; last fault: {self.last_fault.message}" if self.last_fault else ""
        error = TransientError(
            f"task {self.task_uuid} unfinished when polling timed out "
            f"({len(results)} of {self.expected} results){detail}",
            code="pollTimeout",
            task_uuid=self.task_uuid,
        )
        return TaskOutcome(self.task_uuid, "timeout", results, error, self.requests, definite=False)

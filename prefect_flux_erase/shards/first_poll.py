"""When a shard's first ``getResponse`` should go out: learned from the batches seen finishing.

A fixed first delay is wrong for every model but one: too early and the poll is a wasted
request followed by a wait for the next one; too late and finished rows sit idle, holding their
in-flight slot. The pipeline polls a whole shard per request, so it can afford to learn: after
each batch it notes whether the first poll found every row finished, and moves its estimate of
"when results are ready" down a little when it did (to probe earlier) and up, never past the
time the batch was seen finished and at least to the last time some rows were still running,
when it did not. The two step sizes settle the first poll
where it finds the whole batch finished about four times in five (a quantile of the batch's
latency), a few percent after the results appear, for a 0.2 s emulator and a 10 s model alike.

One learner per API endpoint and model, shared by every shard in the process (the estimate is
a property of the service, not of a shard). Only :class:`~prefect_flux_erase.runware.polling.
PollPolicy` objects with ``adaptive=True`` use it (the pipeline's default policy does).

Example:
    >>> learner = FirstPollLearner()
    >>> learner.first_delay(1.0)
    1.0
    >>> learner.observe(1.0, finished_at_first=False, seen_after=3.0)
    >>> learner.first_delay(1.0)
    1.15
"""

from __future__ import annotations

import threading

#: Estimate x this after a first poll that found the whole batch finished (probe earlier).
EARLIER = 0.97
#: Estimate x this after a first poll that found rows unfinished (capped by when all were seen).
LATER = 1.15
#: Bounds of the learned first delay, in seconds.
FLOOR, CEILING = 0.02, 120.0


class FirstPollLearner:
    """A thread-safe estimate of how long after submission a batch's results are ready.

    Example:
        >>> learner = FirstPollLearner()
        >>> learner.observe(0.2, finished_at_first=True, seen_after=0.2)
        >>> round(learner.first_delay(0.2), 3)
        0.194
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._estimate: float | None = None
        self.observations = 0

    def first_delay(self, default: float) -> float:
        """The delay before a batch's first poll, from its submission: learned, or ``default``.

        Example:
            >>> FirstPollLearner().first_delay(0.5)
            0.5
        """
        with self._lock:
            return default if self._estimate is None else self._estimate

    def observe(
        self,
        first_delay: float,
        *,
        finished_at_first: bool,
        seen_after: float,
        running_after: float = 0.0,
    ) -> None:
        """Learn from one batch whose first poll went out ``first_delay`` s after submission.

        ``seen_after`` is when (s after submission) every row of the batch was seen finished,
        ``running_after`` the last time some were still seen running (0 if never).

        Example:
            >>> learner = FirstPollLearner()
            >>> learner.observe(0.2, finished_at_first=False, seen_after=0.21)
            >>> learner.first_delay(0.2)      # 0.2 x 1.15, capped at 0.21 (all seen by then)
            0.21
        """
        if finished_at_first:
            estimate = first_delay * EARLIER
        else:
            # Past the last time rows were seen running, and not past when all were seen done.
            estimate = min(max(first_delay * LATER, running_after), max(first_delay, seen_after))
        with self._lock:
            self._estimate = min(CEILING, max(FLOOR, estimate))
            self.observations += 1


_LEARNERS: dict[tuple[str, str], FirstPollLearner] = {}
_LEARNERS_LOCK = threading.Lock()


def learner_for(endpoint: str, model: str) -> FirstPollLearner:
    """The process-wide learner of one API endpoint and model.

    Example:
        >>> learner_for("https://api.runware.ai/v1", "bfl:flux@erase") is learner_for(
        ...     "https://api.runware.ai/v1", "bfl:flux@erase")
        True
    """
    with _LEARNERS_LOCK:
        return _LEARNERS.setdefault((endpoint, model), FirstPollLearner())

"""`RunControl`: what the shards of one run share in a process — its stop, and its API window.

Every shard stage of a run (on the core's asyncio executor, on Prefect's thread pool, in an
Airflow task) finds its run's control with :func:`control_for` (keyed by the run key):

- **the stop**: a run-level fault (the API unreachable, the key rejected, no credits), an
  interruption (Ctrl-C, SIGTERM) or a cancellation stops the run. From then on no shard sends
  a new row, rows in flight get a short grace to finish, and each shard commits what it has:
  rows done stay done, rows sent but unfinished are recorded ``notFinished`` (a rerun collects
  them by task UUID) and rows never sent ``notAttempted``. No new shard starts. A rerun with
  the same arguments continues from there and charges nothing twice.
- **the API's health** (:class:`~prefect_flux_erase.runware.health.ApiHealth`): whether the
  API answers at all, judged over every client of the run; it trips the stop itself.
- **one adaptive in-flight window** (:class:`~prefect_flux_erase.runware.limiter.
  AdaptiveLimiter`) for every client of the run, so that a 429 seen by one shard slows the
  next shard too instead of each starting at full width.

Example:
    ```python
    control = control_for(job.run_key)
    if control.stop_requested:
        ...                                   # send nothing new
    interrupt_runs()                          # a signal handler: stop every run in this process
    ```
"""

from __future__ import annotations

import threading

from prefect_flux_erase.errors import FluxEraseError
from prefect_flux_erase.runware.health import ApiHealth
from prefect_flux_erase.runware.limiter import AdaptiveLimiter
from prefect_flux_erase.shards.api_backend import RunAborted

#: Seconds rows already at the API get to finish after an interruption before the run stops
#: polling them (they are recorded as in flight, and a rerun collects them without a charge).
INTERRUPT_GRACE = 3.0

#: Stop codes that are not faults: the run was asked to stop.
INTERRUPTION_CODES = frozenset({"interrupted", "cancelled"})


class RunStopped(RunAborted):
    """The run stopped before every row was processed; what was done is committed.

    ``code`` says why: a run-level fault — ``apiUnreachable`` (the API cannot be reached at
    all), ``invalidApiKey`` (the key was rejected), ``insufficientCredits`` (no credits) — or
    ``interrupted`` (a signal) or ``cancelled`` (the orchestrator cancelled the run). The
    message says what to fix. Rows not attempted stay unattempted, not failed; running again
    with the same arguments continues where the run stopped: done rows are kept, rows that
    were in flight are collected by their task UUIDs, nothing is charged twice.

    Example:
        >>> reason = RunAborted("invalidApiKey: check the API key", code="invalidApiKey")
        >>> err = RunStopped(reason, done_rows=40, total_rows=100)
        >>> err.code, err.is_fault, err.done_rows
        ('invalidApiKey', True, 40)
        >>> str(err).startswith("invalidApiKey: check the API key. 40 of 100 rows are done")
        True
    """

    done_rows: int
    total_rows: int

    def __init__(self, reason: RunAborted, *, done_rows: int, total_rows: int) -> None:
        message = (
            f"{reason.message.rstrip('.')}. {done_rows} of {total_rows} rows are done and "
            "committed; run again with the same arguments to resume (done rows are kept, "
            "nothing is charged twice)"
        )
        FluxEraseError.__init__(
            self,
            message,
            code=reason.code,
            done_rows=done_rows,
            total_rows=total_rows,
        )

    @property
    def is_fault(self) -> bool:
        """Whether a fault stopped the run (``False``: it was interrupted or cancelled)."""
        return self.code not in INTERRUPTION_CODES


class RunControl:
    """The stop switch, API health and request window of one run in this process.

    Example:
        >>> control = RunControl("run-1")
        >>> control.stop_requested
        False
        >>> control.stop(RunAborted("interrupted: Ctrl-C", code="interrupted"))
        >>> control.stop_requested, control.reason.code
        (True, 'interrupted')
    """

    def __init__(self, run_key: str) -> None:
        self.run_key = run_key
        self.health = ApiHealth()
        self._lock = threading.Lock()
        self._limiter: AdaptiveLimiter | None = None

    def __repr__(self) -> str:
        return f"RunControl({self.run_key!r}, stopping={self.stop_requested})"

    @property
    def stop_requested(self) -> bool:
        """Whether the run is stopping: no shard sends a new row, no new shard starts."""
        return self.health.stop_requested

    @property
    def halted(self) -> bool:
        """Whether rows in flight are no longer waited for (the grace is over)."""
        return self.health.halted

    @property
    def reason(self) -> RunAborted | None:
        """Why the run stops, as a :class:`~prefect_flux_erase.shards.api_backend.RunAborted`
        (``code`` says which: ``apiUnreachable``, ``invalidApiKey``, ``interrupted``…)."""
        reason = self.health.reason
        if reason is None or isinstance(reason, RunAborted):
            return reason
        code = str(getattr(reason, "code", None) or type(reason).__name__)
        text = str(getattr(reason, "message", None) or reason)
        return RunAborted(text if text.startswith(code) else f"{code}: {text}", code=code)

    def stop(self, reason: RunAborted, *, grace: float = 0.0) -> None:
        """Stop the run for ``reason``; rows at the API get ``grace`` seconds to finish.

        Example:
            >>> fault = RunAborted("insufficientCredits: top up", code="insufficientCredits")
            >>> RunControl("doc").stop(fault)
        """
        self.health.stop(reason, grace=grace)

    def limiter(self, limit: int) -> AdaptiveLimiter:
        """The run's in-flight window (made ``limit`` wide on first use).

        Example:
            >>> control = RunControl("doc")
            >>> control.limiter(32) is control.limiter(8)
            True
        """
        with self._lock:
            if self._limiter is None:
                self._limiter = AdaptiveLimiter(limit)
            return self._limiter


_CONTROLS: dict[str, RunControl] = {}
_LOCK = threading.Lock()
#: A process-wide interruption (a signal): runs started after it stop at once too.
_INTERRUPTED: list[RunAborted] = []


def control_for(run_key: str) -> RunControl:
    """The control of run ``run_key`` in this process (created on first use).

    Example:
        >>> control_for("doc-run") is control_for("doc-run")
        True
        >>> end_run("doc-run")
    """
    with _LOCK:
        control = _CONTROLS.get(run_key)
        if control is None:
            control = _CONTROLS[run_key] = RunControl(run_key)
            if _INTERRUPTED:
                control.stop(_INTERRUPTED[0])
        return control


def start_run(run_key: str) -> RunControl:
    """A fresh control for run ``run_key`` (a new run of that key in this process: what an
    earlier one stopped for, and its window, are forgotten). The front door calls this.

    Example:
        >>> start_run("doc-fresh").stop_requested
        False
        >>> end_run("doc-fresh")
    """
    with _LOCK:
        control = _CONTROLS[run_key] = RunControl(run_key)
        if _INTERRUPTED:
            control.stop(_INTERRUPTED[0])
        return control


def end_run(run_key: str) -> None:
    """Forget run ``run_key``'s control (the front door calls this when the run ends).

    Example:
        >>> end_run("never-started")
    """
    with _LOCK:
        _CONTROLS.pop(run_key, None)


def stop_run(run_key: str, reason: RunAborted, *, grace: float = INTERRUPT_GRACE) -> None:
    """Stop one run in this process (e.g. its Prefect flow run was cancelled).

    Example:
        >>> stop_run("doc-stop", RunAborted("cancelled: from the UI", code="cancelled"))
        >>> control_for("doc-stop").reason.code
        'cancelled'
        >>> end_run("doc-stop")
    """
    control_for(run_key).stop(reason, grace=grace)


def interrupt_runs(reason: RunAborted | None = None, *, grace: float = INTERRUPT_GRACE) -> None:
    """Stop every run in this process, and any that starts later (a signal handler's call).

    Example:
        ```python
        signal.signal(signal.SIGINT, lambda *_: interrupt_runs())
        ```
    """
    reason = reason or RunAborted("interrupted: the run was interrupted", code="interrupted")
    with _LOCK:
        if not _INTERRUPTED:
            _INTERRUPTED.append(reason)
        controls = list(_CONTROLS.values())
    for control in controls:
        control.stop(reason, grace=grace)


def clear_interrupt() -> None:
    """Forget a process-wide interruption, so that later runs run (tests, long-lived workers).

    Example:
        >>> clear_interrupt()
    """
    with _LOCK:
        _INTERRUPTED.clear()

"""How `flux-erase` stops: Ctrl-C (and SIGTERM, SIGHUP) stop a run cleanly, a second exits at once.

The first signal asks every run in the process to stop
(:func:`~prefect_flux_erase.run.interrupt_runs`): no new row is sent, rows in flight get a few
seconds, what is done is committed, and the run ends with
:class:`~prefect_flux_erase.run.RunStopped`; the command then prints how many rows are done and
the exact command that resumes, and exits with :data:`EXIT_INTERRUPTED`. A second signal exits
at once (a rerun still recovers every row, by its task UUID).

The temporary Prefect server of a run without ``PREFECT_API_URL`` is started in a session of
its own (:func:`~prefect_flux_erase.flows.prefect_internals.detach_ephemeral_server`): a
terminal's Ctrl-C reaches the whole foreground group, and the server used to shut down under the
run, which then spent minutes printing connection errors.

Example:
    ```python
    with stoppable() as signals, ProgressView("erasing", on_first=signals.install) as view:
        ...
    ```
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

#: Exit code of a run that stopped early with what to fix: the cost cap, or a run-level fault
#: (the API unreachable, the key rejected, no credits).
EXIT_STOPPED = 3
#: Exit code of an interrupted run (128 + SIGINT, as shells report Ctrl-C).
EXIT_INTERRUPTED = 130


class Signals:
    """The CLI's signal handlers for one run (see the module docstring).

    Prefect installs its own SIGTERM handler while a flow runs; :meth:`install` is called again
    from the flow's thread (through the progress view's first report) to take SIGTERM back.

    Example:
        >>> signals = Signals(); signals.received
        0
    """

    SIGNALS = tuple(
        s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s
    )

    def __init__(self) -> None:
        self.received = 0
        self.server: Any = None  # the detached temporary Prefect server, if any
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        """Handle the signals here (only possible on the main thread; elsewhere a no-op)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in self.SIGNALS:
            current = signal.getsignal(sig)
            if current is not self._handle:
                self._previous.setdefault(sig, current)
                signal.signal(sig, self._handle)

    def restore(self) -> None:
        """Put back the handlers that were there before :meth:`install`."""
        for sig, previous in self._previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(sig, previous)
        self._previous.clear()

    def _handle(self, signum: int, frame: object) -> None:
        from prefect_flux_erase.run import RunAborted, interrupt_runs

        self.received += 1
        name = signal.Signals(signum).name
        if self.received == 1:
            print(
                f"\nflux-erase: {name}: stopping; rows in flight get a few seconds, what is "
                "done is committed (press Ctrl-C again to quit at once)",
                file=sys.stderr,
                flush=True,
            )
            reason = f"interrupted: the run was interrupted ({name})"
            interrupt_runs(RunAborted(reason, code="interrupted"))
            return
        print(
            "flux-erase: quitting now; run the same command again to resume",
            file=sys.stderr,
            flush=True,
        )
        from prefect_flux_erase.flows.prefect_internals import stop_detached_server

        stop_detached_server(self.server)
        os._exit(EXIT_INTERRUPTED)


@contextlib.contextmanager
def stoppable() -> Iterator[Signals]:
    """Graceful signals around a run, and the temporary Prefect server out of Ctrl-C's way.

    Example:
        ```python
        with stoppable() as signals:
            state = erase_manifest(..., return_state=True)
        ```
    """
    from prefect_flux_erase.flows.prefect_internals import detach_ephemeral_server

    signals = Signals()
    with contextlib.suppress(Exception):  # best effort: a run without it still runs
        signals.server = detach_ephemeral_server()
    signals.install()
    try:
        yield signals
    finally:
        signals.restore()

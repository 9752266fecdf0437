"""A flow run cancelled through Prefect's API (the UI's Cancel, ``prefect flow-run cancel``)
stops its run cleanly, as Ctrl-C does.

Prefect delivers a cancellation to a flow run by killing its process — when a worker or
``serve`` runs it. A flow called in-process (a script, the CLI, a notebook) is never told at
all: it ran on to the end. :class:`CancellationWatch` reads the flow run's state once a second
and, once it is ``Cancelling`` (or ``Cancelled``), stops the run through the core
(:func:`~prefect_flux_erase.run.stop_run`): no new rows are sent, rows in flight get a few
seconds, what is done is committed, and the flow run ends ``Cancelled``. Running the flow
again with the same parameters resumes it without charging anything twice.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from types import TracebackType
from typing import Any

from prefect_flux_erase.run import RunAborted, stop_run

_log = logging.getLogger("prefect_flux_erase.flows")

#: Seconds between two reads of the flow run's state.
WATCH_INTERVAL = 1.0


class CancellationWatch:
    """While the block runs, stop run ``run_key`` if the current flow run is cancelled.

    Example:
        ```python
        with CancellationWatch(run_key) as watch:
            summary = execute_run(spec, executor)
        watch.cancelled          # True if the run stopped because of it
        ```
    """

    def __init__(self, run_key: str, *, interval: float = WATCH_INTERVAL) -> None:
        self.run_key = run_key
        self.interval = interval
        self.cancelled = False
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> CancellationWatch:
        from prefect.context import FlowRunContext

        context = FlowRunContext.get()
        flow_run = getattr(context, "flow_run", None)
        if flow_run is None:
            return self  # not in a flow run: nothing to watch
        # The thread reads the API with this context's settings (the API URL, say).
        copied = contextvars.copy_context()
        self._thread = threading.Thread(
            target=copied.run,
            args=(self._watch, flow_run.id),
            name="flux-erase-cancel-watch",
            daemon=True,
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _watch(self, flow_run_id: Any) -> None:
        from prefect.client.orchestration import get_client

        try:
            with get_client(sync_client=True) as client:
                while not self._done.wait(self.interval):
                    state = client.read_flow_run(flow_run_id).state
                    if state is not None and (state.is_cancelling() or state.is_cancelled()):
                        self.cancelled = True
                        # Again at each look: the run may (re)start its control meanwhile.
                        stop_run(
                            self.run_key,
                            RunAborted(
                                "cancelled: the flow run was cancelled",
                                code="cancelled",
                            ),
                        )
        except Exception as exc:  # a watch that fails must never fail the run
            _log.debug("stopped watching for cancellation: %s", exc)

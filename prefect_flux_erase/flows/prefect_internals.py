"""The places where the Prefect face reads Prefect internals, isolated here.

Prefect 3 has no public API for these; each is best effort (a missing attribute turns the
optimisation off, never fails a run), and ``tests/flows/test_prefect_internals.py`` fails when
a Prefect release renames one, so the loss is noticed:

- ``ThreadPoolTaskRunner._max_workers``: whether the flow's thread pool has a thread for every
  shard the driver keeps going (needed for API slots, :mod:`prefect_flux_erase.shards.api_slots`).
- ``ThreadPoolTaskRunner._cancel_events``: one event per task run, kept for the whole flow run
  (three per shard); the driver drops those of finished stages.
- ``FlowRunContext.run_results``: Prefect's link from each task result to its state, kept for
  the whole flow run; the driver drops a stage's result once the next stage has it.
- ``SubprocessASGIServer``: the temporary server of a run without ``PREFECT_API_URL``; the
  CLI starts it in a session of its own, so that Ctrl-C does not stop it under the run.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any


def thread_pool_workers() -> int | None:
    """The worker count of the current flow's thread-pool task runner (None: not a pool).

    Example:
        >>> thread_pool_workers() is None      # outside a flow run
        True
    """
    from prefect.context import FlowRunContext
    from prefect.task_runners import ThreadPoolTaskRunner

    runner = getattr(FlowRunContext.get(), "task_runner", None)
    if not isinstance(runner, ThreadPoolTaskRunner):
        return None
    return int(getattr(runner, "_max_workers", 0) or 0)


def forget_cancel_event(task_run_id: Any) -> None:
    """Drop the cancel event a thread-pool runner keeps for a finished task run.

    Example:
        >>> forget_cancel_event(None)      # outside a flow run: nothing to do
    """
    from prefect.context import FlowRunContext

    with contextlib.suppress(Exception):  # bookkeeping must never fail a run
        events = getattr(getattr(FlowRunContext.get(), "task_runner", None), "_cancel_events", None)
        if isinstance(events, dict) and task_run_id is not None:
            events.pop(task_run_id, None)


def forget_result_links(value: Any) -> None:
    """Forget Prefect's link from ``value`` (a stage's result) and its fields to their state.

    Example:
        >>> forget_result_links(object())   # outside a flow run: nothing to do
    """
    from prefect.context import FlowRunContext

    linked = getattr(FlowRunContext.get(), "run_results", None)
    if not isinstance(linked, dict):
        return
    # Task threads add entries meanwhile: only single-key operations here (atomic in
    # CPython), never an iteration over the dict.
    parts = [value]
    if dataclasses.is_dataclass(value):
        parts += [getattr(value, f.name) for f in dataclasses.fields(value)]
    for part in parts:  # all alive here, so no other object can have their ids
        with contextlib.suppress(Exception):  # best effort: never fail a run over this
            entry = linked.get(id(part))
            ref = entry[2] if isinstance(entry, tuple) and len(entry) > 2 else None
            if entry is not None and (ref is None or ref() is part):
                linked.pop(id(part), None)


def detach_ephemeral_server() -> Any | None:
    """Make the temporary Prefect server that a run without ``PREFECT_API_URL`` starts run
    in a session of its own, and return it (``None`` when there is a server URL, or when
    the temporary server was already made).

    A terminal's Ctrl-C reaches every process of the foreground group. Prefect starts its
    temporary server as a child in the caller's group, so the server shut down on the first
    Ctrl-C while the flow still had a run to finish and report: hundreds of connection
    errors, minutes to exit. In its own session the server outlives the key press; Prefect
    still stops it at exit (``atexit``). Prefect has no option for this: the server's
    ``subprocess.Popen`` call is given ``start_new_session=True`` while it starts.

    Example:
        ```python
        server = detach_ephemeral_server()   # before the first flow call
        ```
    """
    import functools
    import subprocess
    from unittest import mock

    from prefect.server.api import server as server_module
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        return None
    base = getattr(server_module, "SubprocessASGIServer", None)
    if base is None or None in getattr(base, "_instances", {None: None}):
        return None

    class _OwnSessionServer(base):  # type: ignore[misc, valid-type]
        def _run_uvicorn_command(self) -> Any:
            popen = functools.partial(subprocess.Popen, start_new_session=True)
            # The same module object the server module calls ``subprocess.Popen`` on.
            with mock.patch.object(subprocess, "Popen", popen):
                return super()._run_uvicorn_command()

    # Prefect keeps one instance per port; the one for "any port" is what flows use.
    return _OwnSessionServer()


def stop_detached_server(server: Any | None) -> None:
    """Ask a server from :func:`detach_ephemeral_server` to stop, without waiting.

    Example:
        >>> stop_detached_server(None)
    """
    process = getattr(server, "server_process", None)
    if process is not None:
        with contextlib.suppress(Exception):
            process.terminate()

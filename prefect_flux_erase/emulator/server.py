"""Serving the emulator with uvicorn: in a background thread (tests) or in the foreground (CLI).

The server uses uvicorn protocols that hand each request its connection's transport (see
:mod:`prefect_flux_erase.emulator.http_protocols`), which is how the app can reset a connection
without answering.

Example:
    ```python
    from prefect_flux_erase.emulator import EmulatorConfig, serve_in_thread

    with serve_in_thread(EmulatorConfig(latency=0.0, seed=0)) as emu:
        emu.url        # "http://127.0.0.1:PORT/v1"  (what clients use as base_url)
        emu.stats()    # the same dict as GET /_emulator/stats
        emu.configure(faults={"http_429": 0.05}, latency=0.2)
        emu.script_faults(["http_503", "reset_after"])
        emu.reset()
    ```
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import uvicorn

from prefect_flux_erase.emulator.app import create_app
from prefect_flux_erase.emulator.backend import EmulatorBackend
from prefect_flux_erase.emulator.config import EmulatorConfig
from prefect_flux_erase.emulator.http_protocols import protocol_class

T = TypeVar("T")
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port); port 0 picks a free one.

    Example:
        >>> sock = bind("127.0.0.1", 0); sock.getsockname()[1] > 0
        True
        >>> sock.close()
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _uvicorn_server(backend: EmulatorBackend) -> uvicorn.Server:
    config = uvicorn.Config(
        create_app(backend),
        http=protocol_class(),
        ws="none",
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=2,
    )
    return uvicorn.Server(config)


def _root(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


async def serve(
    config: EmulatorConfig,
    sock: socket.socket,
    host: str,
    *,
    on_ready: Callable[[EmulatorBackend, uvicorn.Server], None] | None = None,
) -> None:
    """Serve on an already bound socket until the uvicorn server is told to exit.

    Example:
        ```python
        sock = bind("127.0.0.1", 0)
        asyncio.run(serve(EmulatorConfig(latency=0.2), sock, "127.0.0.1"))  # until SIGINT
        ```
    """
    backend = EmulatorBackend(config)
    backend.set_root(_root(sock, host))
    server = _uvicorn_server(backend)
    await backend.start()
    try:
        if on_ready is not None:
            on_ready(backend, server)
        await server.serve(sockets=[sock])
    finally:
        await backend.close()


class EmulatorServer:
    """A running emulator: its URLs, and thread-safe control of its backend.

    Example:
        ```python
        with serve_in_thread(EmulatorConfig(seed=0)) as emu:
            emu.configure(latency=(0.1, 0.3), faults={"http_429": 0.05})
            emu.script_faults(["reset_after"])
            ...                       # drive a client against emu.url
            emu.wait_idle()           # background generations, webhooks and uploads done
            assert emu.stats()["results_billed"] == 1
        ```
    """

    def __init__(
        self,
        backend: EmulatorBackend,
        server: uvicorn.Server,
        loop: asyncio.AbstractEventLoop,
        root: str,
    ) -> None:
        self.backend = backend
        self._server = server
        self._loop = loop
        #: ``http://127.0.0.1:PORT``
        self.root = root
        #: ``http://127.0.0.1:PORT/v1``: what clients use as their base URL.
        self.url = f"{root}/v1"

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _sync(self, fn: Callable[[], T]) -> T:
        async def run() -> T:
            return fn()

        return self._call(run())

    def stats(self) -> dict[str, Any]:
        """The same dict as ``GET /_emulator/stats``."""
        return self._sync(self.backend.snapshot)

    def reset(self) -> None:
        """Forget all state and counters; restore the config the server started with."""
        self._call(self.backend.reset())

    def configure(self, **changes: Any) -> EmulatorConfig:
        """Change config fields now (validated; a callable engine is allowed here)."""
        return self._sync(lambda: self.backend.configure(**changes))

    @property
    def config(self) -> EmulatorConfig:
        """The config in force."""
        return self.backend.config

    def script_faults(self, kinds: Iterable[str]) -> None:
        """Fire these faults, in order, on the next eligible requests."""
        kinds = list(kinds)
        self._sync(lambda: self.backend.faults.script(kinds))

    def advance_clock(self, seconds: float) -> None:
        """Move the emulator's clock forward (URL expiry) without sleeping."""
        self.backend.clock.advance(seconds)

    def wait_idle(self, timeout: float = 30) -> None:
        """Block until every background task, webhook and upload has finished."""
        self._call(self.backend.wait_idle(), timeout)

    def image_url(self, uuid: str, ext: str) -> str:
        """Where this server serves a stored image."""
        return f"{self.root}/image/{uuid}.{ext}"

    def stop(self) -> None:
        """Ask the server to exit."""
        self._server.should_exit = True


@contextmanager
def serve_in_thread(
    config: EmulatorConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> Iterator[EmulatorServer]:
    """Run an emulator in a background thread for the duration of the ``with`` block.

    Example:
        ```python
        with serve_in_thread(EmulatorConfig(latency=0.0, seed=0)) as emu:
            httpx.post(emu.url, json=[{"taskType": "ping"}], headers={"Authorization": "Bearer k"})
        ```
    """
    sock = bind(host, port)
    ready = threading.Event()
    holder: dict[str, Any] = {}

    def on_ready(backend: EmulatorBackend, server: uvicorn.Server) -> None:
        holder["handle"] = EmulatorServer(
            backend, server, asyncio.get_running_loop(), _root(sock, host)
        )
        ready.set()

    def run() -> None:
        try:
            asyncio.run(serve(config or EmulatorConfig(), sock, host, on_ready=on_ready))
        except BaseException as exc:  # surface start-up failures to the caller
            holder["error"] = exc
            ready.set()

    thread = threading.Thread(target=run, name="runware-emulator", daemon=True)
    thread.start()
    ready.wait(60)
    if "handle" not in holder:
        sock.close()
        raise RuntimeError(f"the emulator did not start: {holder.get('error')!r}")
    handle: EmulatorServer = holder["handle"]
    try:
        _wait_started(handle)
        yield handle
    finally:
        handle.stop()
        thread.join(15)
        sock.close()


def _wait_started(handle: EmulatorServer) -> None:
    # uvicorn sets `started` once its sockets accept; wait for it so the first request is served.
    async def started() -> None:
        while not handle._server.started:  # noqa: ASYNC110 - uvicorn has a flag, no event
            await asyncio.sleep(0.005)

    handle._call(started(), 30)

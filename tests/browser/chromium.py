"""Headless Chromium driven over the DevTools protocol: open a page, evaluate JS, screenshot.

A deliberately small client (one page, one websocket, request/response by id) so that the
browser tests need nothing beyond Debian's ``chromium`` and the ``websockets`` package that
Prefect already installs.

Example:
    ```python
    async with Chromium.launch() as browser:
        await browser.open("http://127.0.0.1:8000/report.html")
        title = await browser.evaluate("document.title")
        png = await browser.screenshot(full_page=True)
    ```
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import websockets

from tests.fixtures.tools import missing_tool, stop_process

#: Flags every headless start uses: without the background-networking ones, Chromium's own
#: connections get refused in bulk on an offline machine and slow everything down.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """The Chromium executable on PATH (or the one ``CHROMIUM`` names), or ``None``.

    Example:
        >>> find_chromium() is None or os.path.isabs(find_chromium())
        True
    """
    override = os.environ.get("CHROMIUM")
    if override:
        return shutil.which(override)
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def require_chromium() -> str:
    """The Chromium executable; skip the test without one, except in CI, where it must exist.

    Example:
        ```python
        binary = require_chromium()   # skips locally without chromium, fails under CI=true
        ```
    """
    binary = find_chromium()
    if binary is not None:
        return binary
    missing_tool(
        "headless Chromium not found (apt-get install -y chromium, or set CHROMIUM)",
        "CI installs it in .ci/run",
    )


class DevToolsError(RuntimeError):
    """A DevTools command answered with an error, or a page script threw.

    Example:
        >>> str(DevToolsError("Runtime.evaluate: ReferenceError"))
        'Runtime.evaluate: ReferenceError'
    """


class Chromium:
    """One headless Chromium process and a DevTools session on its first page.

    Example:
        ```python
        async with Chromium.launch(width=1280, height=900) as browser:
            await browser.open(url)
            ok = await browser.evaluate("document.images.length > 0")
        ```
    """

    def __init__(self, process: subprocess.Popen[bytes], socket: Any, profile: Path) -> None:
        self._process = process
        self._socket = socket
        self._profile = profile
        self._next_id = 0
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    @classmethod
    @contextlib.asynccontextmanager
    async def launch(
        cls, *, width: int = 1280, height: int = 900, start_seconds: float = 30.0
    ) -> AsyncIterator[Chromium]:
        """Start Chromium with a fresh profile and connect to its page; stop it on exit."""
        binary = require_chromium()
        profile = Path(tempfile.mkdtemp(prefix="flux-erase-chromium-"))
        process, page_ws = await asyncio.to_thread(
            _start, binary, profile, width, height, start_seconds
        )
        try:
            async with websockets.connect(page_ws, max_size=64 * 1024 * 1024) as socket:
                browser = cls(process, socket, profile)
                await browser._send("Page.enable")
                await browser._send("Runtime.enable")
                yield browser
        finally:
            await asyncio.to_thread(_stop, process, profile)

    async def _send(self, method: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        request_id = self._next_id
        await self._socket.send(json.dumps({"id": request_id, "method": method, "params": params}))
        while True:
            message = json.loads(await self._socket.recv())
            if message.get("id") == request_id:
                if "error" in message:
                    raise DevToolsError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            if "method" in message:
                self._events.put_nowait(message)

    async def _wait_event(self, method: str, wait_seconds: float) -> dict[str, Any]:
        async def wait() -> dict[str, Any]:
            while True:
                while not self._events.empty():
                    event: dict[str, Any] = self._events.get_nowait()
                    if event["method"] == method:
                        return event
                message: dict[str, Any] = json.loads(await self._socket.recv())
                if message.get("method") == method:
                    return message

        return await asyncio.wait_for(wait(), wait_seconds)

    async def open(self, url: str, wait_seconds: float = 30.0) -> None:
        """Navigate to ``url`` and wait for its ``load`` event."""
        while not self._events.empty():
            self._events.get_nowait()
        result = await self._send("Page.navigate", url=url)
        if result.get("errorText"):
            raise DevToolsError(f"cannot open {url}: {result['errorText']}")
        await self._wait_event("Page.loadEventFired", wait_seconds)

    async def evaluate(self, expression: str) -> Any:
        """Evaluate JS in the page (awaiting a returned promise) and return its JSON value."""
        result = await self._send(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in result:
            raise DevToolsError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def screenshot(self, *, full_page: bool = False) -> bytes:
        """A PNG of the viewport, or of the whole page with ``full_page``."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            metrics = await self._send("Page.getLayoutMetrics")
            size = metrics["cssContentSize"]
            params["captureBeyondViewport"] = True
            params["clip"] = {
                "x": 0,
                "y": 0,
                "width": size["width"],
                "height": size["height"],
                "scale": 1,
            }
        result = await self._send("Page.captureScreenshot", **params)
        return base64.b64decode(result["data"])


def _start(
    binary: str, profile: Path, width: int, height: int, start_seconds: float
) -> tuple[subprocess.Popen[bytes], str]:
    """Start the browser; return it and its page's DevTools websocket URL."""
    process = subprocess.Popen(
        [
            binary,
            *FLAGS,
            f"--user-data-dir={profile}",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--window-size={width},{height}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port = _devtools_port(profile, process, start_seconds)
        return process, _page_socket_url(port, start_seconds)
    except BaseException:
        _stop(process, profile)
        raise


def _stop(process: subprocess.Popen[bytes], profile: Path) -> None:
    """Stop the browser (politely, then not) and delete its profile."""
    stop_process(process)
    shutil.rmtree(profile, ignore_errors=True)


def _devtools_port(profile: Path, process: subprocess.Popen[bytes], timeout: float) -> int:
    """Read the port Chromium chose from ``DevToolsActivePort`` in its profile."""
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DevToolsError(f"chromium exited with status {process.returncode} at start")
        if marker.exists():
            lines = marker.read_text().splitlines()
            if lines and lines[0].strip().isdigit():
                return int(lines[0])
        time.sleep(0.05)
    raise DevToolsError(f"chromium did not open a DevTools port within {timeout} s")


def _page_socket_url(port: int, timeout: float) -> str:
    """The websocket URL of the browser's first page target."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
                targets = json.load(r)
            pages = [t for t in targets if t.get("type") == "page"]
            if pages:
                return str(pages[0]["webSocketDebuggerUrl"])
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise DevToolsError("chromium listed no page target")
        time.sleep(0.05)

"""Shared pieces of the client tests: a test photo and mask, task and client factories.

Clients use tiny backoff and poll delays so fault tests run in milliseconds; the delays a
client *chose* are checked through ``client.stats``, never through wall time.
"""

from __future__ import annotations

import io
import itertools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest
from PIL import Image

from prefect_flux_erase.emulator import EmulatorServer
from prefect_flux_erase.runware.client import RunwareClient
from prefect_flux_erase.runware.ids import task_uuid
from prefect_flux_erase.runware.media import to_data_uri
from prefect_flux_erase.runware.models import ImageInferenceTask, build_task
from prefect_flux_erase.runware.polling import PollPolicy
from prefect_flux_erase.runware.retry_policy import RetryPolicy

#: Size of the test photo: not a multiple of 8 or 16, to catch codecs that pad.
PHOTO_SIZE = (301, 259)
FAST_RETRY = RetryPolicy(base=0.001, cap=0.004, jitter=0.0, max_retries=5)
FAST_POLL = PollPolicy(
    initial_delay=0.0, interval=0.005, multiplier=1.5, max_interval=0.05, timeout=30.0
)


@dataclass(frozen=True)
class Photo:
    """A noisy RGB photo and a mask of the same size (PNG bytes and data URIs)."""

    image: bytes
    mask: bytes

    @property
    def image_uri(self) -> str:
        return to_data_uri(self.image)

    @property
    def mask_uri(self) -> str:
        return to_data_uri(self.mask)


def _png(array: np.ndarray[Any, Any], mode: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="session")
def photo() -> Photo:
    """A deterministic noisy photo (so JPEG quality shows in the size) and a boxed mask."""
    w, h = PHOTO_SIZE
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    mask = np.zeros((h, w), dtype=np.uint8)
    mask[80:160, 90:200] = 255
    return Photo(_png(rgb, "RGB"), _png(mask, "L"))


_counter = itertools.count()


@pytest.fixture
def make_task(photo: Photo, request: pytest.FixtureRequest) -> Callable[..., ImageInferenceTask]:
    """Build a validated task for the test photo; wire-named options go in as keywords."""

    def make(**options: Any) -> ImageInferenceTask:
        uuid = options.pop("taskUUID", None) or task_uuid(
            "tests/runware", f"{request.node.nodeid}#{next(_counter)}"
        )
        inputs = options.pop("inputs", {"image": photo.image_uri, "mask": photo.mask_uri})
        return build_task({"taskUUID": uuid, "inputs": inputs, **options})

    return make


@pytest.fixture
def new_client(emu: EmulatorServer) -> Callable[..., RunwareClient]:
    """Create clients for the emulator with fast policies (use as ``async with``)."""

    def make(**overrides: Any) -> RunwareClient:
        options: dict[str, Any] = {
            "base_url": emu.url,
            "timeout": 5.0,
            "connect_timeout": 5.0,
            "retry_policy": FAST_RETRY,
            "poll_policy": FAST_POLL,
        }
        options.update(overrides)
        api_key = options.pop("api_key", "rk-test-key")
        return RunwareClient(api_key, **options)

    return make


@dataclass
class Received:
    """One request a :class:`Receiver` got."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Canned = tuple[int, dict[str, str], bytes]


class Receiver:
    """A real HTTP server on loopback that records what it receives (webhooks, uploads).

    ``respond`` (when set) computes the answer from the request; otherwise ``replies`` is a queue
    of canned ``(status, headers, body)`` answers; when it is empty the answer is ``200 {}``.
    """

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.replies: list[Canned] = []
        self.respond: Callable[[Received], Canned] | None = None
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                got = Received(self.command, self.path, dict(self.headers.items()), body)
                with outer._lock:
                    outer.received.append(got)
                    if outer.respond is not None:
                        status, headers, reply = outer.respond(got)
                    elif outer.replies:
                        status, headers, reply = outer.replies.pop(0)
                    else:
                        status, headers, reply = 200, {"Content-Type": "application/json"}, b"{}"
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            do_GET = do_POST = do_PUT = _handle

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A recording HTTP server on 127.0.0.1 (a webhook or upload target, or canned replies)."""
    server = Receiver()
    try:
        yield server
    finally:
        server.close()

"""Inputs and a plain httpx client for talking to the emulator over loopback."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from prefect_flux_erase.emulator import EmulatorServer
from prefect_flux_erase.runware.media import to_data_uri

API_KEY = "emulator-test-key-0123456789"
SIZE = 256
TaskFactory = Callable[..., dict[str, Any]]


def png_bytes(arr: NDArray[Any]) -> bytes:
    """PNG-encode an array (H x W x 3 RGB or H x W grey)."""
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def photo(size: int = SIZE) -> NDArray[np.uint8]:
    """A flat grey image with a black square where the object to erase is."""
    rgb = np.full((size, size, 3), 180, np.uint8)
    rgb[100:140, 100:140] = 0
    return rgb


def square_mask(size: int = SIZE) -> NDArray[np.uint8]:
    """White (erase) over the black square of :func:`photo`."""
    mask = np.zeros((size, size), np.uint8)
    mask[100:140, 100:140] = 255
    return mask


@pytest.fixture(scope="session")
def image_uri() -> str:
    return to_data_uri(png_bytes(photo()))


@pytest.fixture(scope="session")
def mask_uri() -> str:
    return to_data_uri(png_bytes(square_mask()))


@pytest.fixture
def make_task(image_uri: str, mask_uri: str) -> TaskFactory:
    """Build an imageInference task for bfl:flux@erase; keyword arguments override fields."""

    def make(**overrides: Any) -> dict[str, Any]:
        task: dict[str, Any] = {
            "taskType": "imageInference",
            "taskUUID": str(uuid.uuid4()),
            "model": "bfl:flux@erase",
            "inputs": {"image": image_uri, "mask": mask_uri},
        }
        task.update(overrides)
        return task

    return make


@pytest.fixture
def client(emu: EmulatorServer) -> Iterator[httpx.Client]:
    """A plain httpx client with Bearer auth, pointed at the reset emulator."""
    with httpx.Client(
        headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30, trust_env=False
    ) as c:
        yield c


def poll(client: httpx.Client, url: str, task_uuid: str) -> httpx.Response:
    """One getResponse request."""
    return client.post(url, json=[{"taskType": "getResponse", "taskUUID": task_uuid}])


class Receiver:
    """A loopback HTTP server standing in for a file host, a webhook receiver and an upload URL.

    ``files`` are served on GET; PUT and POST requests are recorded. ``statuses`` scripts the
    answers to the next POST/PUT requests (then 200).
    """

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                data = receiver.files.get(self.path)
                self.send_response(200 if data is not None else 404)
                self.send_header("Content-Length", str(len(data or b"")))
                self.end_headers()
                self.wfile.write(data or b"")

            def _record(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver.arrived:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.requests.append(
                        (self.command, self.path, dict(self.headers.items()), body)
                    )
                    receiver.arrived.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_PUT = _record
            do_POST = _record

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def wait_for(
        self, count: int, timeout: float = 30
    ) -> list[tuple[str, str, dict[str, str], bytes]]:
        """Block until ``count`` PUT/POST requests arrived; return them."""
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.requests) >= count, timeout)
        return list(self.requests)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A fresh loopback receiver for one test."""
    r = Receiver()
    try:
        yield r
    finally:
        r.close()

"""Storage roots on three real backends (local disk, ``memory://``, S3 on moto) and a loopback
HTTP file server, shared by the storage, manifest and pipeline tests.

Import the fixtures into a test module to use them (``from tests.pipeline.roots import ...``).
"""

from __future__ import annotations

import contextlib
import http.server
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec
import pytest

from tests.tasks.builders import make_bucket

BACKENDS = ("local", "memory", "s3")


@dataclass(frozen=True)
class Root:
    """A fresh, empty location on one backend: its URI and the storage options to reach it."""

    backend: str
    uri: str
    options: dict[str, Any] = field(default_factory=dict)

    def join(self, *parts: str) -> str:
        """``uri/part/...``."""
        return "/".join([self.uri.rstrip("/"), *parts])


@pytest.fixture(params=BACKENDS)
def root(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Root]:
    """The same test on local disk, ``memory://`` and S3 (moto's server through s3fs)."""
    backend = request.param
    if backend == "local":
        yield Root("local", str(tmp_path / "root"))
    elif backend == "memory":
        prefix = f"memory://t-{uuid.uuid4().hex[:12]}"
        yield Root("memory", prefix)
        # memory:// is one store per process: remove this test's files so no case sees another's.
        memory = fsspec.filesystem("memory")
        with contextlib.suppress(FileNotFoundError):
            memory.rm(prefix, recursive=True)
    else:
        options = dict(request.getfixturevalue("s3_options"))
        # Users keep s3fs's instance cache on (the default); so do these tests, which also
        # proves the code invalidates cached listings where it must.
        options.pop("skip_instance_cache", None)
        yield Root("s3", f"s3://{make_bucket(options, prefix='pipe')}/root", options)


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves a directory; ``/forbidden/...`` answers 403; Range requests when enabled."""

    ranges = False

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output quiet

    def send_head(self) -> Any:
        if self.path.startswith("/forbidden"):
            self.send_error(403, "Forbidden")
            return None
        return super().send_head()

    def do_GET(self) -> None:
        header = self.headers.get("Range")
        if not (self.ranges and header and header.startswith("bytes=")):
            super().do_GET()
            return
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        first, _, last = header[len("bytes=") :].partition("-")
        start = int(first)
        stop = min(int(last) + 1 if last else len(data), len(data))
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{len(data)}")
        self.send_header("Content-Length", str(stop - start))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self.wfile.write(data[start:stop])


@contextlib.contextmanager
def serve_directory(directory: Path, *, ranges: bool) -> Iterator[str]:
    """Serve ``directory`` over HTTP on 127.0.0.1 (an ephemeral port); yield the base URL."""
    handler = type(
        "Handler",
        (_Handler,),
        {"ranges": ranges, "__init__": _bind_directory(str(directory))},
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _bind_directory(directory: str) -> Any:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        http.server.SimpleHTTPRequestHandler.__init__(self, *args, directory=directory, **kwargs)

    return __init__

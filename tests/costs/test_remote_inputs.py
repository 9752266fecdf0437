"""Inputs already remote: Runware image UUIDs are sent as they are, public URLs are passed through
without the pipeline downloading them, and private inputs are uploaded once (``imageUpload``)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from prefect_flux_erase.emulator import EmulatorServer
from prefect_flux_erase.run import EraseOptions
from tests.costs.common import config_for, erase, jpeg, manifest_of, mask, results, write_rows


class ImageHost:
    """A tiny HTTP server on loopback serving images, recording every request it gets."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[dict[str, Any]] = []
        host = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self, body: bool) -> None:
                data = host.files.get(self.path)
                wanted = self.headers.get("Range")
                host.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "range": wanted,
                        "agent": self.headers.get("User-Agent", ""),
                    }
                )
                if data is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                status, chunk = 200, data
                if wanted and wanted.startswith("bytes="):
                    start, _, stop = wanted[6:].partition("-")
                    first = int(start or 0)
                    last = min(int(stop) if stop else len(data) - 1, len(data) - 1)
                    status, chunk = 206, data[first : last + 1]
                    self.send_response(status)
                    self.send_header("Content-Range", f"bytes {first}-{last}/{len(data)}")
                else:
                    self.send_response(status)
                self.send_header("Content-Length", str(len(chunk)))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                if body:
                    self.wfile.write(chunk)

            def do_GET(self) -> None:
                self._serve(True)

            def do_HEAD(self) -> None:
                self._serve(False)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.hostport = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://{self.hostport}{path}"

    def whole_gets(self, path: str) -> list[dict[str, Any]]:
        """GETs of ``path`` that asked for the whole file (no Range header)."""
        return [
            r
            for r in self.requests
            if r["path"] == path and r["method"] == "GET" and not r["range"]
        ]


@pytest.fixture
def image_host() -> Iterator[ImageHost]:
    host = ImageHost()
    try:
        yield host
    finally:
        host.server.shutdown()
        host.server.server_close()


def _uploaded(emu: EmulatorServer, data: bytes) -> str:
    async def upload() -> str:
        async with config_for(emu).open_client() as client:
            return await client.upload_image(data)

    return asyncio.run(upload())


def test_rows_given_as_runware_image_uuids_are_sent_as_they_are(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    image_uuid = _uploaded(emu, jpeg(1, (300, 260)))
    mask_uuid = _uploaded(emu, mask((300, 260)))
    rows = [{"row_key": "uuid-row", "image_uri": image_uuid, "mask_uri": mask_uuid}]

    summary = erase(manifest_of(tmp_path, rows), f"{tmp_path}/out", emu)

    assert summary.succeeded == 1, summary.failures
    assert emu.stats()["results_billed"] == 1
    [row] = results(f"{tmp_path}/out")
    assert row["status"] == "succeeded"
    assert row["output_uri"]


def test_https_urls_are_passed_through_not_downloaded_by_the_pipeline(
    tmp_path: Path, emu: EmulatorServer, image_host: ImageHost
) -> None:
    image_host.files["/a.jpg"] = jpeg(3, (320, 300))
    image_host.files["/a-mask.png"] = mask((320, 300))
    rows = [
        {
            "row_key": "url-row",
            "image_uri": image_host.url("/a.jpg"),
            "mask_uri": image_host.url("/a-mask.png"),
        }
    ]

    summary = erase(
        manifest_of(tmp_path, rows),
        f"{tmp_path}/out",
        emu,
        pass_urls=True,
        # Loopback is never passed to a remote API by default: this test allows its own host.
        allow_private_hosts=(image_host.hostport,),
    )

    assert summary.succeeded == 1, summary.failures
    # The emulator fetched both files (httpx, the whole file); the pipeline never did.
    for path in ("/a.jpg", "/a-mask.png"):
        gets = image_host.whole_gets(path)
        assert gets, image_host.requests
        assert all(r["agent"].startswith("python-httpx") for r in gets), gets
    assert emu.stats()["results_billed"] == 1


def test_a_loopback_url_is_not_passed_through_without_an_allowance(
    tmp_path: Path, emu: EmulatorServer, image_host: ImageHost
) -> None:
    image_host.files["/b.jpg"] = jpeg(4, (300, 300))
    image_host.files["/b-mask.png"] = mask((300, 300))
    rows = [
        {
            "row_key": "b",
            "image_uri": image_host.url("/b.jpg"),
            "mask_uri": image_host.url("/b-mask.png"),
        }
    ]

    summary = erase(manifest_of(tmp_path, rows), f"{tmp_path}/out", emu, pass_urls=True)

    assert summary.succeeded == 1, summary.failures
    # Sent inline instead: the pipeline read the file, the emulator never asked the host.
    assert not any(r["agent"].startswith("python-httpx") for r in image_host.requests)


def test_private_inputs_are_uploaded_once_and_reused_across_results_and_attempts(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    # Three rows, one shared mask file content: four distinct inputs in all.
    rows = write_rows(tmp_path, [0, 1, 2])
    # The first five POSTs are the four uploads (untouched by this fault) and the submission,
    # whose tasks all end timeoutProvider: every row gets a second attempt.
    emu.script_faults(["timeout_provider"] * 5)

    summary = erase(
        manifest_of(tmp_path, rows),
        f"{tmp_path}/out",
        emu,
        upload_inputs=True,
        options=EraseOptions(include_cost=True, number_results=2),
    )

    assert summary.succeeded == 3, summary.failures
    stats = emu.stats()
    assert stats["uploads"]["image_upload"] == 4
    assert stats["results_billed"] == 6
    assert {r["attempts"] for r in results(f"{tmp_path}/out")} == {2}
    assert stats["requests_by_task_type"]["imageUpload"] == 4

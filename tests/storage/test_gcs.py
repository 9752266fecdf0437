"""storage.py on gs://: gcsfs against a GCS emulator on loopback, and against a loopback server
that answers every request with one GCS error (403, 429, 503), for the faults the emulator
cannot produce."""

from __future__ import annotations

import contextlib
import errno
import http.server
import json
import re
import socket
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prefect_flux_erase import storage
from prefect_flux_erase.manifest import reader as manifest_reader
from prefect_flux_erase.manifest.plan import ManifestSpec, plan_manifest, read_shard
from prefect_flux_erase.storage import is_transient_fault
from prefect_flux_erase.storage.files import InputReadError
from tests.fixtures.builders import pair_sample_folders
from tests.fixtures.gcs import upload_route_methods

gcsfs = pytest.importorskip("gcsfs")

#: Over gcsfs's 5 MiB block: written as a resumable upload in several requests, not one.
BIG = 6 * 2**20 + 7


def _code(uri: object, options: dict[str, Any] | None, **kwargs: Any) -> InputReadError:
    with pytest.raises(InputReadError) as info:
        storage.read_bytes(uri, options, **kwargs)
    return info.value


def _crash_mid_write(uri: str, options: dict[str, Any], size: int) -> None:
    with storage.atomic_writer(uri, options) as f:
        f.write(b"x" * size)
        raise RuntimeError("crash mid-write")


# --------------------------------------------------------------------------- the emulator


def test_write_read_exists_round_trip(gcs_options: dict[str, Any], gcs_bucket: str) -> None:
    uri = f"gs://{gcs_bucket}/deep/er/a.bin"
    assert not storage.exists(uri, gcs_options)
    storage.write_bytes(uri, b"\x00payload", gcs_options)
    assert storage.exists(uri, gcs_options)
    assert storage.exists(f"gs://{gcs_bucket}/deep", gcs_options)  # a prefix is a directory
    assert storage.read_bytes(uri, gcs_options) == b"\x00payload"
    storage.write_bytes(uri, b"second", gcs_options)
    assert storage.read_bytes(uri, gcs_options) == b"second"


def test_listing_sees_what_was_written(gcs_options: dict[str, Any], gcs_bucket: str) -> None:
    for name in ("b.png", "a.png", "sub/c.png"):
        storage.write_bytes(f"gs://{gcs_bucket}/in/{name}", name.encode(), gcs_options)
    fs, path = storage.resolve(f"gs://{gcs_bucket}/in", gcs_options)
    entries = fs.ls(path, detail=True, refresh=True)
    assert sorted((e["name"].rsplit("/", 1)[-1], e["type"]) for e in entries) == [
        ("a.png", "file"),
        ("b.png", "file"),
        ("sub", "directory"),
    ]
    assert sorted(fs.find(path)) == [
        f"{gcs_bucket}/in/a.png",
        f"{gcs_bucket}/in/b.png",
        f"{gcs_bucket}/in/sub/c.png",
    ]


def test_exists_sees_an_object_another_client_wrote_after_a_cached_listing(
    gcs_options: dict[str, Any], gcs_bucket: str
) -> None:
    uri = f"gs://{gcs_bucket}/parts/shard-00001.parquet"
    storage.write_bytes(f"gs://{gcs_bucket}/parts/shard-00000.parquet", b"0", gcs_options)
    fs, path = storage.resolve(f"gs://{gcs_bucket}/parts", gcs_options)
    assert len(fs.ls(path)) == 1  # the listing is now in gcsfs's cache
    other = {**gcs_options, "skip_instance_cache": True}  # another worker's client
    storage.write_bytes(uri, b"1", other)
    assert storage.exists(uri, gcs_options)


def test_missing_object_and_missing_bucket_are_input_not_found(
    gcs_options: dict[str, Any], gcs_bucket: str
) -> None:
    for uri in (f"gs://{gcs_bucket}/nope.png", "gs://no-such-bucket-7c1d/nope.png"):
        error = _code(uri, gcs_options)
        assert error.code == "inputNotFound"
        assert error.message == f"{uri} does not exist"


def test_a_prefix_is_a_directory_not_an_empty_input(
    gcs_options: dict[str, Any], gcs_bucket: str
) -> None:
    storage.write_bytes(f"gs://{gcs_bucket}/dir/a.png", b"x", gcs_options)
    error = _code(f"gs://{gcs_bucket}/dir", gcs_options)
    assert error.code == "inputUnreadable"
    assert "is a directory" in error.message


def test_too_large_input_is_refused(gcs_options: dict[str, Any], gcs_bucket: str) -> None:
    uri = f"gs://{gcs_bucket}/big.bin"
    storage.write_bytes(uri, b"x" * 100, gcs_options)
    assert _code(uri, gcs_options, max_bytes=99).code == "inputTooLarge"
    assert storage.read_bytes(uri, gcs_options, max_bytes=100) == b"x" * 100


@pytest.mark.parametrize("size", [11, BIG], ids=["one-request", "resumable-upload"])
def test_atomic_writer_publishes_only_on_success(
    gcs_options: dict[str, Any], gcs_bucket: str, size: int
) -> None:
    uri = f"gs://{gcs_bucket}/res/results.bin"
    with pytest.raises(RuntimeError, match="crash mid-write"):
        _crash_mid_write(uri, gcs_options, size)
    assert not storage.exists(uri, gcs_options)
    with storage.atomic_writer(uri, gcs_options) as f:
        f.write(b"y" * size)
    assert storage.read_bytes(uri, gcs_options) == b"y" * size


@pytest.fixture
def no_gcsfs_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """gcsfs retries a failed request 5 times, sleeping 1+2+4+8+16 s: skip the sleeps only."""

    async def no_wait(_seconds: float) -> None:
        return None

    monkeypatch.setattr(gcsfs.retry, "asyncio", SimpleNamespace(sleep=no_wait))


@pytest.mark.usefixtures("no_gcsfs_backoff")
def test_a_failed_abort_does_not_hide_why_the_write_failed(
    gcs_options: dict[str, Any], gcs_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The emulator as shipped: DELETE on a resumable upload answers 501, so the abort fails.
    monkeypatch.delitem(upload_route_methods(), "DELETE")
    uri = f"gs://{gcs_bucket}/res/results.bin"
    with pytest.raises(RuntimeError, match="crash mid-write"):
        _crash_mid_write(uri, gcs_options, BIG)
    assert not storage.exists(uri, gcs_options)


def test_manifest_dataset_folder_and_pairing_on_gs(
    gcs_options: dict[str, Any], gcs_bucket: str
) -> None:
    root = f"gs://{gcs_bucket}/data"
    result = pair_sample_folders(root, gcs_options)
    assert result.rows == 2
    # Pipeline output and hidden files inside a dataset folder are not manifest parts.
    storage.write_bytes(f"{root}/ds/_parts/shard-00000.parquet", b"not a manifest", gcs_options)
    assert manifest_reader.list_manifest_files(f"{root}/ds", gcs_options) == [
        f"{root}/ds/part-0.parquet"
    ]
    spec = ManifestSpec(f"{root}/ds", storage_options=gcs_options)
    rows = read_shard(spec, plan_manifest(spec).shards[0])
    assert [(r.key, r.image_uri, r.mask_uri) for r in rows] == [
        ("cat", f"{root}/images/cat.png", f"{root}/masks/cat.png"),
        ("dog", f"{root}/images/dog.jpg", f"{root}/masks/dog_mask.png"),
    ]
    manifest_reader.close_cursors()


def test_a_manifest_glob_on_gs(gcs_options: dict[str, Any], gcs_bucket: str) -> None:
    for i in range(2):
        table = pa.table({"image_uri": [f"gs://x/{i}.png"], "mask_uri": [f"gs://x/{i}m.png"]})
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        storage.write_bytes(
            f"gs://{gcs_bucket}/m/part-{i}.parquet", sink.getvalue().to_pybytes(), gcs_options
        )
    storage.write_bytes(f"gs://{gcs_bucket}/m/notes.txt", b"-", gcs_options)
    assert manifest_reader.list_manifest_files(f"gs://{gcs_bucket}/m/*", gcs_options) == [
        f"gs://{gcs_bucket}/m/part-0.parquet",
        f"gs://{gcs_bucket}/m/part-1.parquet",
    ]


# --------------------------------------------------------------------------- faults


class _AnswerWith(http.server.BaseHTTPRequestHandler):
    """Answers every request with ``status`` and the JSON error body GCS sends with it."""

    status = 503
    message = ""

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output quiet

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body = json.dumps(
            {"error": {"code": self.status, "message": self.message, "errors": []}}
        ).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _answer


@contextlib.contextmanager
def gcs_answering(status: int, message: str) -> Iterator[dict[str, Any]]:
    """A loopback server answering ``status`` to everything; yield gcsfs options for it."""
    handler = type("Handler", (_AnswerWith,), {"status": status, "message": message})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"endpoint_url": f"http://127.0.0.1:{server.server_address[1]}", "token": "anon"}
    finally:
        server.shutdown()
        server.server_close()


DENIED = (
    "anonymous caller does not have storage.objects.get access to the Google Cloud Storage "
    "object. Permission 'storage.objects.get' denied on resource (or it may not exist)."
)


def test_access_denied_is_permission_denied_and_never_retried() -> None:
    with gcs_answering(403, DENIED) as options:
        error = _code("gs://bucket/secret/a.png", options)
        with pytest.raises(OSError, match=r"^Forbidden: ") as write:
            storage.write_bytes("gs://bucket/out/a.png", b"x", options)
    assert error.code == "inputPermissionDenied"
    assert "gs://bucket/secret/a.png" in error.message
    assert storage.http_status(write.value) == 403
    assert not is_transient_fault(write.value)


@pytest.mark.usefixtures("no_gcsfs_backoff")
@pytest.mark.parametrize(
    ("status", "message"),
    [
        (429, "The object exceeded the rate limit for object mutation operations."),
        (503, "We encountered an internal error. Please try again."),
        # gcsfs does not retry a 425 itself; RFC 8470 says a client may: the stage does.
        (425, "Too Early."),
    ],
)
def test_a_throttled_or_failing_service_is_retried_once_gcsfs_gives_up(
    status: int, message: str
) -> None:
    # gcsfs raises its own HttpError here, not an OSError as s3fs does: the status decides.
    with (
        gcs_answering(status, message) as options,
        pytest.raises(gcsfs.retry.HttpError, match=re.escape(message)) as write,
    ):
        storage.write_bytes("gs://bucket/out/a.png", b"x", options)
    assert not isinstance(write.value, OSError)
    assert storage.http_status(write.value) == status
    assert is_transient_fault(write.value)


@pytest.mark.usefixtures("no_gcsfs_backoff")
def test_an_unreachable_endpoint_is_a_transient_os_error() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    options = {"endpoint_url": f"http://127.0.0.1:{port}", "token": "anon"}
    with pytest.raises(OSError, match=r"Cannot connect to host 127\.0\.0\.1") as write:
        storage.write_bytes("gs://bucket/out/a.png", b"x", options)
    assert write.value.errno == errno.ECONNREFUSED
    assert is_transient_fault(write.value)


def test_a_write_to_a_missing_bucket_is_permanent(gcs_options: dict[str, Any]) -> None:
    with pytest.raises(FileNotFoundError) as write:
        storage.write_bytes("gs://no-such-bucket-7c1d/out/a.png", b"x", gcs_options)
    assert not is_transient_fault(write.value)

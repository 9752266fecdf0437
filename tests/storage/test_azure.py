"""storage.py on az:// against Azurite (a real Azure Blob Storage server on loopback) via adlfs."""

from __future__ import annotations

import contextlib
import http.server
import io
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceRequestError

from prefect_flux_erase import storage
from prefect_flux_erase.manifest.reader import list_manifest_files
from prefect_flux_erase.storage import is_transient_fault
from prefect_flux_erase.storage.files import InputReadError
from prefect_flux_erase.tasks.stage_options import retry_if_transient
from prefect_flux_erase.tasks.stages import upload_erased
from tests.fixtures.azure import ACCOUNT_KEY, connection_string
from tests.fixtures.builders import pair_sample_folders


def _code(uri: str, options: dict[str, Any], **kwargs: Any) -> InputReadError:
    with pytest.raises(InputReadError) as info:
        storage.read_bytes(uri, options, **kwargs)
    return info.value


# --------------------------------------------------------------------------- read / write


def test_write_read_overwrite_and_exists(
    azure_options: dict[str, Any], azure_container: str
) -> None:
    uri = f"az://{azure_container}/deep/er/a.bin"

    assert not storage.exists(uri, azure_options)
    storage.write_bytes(uri, b"\x00payload", azure_options)
    assert storage.exists(uri, azure_options)
    assert storage.exists(f"az://{azure_container}/deep", azure_options)  # a name prefix
    assert storage.read_bytes(uri, azure_options) == b"\x00payload"
    storage.write_bytes(uri, b"second", azure_options)
    assert storage.read_bytes(uri, azure_options) == b"second"
    # abfs:// is the same filesystem, and the same object
    assert storage.read_bytes(f"abfs://{azure_container}/deep/er/a.bin", azure_options) == (
        b"second"
    )


def test_unicode_and_spaces_in_names_round_trip(
    azure_options: dict[str, Any], azure_container: str
) -> None:
    uri = storage.join(f"az://{azure_container}", "photos of été", "chat noir.png")

    storage.write_bytes(uri, b"\x89PNG", azure_options)

    assert storage.read_bytes(uri, azure_options) == b"\x89PNG"


def test_listing_sees_writes_at_once(azure_options: dict[str, Any], azure_container: str) -> None:
    root = f"az://{azure_container}/listing"
    fs, path = storage.resolve(root, azure_options)
    storage.write_bytes(f"{root}/a.bin", b"a", azure_options)
    assert fs.ls(path, detail=False) == [f"{azure_container}/listing/a.bin"]

    # A second write after a listing: `exists` bypasses the cached listing, so it is seen.
    storage.write_bytes(f"{root}/sub/b.bin", b"b", azure_options)

    assert storage.exists(f"{root}/sub/b.bin", azure_options)
    fs.invalidate_cache(path)
    assert sorted(fs.ls(path, detail=False)) == [
        f"{azure_container}/listing/a.bin",
        f"{azure_container}/listing/sub",
    ]
    assert fs.find(path) == [
        f"{azure_container}/listing/a.bin",
        f"{azure_container}/listing/sub/b.bin",
    ]


def test_a_manifest_folder_lists_its_parquet_files_as_az_uris(
    azure_options: dict[str, Any], azure_container: str
) -> None:
    root = f"az://{azure_container}/dataset"
    buf = io.BytesIO()
    pq.write_table(pa.table({"x": [1]}), buf)
    for name in ("part-1.parquet", "sub/part-2.parquet", "_parts/shard-00000.parquet"):
        storage.write_bytes(f"{root}/{name}", buf.getvalue(), azure_options)
    storage.write_bytes(f"{root}/notes.txt", b"not parquet", azure_options)

    files = list_manifest_files(root, azure_options)

    assert files == [
        f"az://{azure_container}/dataset/part-1.parquet",  # named as given, not as abfs://
        f"az://{azure_container}/dataset/sub/part-2.parquet",
    ]
    assert list_manifest_files(f"{root}/*.parquet", azure_options) == files[:1]


def test_pairing_an_az_folder_names_images_and_masks_as_az_uris(
    azure_options: dict[str, Any], azure_container: str
) -> None:
    root = f"az://{azure_container}/pairs"

    result = pair_sample_folders(root, azure_options)

    assert result.rows == 2
    table = pq.read_table(
        io.BytesIO(storage.read_bytes(f"{root}/ds/part-0.parquet", azure_options))
    )
    assert table.column("image_uri").to_pylist() == [  # named as given, not as abfs://
        f"{root}/images/cat.png",
        f"{root}/images/dog.jpg",
    ]
    assert table.column("mask_uri").to_pylist() == [
        f"{root}/masks/cat.png",
        f"{root}/masks/dog_mask.png",
    ]


def test_atomic_writer_publishes_only_on_success_and_leaves_no_temporary_object(
    azure_options: dict[str, Any], azure_container: str
) -> None:
    uri = f"az://{azure_container}/res/results.bin"
    fs, _ = storage.resolve(uri, azure_options)

    with pytest.raises(RuntimeError, match="crash"):
        _write_then_crash(uri, azure_options)

    assert not storage.exists(uri, azure_options)
    with storage.atomic_writer(uri, azure_options) as f:
        f.write(b"complete")
    assert storage.read_bytes(uri, azure_options) == b"complete"
    fs.invalidate_cache()
    assert fs.find(azure_container) == [f"{azure_container}/res/results.bin"]


def _write_then_crash(uri: str, options: dict[str, Any]) -> None:
    with storage.atomic_writer(uri, options) as f:
        f.write(b"partial")
        raise RuntimeError("crash mid-write")


# --------------------------------------------------------------------------- read errors


def test_missing_object_or_container_is_input_not_found_naming_the_uri(
    azure_options: dict[str, Any], azure_container: str
) -> None:
    missing_object = f"az://{azure_container}/nope.png"
    missing_container = "az://no-such-container/nope.png"

    for uri in (missing_object, missing_container):
        error = _code(uri, azure_options)
        assert error.code == "inputNotFound"  # the code local files, memory:// and S3 give
        assert error.message == f"{uri} does not exist"


def test_a_wrong_account_key_is_permission_denied(
    azurite: str, azure_options: dict[str, Any], azure_container: str
) -> None:
    uri = f"az://{azure_container}/a.png"
    storage.write_bytes(uri, b"x", azure_options)
    wrong_key = "A" * 86 + "=="
    wrong = {"connection_string": connection_string(azurite).replace(ACCOUNT_KEY, wrong_key)}

    error = _code(uri, wrong)

    assert error.code == "inputPermissionDenied"
    assert uri in error.message
    assert "AuthorizationFailure" in error.message
    assert ACCOUNT_KEY not in error.message
    assert wrong_key not in error.message


def test_too_large_input_is_refused(azure_options: dict[str, Any], azure_container: str) -> None:
    uri = f"az://{azure_container}/big.bin"
    storage.write_bytes(uri, b"x" * 100, azure_options)

    assert _code(uri, azure_options, max_bytes=99).code == "inputTooLarge"
    assert storage.read_bytes(uri, azure_options, max_bytes=100) == b"x" * 100


def test_a_directory_is_unreadable_saying_so(
    azure_options: dict[str, Any], azure_container: str
) -> None:
    storage.write_bytes(f"az://{azure_container}/photos/a.png", b"x", azure_options)

    error = _code(f"az://{azure_container}/photos", azure_options)

    # adlfs used to fail here with "TypeError: unsupported operand type(s)"
    assert error.code == "inputUnreadable"
    assert error.message == f"az://{azure_container}/photos is a directory, not a file"


# --------------------------------------------------------------------------- stage retries


def _fast_failing(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` whose filesystem gives up at the first failure instead of the Azure SDK's
    default 3 retries 15-24 s apart (about a minute per call; adlfs has no option for them).

    The filesystem that ``storage`` resolves from these options is fsspec's cached instance, so
    its client is swapped for one made by the SDK itself with ``retry_total=0``.
    """
    from azure.storage.blob.aio import BlobServiceClient

    fs, _ = storage.resolve("az://any", options)
    fs.service_client = BlobServiceClient.from_connection_string(
        options["connection_string"], retry_total=0
    )
    assert storage.resolve("az://any", options)[0] is fs
    return options


class _BusyHandler(http.server.BaseHTTPRequestHandler):
    """Answers every request the way a throttled storage account does (503 ServerBusy), or
    with another ``status`` and error code."""

    requests: list[str]
    status = 503
    error = "ServerBusy"

    def _busy(self) -> None:
        self.requests.append(self.command)
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = (
            f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{self.error}</Code>'
            "<Message>The server is busy.</Message></Error>"
        ).encode()
        self.send_response(self.status)
        self.send_header("x-ms-error-code", self.error)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _busy

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def _busy_account(status: int = 503, error: str = "ServerBusy") -> Iterator[tuple[str, list[str]]]:
    """A loopback server that answers ``status`` (503 ServerBusy) to everything; yields its
    endpoint and the methods it received."""
    requests: list[str] = []
    handler = type(
        "Busy", (_BusyHandler,), {"requests": requests, "status": status, "error": error}
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()


def _stage_would_retry(exc: BaseException) -> bool:
    from prefect.states import Failed

    state = Failed(data=exc)
    return is_transient_fault(exc) and retry_if_transient(upload_erased, None, state)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (503, "ServerBusy"),
        # "Too Early": retried by the same rule as the API's 425 (RFC 8470 says retry it).
        (425, "TooEarly"),
    ],
)
def test_a_throttled_account_fails_writes_with_faults_a_stage_retries(
    status: int, error: str
) -> None:
    with _busy_account(status, error) as (endpoint, requests):
        options = _fast_failing({"connection_string": connection_string(endpoint)})

        # One PUT (write_bytes: parts, outputs, reports)...
        with pytest.raises(HttpResponseError) as put:
            storage.write_bytes("az://busy/_parts/shard-00000.parquet", b"x", options)
        # ...and a streamed write (atomic_writer: results.parquet), which adlfs wraps.
        with (
            pytest.raises(RuntimeError, match="Failed to upload block") as streamed,
            storage.atomic_writer("az://busy/results.parquet", options) as f,
        ):
            f.write(b"x")

    assert "PUT" in requests
    assert (put.value.status_code, put.value.error_code) == (status, error)
    assert _stage_would_retry(put.value)
    assert isinstance(streamed.value.__cause__, HttpResponseError)
    assert streamed.value.__cause__.status_code == status
    assert _stage_would_retry(streamed.value)


def test_an_unreachable_account_is_a_fault_a_stage_retries() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    options = _fast_failing({"connection_string": connection_string(f"http://127.0.0.1:{port}")})

    with pytest.raises(ServiceRequestError, match="Cannot connect to host") as caught:
        storage.write_bytes("az://gone/a.bin", b"x", options)

    assert _stage_would_retry(caught.value)


def test_a_missing_container_or_a_wrong_key_on_write_is_not_retried(
    azurite: str, azure_options: dict[str, Any], azure_container: str
) -> None:
    wrong = {"connection_string": connection_string(azurite).replace(ACCOUNT_KEY, "A" * 86 + "==")}

    with pytest.raises(ResourceNotFoundError) as no_container:
        storage.write_bytes("az://no-such-container/a.bin", b"x", azure_options)
    with pytest.raises(HttpResponseError) as denied:
        storage.write_bytes(f"az://{azure_container}/a.bin", b"x", wrong)

    assert no_container.value.error_code == "ContainerNotFound"
    assert (denied.value.status_code, denied.value.error_code) == (403, "AuthorizationFailure")
    assert not is_transient_fault(no_container.value)
    assert not is_transient_fault(denied.value)

"""storage.py on az:// against Azurite (a real Azure Blob Storage server on loopback) via adlfs."""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prefect_flux_erase import storage
from prefect_flux_erase.manifest_reader import list_manifest_files
from prefect_flux_erase.storage import InputReadError
from tests.fixtures.azure import ACCOUNT_KEY, connection_string


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

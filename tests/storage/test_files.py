"""storage.py on real backends: local disk, memory://, S3 (moto server) and loopback HTTP."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from prefect_flux_erase import storage
from prefect_flux_erase.storage.files import InputReadError
from tests.fixtures.builders import denying_get_object, make_bucket
from tests.fixtures.roots import Root, root, serve_directory

__all__ = ["root"]


def _code(uri: object, options: dict[str, Any] | None = None, **kwargs: Any) -> InputReadError:
    with pytest.raises(InputReadError) as info:
        storage.read_bytes(uri, options, **kwargs)
    return info.value


# --------------------------------------------------------------------------- read / write


def test_write_then_read_round_trips_and_creates_parents(root: Root) -> None:
    uri = root.join("deep", "er", "a.bin")
    assert not storage.exists(uri, root.options)
    storage.write_bytes(uri, b"\x00payload", root.options)
    assert storage.exists(uri, root.options)
    assert storage.read_bytes(uri, root.options) == b"\x00payload"
    storage.write_bytes(uri, b"second", root.options)
    assert storage.read_bytes(uri, root.options) == b"second"


def test_missing_input_is_input_not_found_naming_the_uri(root: Root) -> None:
    uri = root.join("nope.png")
    error = _code(uri, root.options)
    assert error.code == "inputNotFound"
    assert uri in error.message or uri.split("://", 1)[-1] in error.message


def test_too_large_input_is_refused_on_every_backend(root: Root) -> None:
    uri = root.join("big.bin")
    storage.write_bytes(uri, b"x" * 100, root.options)
    assert _code(uri, root.options, max_bytes=99).code == "inputTooLarge"
    assert storage.read_bytes(uri, root.options, max_bytes=100) == b"x" * 100


@pytest.mark.parametrize("empty", [None, "", "   ", float("nan")])
def test_empty_cells_are_missing_uri(empty: object) -> None:
    assert _code(empty).code == "missingUri"


def test_non_string_uri_is_unreadable_with_the_type_named() -> None:
    error = _code(42)
    assert error.code == "inputUnreadable"
    assert "int" in error.message


def test_directory_is_unreadable_not_a_crash(tmp_path: Path) -> None:
    error = _code(str(tmp_path))
    assert error.code == "inputUnreadable"
    assert "directory" in error.message


def test_unknown_protocol_is_unreadable() -> None:
    error = _code("nosuchproto://bucket/a.png")
    assert error.code == "inputUnreadable"
    assert "nosuchproto://bucket/a.png" in error.message


def test_s3_access_denied_by_bucket_policy_is_permission_denied(
    s3_options: dict[str, Any],
) -> None:
    s3_bucket = make_bucket(s3_options)
    storage.write_bytes(f"s3://{s3_bucket}/secret/a.png", b"x", s3_options)
    with denying_get_object(s3_options, s3_bucket, "secret"):
        error = _code(f"s3://{s3_bucket}/secret/a.png", s3_options)
    assert error.code == "inputPermissionDenied"
    assert f"s3://{s3_bucket}/secret/a.png" in error.message


def test_http_inputs_read_and_map_status_codes(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"png-bytes")
    with serve_directory(tmp_path, ranges=False) as base:
        assert storage.read_bytes(f"{base}/a.png") == b"png-bytes"
        assert _code(f"{base}/missing.png").code == "inputNotFound"
        denied = _code(f"{base}/forbidden/a.png?X-Amz-Signature=topsecret&X-Amz-Expires=60")
    assert denied.code == "inputPermissionDenied"
    assert "topsecret" not in denied.message
    assert "X-Amz-Signature=REDACTED" in denied.message


def test_http_is_read_only() -> None:
    with pytest.raises(ValueError, match="read-only"):
        storage.write_bytes("https://example.com/a.png", b"x")


def _write_then_crash(uri: str, options: dict[str, Any]) -> None:
    with storage.atomic_writer(uri, options) as f:
        f.write(b"half")
        raise RuntimeError("crash mid-write")


def test_local_write_leaves_no_temp_file_and_old_content_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out" / "a.bin"
    storage.write_bytes(str(target), b"old")
    with pytest.raises(RuntimeError, match="crash"):
        _write_then_crash(str(target), {})
    assert target.read_bytes() == b"old"
    assert os.listdir(target.parent) == ["a.bin"]


def test_atomic_writer_publishes_only_on_success(root: Root) -> None:
    uri = root.join("res", "results.bin")
    with pytest.raises(RuntimeError, match="crash"):
        _write_then_crash(uri, root.options)
    assert not storage.exists(uri, root.options)
    with storage.atomic_writer(uri, root.options) as f:
        f.write(b"complete")
    assert storage.read_bytes(uri, root.options) == b"complete"


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_get_the_permissions_the_umask_gives(
    umask: int, mode: int, tmp_path: Path
) -> None:
    """Atomic writes go through a private temporary file; the result must not stay private."""
    previous = os.umask(umask)
    try:
        storage.write_bytes(f"{tmp_path}/a/whole.bin", b"x")
        with storage.atomic_writer(f"{tmp_path}/a/streamed.bin") as f:
            f.write(b"y")
    finally:
        os.umask(previous)

    for name in ("whole.bin", "streamed.bin"):
        assert (tmp_path / "a" / name).stat().st_mode & 0o777 == mode, name


# --------------------------------------------------------------------------- redaction


def test_read_errors_never_echo_signatures_or_passwords(tmp_path: Path) -> None:
    signed = "s3://no-such-bucket-xyz/a.png?X-Amz-Signature=abc123"
    error = _code(f"memory://{tmp_path.name}/a.png?X-Amz-Signature=abc123&token=t0k")
    assert error.code == "inputNotFound"
    assert "abc123" not in error.message
    assert "t0k" not in error.message
    assert storage.redact_url(signed).endswith("X-Amz-Signature=REDACTED")


# --------------------------------------------------------------------------- addressing


@pytest.mark.parametrize(
    ("root_uri", "parts", "expected"),
    [
        ("s3://b/out/", ("images", "a.jpg"), "s3://b/out/images/a.jpg"),
        ("s3://b", ("/x/", "y"), "s3://b/x/y"),
        ("memory://", ("a",), "memory://a"),
        ("/tmp/out", ("", "a"), "/tmp/out/a"),
        ("/", ("a",), "/a"),
        ("file:///data/", ("a b.png",), "file:///data/a b.png"),
    ],
)
def test_join_is_uri_aware(root_uri: str, parts: tuple[str, ...], expected: str) -> None:
    assert storage.join(root_uri, *parts) == expected


@pytest.mark.parametrize(
    ("uri", "public"),
    [
        ("https://images.example.com/a.png", True),
        ("http://8.8.8.8/a.png", True),
        ("http://127.0.0.1:9000/a.png", False),
        ("http://localhost/a.png", False),
        ("http://10.1.2.3/a.png", False),
        ("http://[::1]/a.png", False),
        ("http://printer.local/a.png", False),
        ("http://intranet/a.png", False),
        ("https://user:pw@images.example.com/a.png", False),
        ("s3://bucket/a.png", False),
        ("/data/a.png", False),
        (None, False),
    ],
)
def test_is_public_http(uri: object, public: bool) -> None:
    assert storage.is_public_http(uri) is public


# --------------------------------------------------------------------------- write guards

TRAVERSALS = [
    "../../etc/passwd",
    "/etc/passwd",
    "..\\..\\windows\\system32",
    "..",
    ".",
    ".hidden",
    "~root",
    "a/../../b",
    "C:\\x",
    "nul",
    "con.txt",
    "a\x00b",
    "line\nbreak",
    "rtl\u202etxt.exe",
    "s3://bucket/key",
    "what?#fragment%20",
    "",
    " ",
]


@pytest.mark.parametrize("key", TRAVERSALS)
def test_safe_key_never_leaves_its_directory(key: str, tmp_path: Path) -> None:
    stem = storage.safe_key(key)
    assert stem
    assert not set(stem) & set('/\\:*?"<>|#%[]{}')
    assert ".." not in stem
    assert not stem.startswith((".", "~", " "))
    assert all(ch.isprintable() for ch in stem)
    assert len(stem.encode()) <= storage.MAX_KEY_BYTES + 11
    root_dir = tmp_path / "out"
    target = storage.join(str(root_dir), "images", f"{stem}.jpg")
    assert storage.is_within(str(root_dir), target)
    storage.write_bytes(target, b"x")
    assert (root_dir / "images" / f"{stem}.jpg").read_bytes() == b"x"


@pytest.mark.parametrize("key", ["cat", "café au lait 01", "猫の写真", "img-0001_v2.final", "a b"])
def test_safe_key_keeps_readable_keys_unchanged(key: str) -> None:
    assert storage.safe_key(key) == key


def test_safe_key_keeps_distinct_keys_distinct() -> None:
    alike = ["a/b", "a\\b", "a:b", "a?b", "a_b", "a%b", "a\x00b"]
    stems = [storage.safe_key(k) for k in alike]
    assert len(set(stems)) == len(alike)
    assert storage.safe_key("a/b").startswith("a_b-")


def test_safe_key_truncates_long_keys_with_a_hash() -> None:
    long_a, long_b = "x" * 500 + "a", "x" * 500 + "b"
    stem_a, stem_b = storage.safe_key(long_a), storage.safe_key(long_b)
    assert stem_a != stem_b
    assert len(stem_a.encode()) <= storage.MAX_KEY_BYTES + 11
    multibyte = storage.safe_key("é" * 300)
    assert multibyte.encode("utf-8").decode("utf-8") == multibyte
    assert len(multibyte.encode()) <= storage.MAX_KEY_BYTES + 11


def test_safe_key_is_stable_across_calls() -> None:
    assert (
        storage.safe_key("../x")
        == storage.safe_key("../x")
        == "___x-" + storage.safe_key("../x").rsplit("-", 1)[1]
    )


@pytest.mark.parametrize(
    ("root_uri", "uri", "inside"),
    [
        ("s3://b/out", "s3://b/out/images/a.jpg", True),
        ("s3://b/out", "s3://b/out", True),
        ("s3://b/out/", "s3://b/out/x", True),
        ("s3://b/out", "s3://b/outside/a.jpg", False),
        ("s3://b/out", "s3://b/out/../secrets/a.jpg", False),
        ("s3://b/out", "s3://other/out/a.jpg", False),
        ("s3://b/out", "memory://b/out/a.jpg", False),
        ("s3://b/out", "s3://b/out/a\x00.jpg", False),
        ("memory://out", "memory://out/a", True),
        ("memory://out", "memory://out2/a", False),
        ("/data/out", "file:///data/out/a.jpg", True),
        ("/data/out", "/data/out/../../etc/passwd", False),
        ("/data/out", "/data/outer/a", False),
        ("s3://b/out", "nosuchproto://b/out/a", False),
    ],
)
def test_is_within(root_uri: str, uri: str, inside: bool) -> None:
    assert storage.is_within(root_uri, uri) is inside


def test_is_within_follows_local_symlinks(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "escape").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    assert not storage.is_within(str(out), str(out / "escape" / "a.jpg"))
    assert storage.is_within(str(out), str(out / "images" / "a.jpg"))

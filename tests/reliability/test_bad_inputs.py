"""A corpus of bad inputs mixed with good rows, on S3 (moto's server) and run for real.

Every bad row becomes a failed row with a stable code and a message saying what to fix, or,
when the input is valid once normalised (16-bit, CMYK, palette with transparency), a
succeeded one. Bad rows cost no API call, good rows all succeed, rows sharing a key never
share an output, and nothing is written outside the output root.

Decisions this test pins down:

- an all-black mask fails with ``emptyMask`` before any request: erasing nothing would be a
  billed no-op;
- an image under the model's 256 px minimum fails with ``imageTooSmall`` before any request;
- with duplicate row keys the first row (manifest order) is erased and each later one fails
  with ``duplicateRowKey``, so it can neither take the first row's result nor overwrite its
  output.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from prefect_flux_erase import storage
from prefect_flux_erase.emulator import EmulatorServer
from prefect_flux_erase.flows import erase_manifest
from tests.fixtures.builders import denying_get_object, make_bucket, s3_client
from tests.fixtures.corpus import SIDE, mask, photo, png_bomb, results, write_manifest
from tests.fixtures.jobs import FAST_POLL, FAST_RETRY, credentials_for

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

GOOD = 6


def _png(array: np.ndarray[Any, Any], mode: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode).save(buf, "PNG")
    return buf.getvalue()


def _sixteen_bit_png() -> bytes:
    ramp = (np.arange(SIDE * SIDE, dtype=np.uint32).reshape(SIDE, SIDE) * 3) % 65536
    buf = io.BytesIO()
    Image.fromarray(ramp.astype(np.uint16)).save(buf, "PNG")
    return buf.getvalue()


def _cmyk_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("CMYK", (SIDE, SIDE), (10, 200, 30, 5)).save(buf, "JPEG")
    return buf.getvalue()


def _palette_png_with_transparency() -> bytes:
    img = Image.new("P", (SIDE, SIDE))
    img.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 9))
    img.paste(1, (0, 0, SIDE, SIDE // 2))
    img.paste(2, (0, SIDE // 2, SIDE, SIDE))
    buf = io.BytesIO()
    img.save(buf, "PNG", transparency=0)
    return buf.getvalue()


@pytest.fixture
def denied_bucket(s3_options: dict[str, Any]) -> Iterator[str]:
    """A bucket whose policy denies GetObject under ``denied/`` (removed afterwards)."""
    bucket = make_bucket(s3_options)
    with denying_get_object(s3_options, bucket, "denied"):
        yield bucket


# (row key, image file or None, mask file or None, dilate_pixels, expected code or None, hint)
CASES: list[tuple[str, str | None, str | None, Any, str | None, str]] = [
    ("zero-byte", "in/empty.png", "in/mask.png", None, "emptyInput", "0 bytes"),
    ("truncated-png", "in/truncated.png", "in/mask.png", None, "invalidImage", "re-export"),
    ("html-page", "in/page.png", "in/mask.png", None, "invalidImage", "PNG, JPEG or WEBP"),
    ("text-file", "in/notes.jpg", "in/mask.png", None, "invalidImage", "PNG, JPEG or WEBP"),
    ("sixteen-bit", "in/16bit.png", "in/mask.png", None, None, ""),
    ("cmyk", "in/cmyk.jpg", "in/mask.png", None, None, ""),
    ("palette-alpha", "in/palette.png", "in/mask.png", None, None, ""),
    ("mask-size", "in/good-0.jpg", "in/small-mask.png", None, "invalidMaskDimensions",
     "exact size"),
    ("all-black-mask", "in/good-0.jpg", "in/black-mask.png", None, "emptyMask",
     "nothing to erase"),
    ("bomb", "in/bomb.png", "in/mask.png", None, "imageTooLarge", "downscale"),
    ("too-small", "in/tiny.jpg", "in/tiny-mask.png", None, "imageTooSmall", "upscale or pad"),
    ("missing", "in/does-not-exist.jpg", "in/mask.png", None, "inputNotFound", "does not exist"),
    ("denied", "denied/photo.jpg", "in/mask.png", None, "inputPermissionDenied",
     "bucket policy"),
    ("null-image", None, "in/mask.png", None, "missingInputsImage", "fill in"),
    ("null-mask", "in/good-1.jpg", None, None, "missingInputsMask", "fill in"),
    ("café photo 01 ✓", "in/une photo été.jpg", "in/une photo été-mask.png", None, None, ""),
    ("dup", "in/good-2.jpg", "in/mask.png", None, None, ""),
    ("dup", "in/good-3.jpg", "in/mask.png", None, "duplicateRowKey", "unique key"),
    ("../../../escaped", "in/good-1.jpg", "in/mask.png", None, "unsafeRowKey", "'..'"),
    ("dilate-99", "in/good-1.jpg", "in/mask.png", 99, "invalidOption", "0 to 50"),
    ("dilate-negative", "in/good-1.jpg", "in/mask.png", -3, "invalidOption", "0 to 50"),
    ("dilate-fraction", "in/good-1.jpg", "in/mask.png", 2.5, "invalidOption", "integer"),
    ("directory", "in/folder", "in/mask.png", None, "inputUnreadable", "a directory"),
]  # fmt: skip


def _files() -> dict[str, bytes]:
    good = {f"in/good-{i}.jpg": photo(100 + i) for i in range(GOOD)}
    whole = _png(np.asarray(Image.open(io.BytesIO(photo(7, fmt="PNG")))), "RGB")
    return {
        **good,
        "in/mask.png": mask(),
        "in/empty.png": b"",
        "in/truncated.png": whole[: len(whole) // 2],
        "in/page.png": b"<!DOCTYPE html><html><body><h1>404 Not Found</h1></body></html>",
        "in/notes.jpg": b"the photo of the red car goes here\n",
        "in/16bit.png": _sixteen_bit_png(),
        "in/cmyk.jpg": _cmyk_jpeg(),
        "in/palette.png": _palette_png_with_transparency(),
        "in/small-mask.png": mask((SIDE // 2, SIDE // 2)),
        "in/black-mask.png": mask(empty=True),
        "in/bomb.png": png_bomb(),
        "in/tiny.jpg": photo(9, (200, 200)),
        "in/tiny-mask.png": mask((200, 200)),
        "denied/photo.jpg": photo(11),
        "in/une photo été.jpg": photo(12),
        "in/une photo été-mask.png": mask(),
        "in/folder/inside.jpg": photo(13),
    }


def _local_files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_each_bad_input_fails_with_its_code_and_good_rows_succeed(
    tmp_path: Path, emu: EmulatorServer, s3_options: dict[str, Any], denied_bucket: str
) -> None:
    base = f"s3://{denied_bucket}"
    for name, data in _files().items():
        storage.write_bytes(f"{base}/{name}", data, s3_options)
    good = [
        {
            "row_key": f"good-{i}",
            "image_uri": f"{base}/in/good-{i}.jpg",
            "mask_uri": f"{base}/in/mask.png",
        }
        for i in range(GOOD)
    ]
    bad = [
        {
            "row_key": key,
            "image_uri": image and f"{base}/{image}",
            "mask_uri": mask_file and f"{base}/{mask_file}",
            "dilate_pixels": dilate,
        }
        for key, image, mask_file, dilate, _, _ in CASES
    ]
    rows = [row for pair in zip(good, bad[:GOOD], strict=True) for row in pair] + bad[GOOD:]
    manifest = write_manifest(f"{base}/manifest.parquet", rows, s3_options)
    objects_before = sorted(s3_client(s3_options).list_objects_v2(Bucket=denied_bucket)["Contents"],
                            key=lambda o: o["Key"])  # fmt: skip
    output = tmp_path / "run" / "out"
    local_before = _local_files(tmp_path)

    state = erase_manifest(
        manifest,
        str(output),
        backend="runware",
        credentials=credentials_for(emu.url),
        storage_options=s3_options,
        output_storage_options={},
        shard_size=7,
        max_failed_fraction=1.0,
        poll_policy=FAST_POLL,
        retry_policy=FAST_RETRY,
        return_state=True,
    )

    assert state.is_completed(), state.message
    got = results(str(output))
    assert [r["row_index"] for r in got] == list(range(len(rows)))
    assert len(got) == GOOD + len(CASES) >= GOOD + 15
    by_position = dict(enumerate(got))
    for i, row in enumerate(rows):
        result = by_position[i]
        assert result["row_key"] == row["row_key"]
    expected = {i: next(c for c in CASES if c[0] == r["row_key"]) for i, r in enumerate(rows)
                if not r["row_key"].startswith("good-")}  # fmt: skip
    # The second "dup" row is the failing one: the first row with the key is erased.
    dup_positions = [i for i, r in enumerate(rows) if r["row_key"] == "dup"]
    expected[dup_positions[0]] = CASES[[c[0] for c in CASES].index("dup")]
    expected[dup_positions[1]] = CASES[[c[0] for c in CASES].index("dup") + 1]
    succeeded = 0
    for i, result in by_position.items():
        if i not in expected:  # a good row
            assert (result["status"], result["error_code"]) == ("succeeded", None), result
            succeeded += 1
            continue
        key, _, _, _, code, hint = expected[i]
        if code is None:
            assert result["status"] == "succeeded", (key, result["error_message"])
            assert result["output_uri"]
            assert Path(result["output_uri"][0]).exists()
            succeeded += 1
        else:
            assert (key, result["status"], result["error_code"]) == (key, "failed", code)
            assert hint in result["error_message"], (key, result["error_message"])
            assert result["output_uri"] == []
    # Bad rows cost nothing: the only inference tasks sent were those of the rows that succeeded.
    emu.wait_idle()
    stats = emu.stats()
    # Only succeeded rows were sent (at most once each), and each distinct content was billed
    # once: a row whose image and mask repeat an earlier row's shares its paid result.
    paid = [r for r in got if r["status"] == "succeeded" and r["shared_with"] is None]
    assert stats["requests_by_task_type"]["imageInference"] <= succeeded
    assert stats["results_billed"] == len(paid)
    # Rows sharing a key do not share an output: one image for "dup", from the first row.
    first_dup, second_dup = (by_position[i] for i in dup_positions)
    assert first_dup["status"] == "succeeded"
    assert second_dup["output_uri"] == []
    dup_outputs = [p for p in (output / "images").iterdir() if p.name.startswith("dup")]
    assert [p.name for p in dup_outputs] == ["dup.jpg"]
    assert "café photo 01 ✓.jpg" in {p.name for p in (output / "images").iterdir()}
    # Nothing was written outside the output root, locally or in the bucket.
    written = _local_files(tmp_path) - local_before
    assert written
    assert all(output in p.parents for p in written), sorted(written)[:5]
    objects_after = s3_client(s3_options).list_objects_v2(Bucket=denied_bucket)["Contents"]
    assert sorted(objects_after, key=lambda o: o["Key"]) == objects_before

"""Small real inputs for stage and flow tests: photos, masks and Parquet manifests on any URI."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from prefect_flux_erase import storage
from prefect_flux_erase.pipeline.pairing import PairingResult, build_manifest

SIZE = (256, 256)  # the emulator's minimum side


def photo_bytes(seed: int, size: tuple[int, int] = SIZE, fmt: str = "PNG") -> bytes:
    """A textured RGB image (deterministic per seed)."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([(xx * 255) // w, (yy * 255) // h, ((xx + yy) * 127) // (w + h)], axis=-1)
    noise = rng.integers(0, 30, size=(h, w, 3))
    arr = np.clip(base + noise, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, fmt)
    return buf.getvalue()


def mask_bytes(size: tuple[int, int] = SIZE) -> bytes:
    """A binary mask with a white square in the middle."""
    w, h = size
    arr = np.zeros((h, w), np.uint8)
    arr[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3] = 255
    buf = io.BytesIO()
    Image.fromarray(arr, "L").save(buf, "PNG")
    return buf.getvalue()


def write_inputs(root: str, n: int, so: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Write ``n`` good photo/mask pairs under ``root`` and return their manifest rows."""
    rows = []
    mask = mask_bytes()
    for i in range(n):
        image_uri = storage.join(root, "in", f"img{i:03d}.png")
        mask_uri = storage.join(root, "in", f"img{i:03d}-mask.png")
        storage.write_bytes(image_uri, photo_bytes(i), so)
        storage.write_bytes(mask_uri, mask, so)
        rows.append({"row_key": f"img{i:03d}", "image_uri": image_uri, "mask_uri": mask_uri})
    return rows


#: The error code each row of ``write_bad_inputs`` is keyed by and fails with, all but the last
#: row: its key ``../../escape`` fails with ``unsafeRowKey``.
BAD_INPUT_CODES = (
    "inputNotFound",
    "invalidImage",
    "invalidMaskDimensions",
    "missingInputsImage",
    "invalidOption",
)


def write_bad_inputs(root: str, so: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """One row per kind of bad input, keyed by the error code it must produce."""
    junk = storage.join(root, "in", "junk.png")
    storage.write_bytes(junk, b"this is not an image", so)
    small_mask = storage.join(root, "in", "small-mask.png")
    storage.write_bytes(small_mask, mask_bytes((128, 128)), so)
    photo = storage.join(root, "in", "bad-photo.png")
    storage.write_bytes(photo, photo_bytes(99), so)
    good_mask = storage.join(root, "in", "bad-photo-mask.png")
    storage.write_bytes(good_mask, mask_bytes(), so)
    missing = storage.join(root, "in", "does-not-exist.png")
    return [
        {"row_key": "inputNotFound", "image_uri": missing, "mask_uri": good_mask},
        {"row_key": "invalidImage", "image_uri": junk, "mask_uri": good_mask},
        {"row_key": "invalidMaskDimensions", "image_uri": photo, "mask_uri": small_mask},
        {"row_key": "missingInputsImage", "image_uri": None, "mask_uri": good_mask},
        {
            "row_key": "invalidOption",
            "image_uri": photo,
            "mask_uri": good_mask,
            "dilate_pixels": 99,
        },
        {"row_key": "../../escape", "image_uri": photo, "mask_uri": good_mask},
    ]


def write_manifest(
    uri: str, rows: list[dict[str, Any]], so: Mapping[str, Any] | None = None, **extra: list[Any]
) -> str:
    """Write rows (image_uri, mask_uri, row_key, optional dilate_pixels) as a Parquet manifest."""
    columns: dict[str, Any] = {
        "image_uri": pa.array([r.get("image_uri") for r in rows], pa.string()),
        "mask_uri": pa.array([r.get("mask_uri") for r in rows], pa.string()),
        "row_key": pa.array([r["row_key"] for r in rows], pa.string()),
        "dilate_pixels": pa.array([r.get("dilate_pixels") for r in rows], pa.int64()),
        "note": pa.array([f"note-{i}" for i in range(len(rows))], pa.string()),
    }
    columns.update(extra)
    buf = io.BytesIO()
    pq.write_table(pa.table(columns), buf)
    storage.write_bytes(uri, buf.getvalue(), so)
    return uri


def s3_client(s3_options: Mapping[str, Any]) -> Any:
    """A boto3 client for the moto server behind ``s3_options``."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=s3_options["client_kwargs"]["endpoint_url"],
        aws_access_key_id=s3_options["key"],
        aws_secret_access_key=s3_options["secret"],
        region_name="us-east-1",
    )


def make_bucket(s3_options: Mapping[str, Any], prefix: str = "flows") -> str:
    """A fresh bucket on the moto server behind ``s3_options``; its name starts ``prefix-``.

    Through boto3: s3fs's ``mkdir`` sends a us-east-1 LocationConstraint, which S3 (and moto)
    reject, so the shared ``s3_bucket`` fixture cannot create buckets with these options.
    """
    import uuid

    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    s3_client(s3_options).create_bucket(Bucket=name)
    return name


@contextlib.contextmanager
def denying_get_object(s3_options: Mapping[str, Any], bucket: str, prefix: str) -> Iterator[None]:
    """While the block runs, a bucket policy on the moto server denies GetObject under
    ``bucket/prefix/``; the policy is deleted afterwards."""
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/{prefix}/*",
            }
        ],
    }
    client = s3_client(s3_options)
    client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    try:
        yield
    finally:
        client.delete_bucket_policy(Bucket=bucket)


def pair_sample_folders(root: str, options: Mapping[str, Any] | None) -> PairingResult:
    """Write two images and their masks under ``root`` (``cat`` paired by the same stem, ``dog``
    by a ``_mask`` suffix) and pair ``images/`` with ``masks/`` into ``ds/part-0.parquet``."""
    for name in ("images/cat.png", "images/dog.jpg", "masks/cat.png", "masks/dog_mask.png"):
        storage.write_bytes(f"{root}/{name}", b"...", options)
    return build_manifest(f"{root}/images", f"{root}/masks", f"{root}/ds/part-0.parquet", options)

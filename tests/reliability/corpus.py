"""Inputs and checks shared by the reliability tests: small photos, manifests, results, ledger."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from prefect_flux_erase import storage

SIDE = 256  # the model's minimum: the smallest valid input


def photo(seed: int, size: tuple[int, int] = (SIDE, SIDE), fmt: str = "JPEG") -> bytes:
    """A small textured photo (deterministic per seed)."""
    w, h = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) * 127 // (w + h)], axis=-1)
    rgb = np.clip(base + rng.integers(0, 12, size=(h, w, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return buf.getvalue()


def mask(size: tuple[int, int] = (SIDE, SIDE), *, empty: bool = False) -> bytes:
    """A binary PNG mask: a white square in the middle (or all black)."""
    w, h = size
    arr = np.zeros((h, w), np.uint8)
    if not empty:
        arr[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3] = 255
    buf = io.BytesIO()
    Image.fromarray(arr, "L").save(buf, "PNG")
    return buf.getvalue()


def shared_pairs(root: str, distinct: int = 4) -> list[tuple[str, str]]:
    """Write ``distinct`` photo/mask pairs under ``root/in``; many rows may share them."""
    pairs = []
    for i in range(distinct):
        image, mask_uri = f"{root}/in/photo-{i}.jpg", f"{root}/in/photo-{i}-mask.png"
        storage.write_bytes(image, photo(i))
        storage.write_bytes(mask_uri, mask())
        pairs.append((image, mask_uri))
    return pairs


def write_manifest(
    uri: str,
    rows: Sequence[Mapping[str, Any]],
    options: Mapping[str, Any] | None = None,
) -> str:
    """A Parquet manifest: ``image_uri``, ``mask_uri``, ``row_key``, ``dilate_pixels``."""
    table = pa.table(
        {
            "image_uri": pa.array([r.get("image_uri") for r in rows], pa.string()),
            "mask_uri": pa.array([r.get("mask_uri") for r in rows], pa.string()),
            "row_key": pa.array([r.get("row_key") for r in rows], pa.string()),
            "dilate_pixels": pa.array([r.get("dilate_pixels") for r in rows], pa.float64()),
        }
    )
    buf = io.BytesIO()
    pq.write_table(table, buf)
    storage.write_bytes(uri, buf.getvalue(), options)
    return uri


def cycled_rows(pairs: Sequence[tuple[str, str]], n: int) -> list[dict[str, Any]]:
    """``n`` good rows cycling over ``pairs``, keyed ``row-00000``…"""
    return [
        {
            "image_uri": pairs[i % len(pairs)][0],
            "mask_uri": pairs[i % len(pairs)][1],
            "row_key": f"row-{i:05d}",
        }
        for i in range(n)
    ]


def results(output: str) -> list[dict[str, Any]]:
    """Every row of ``{output}/results.parquet``."""
    return pq.read_table(str(Path(output) / "results.parquet")).to_pylist()


def assert_each_result_charged_once(billed: Mapping[str, Any], rows: Sequence[Any]) -> None:
    """The ledger bills exactly the results' task UUIDs, each exactly once."""
    uuids = [r["task_uuid"] for r in rows]
    assert len(set(uuids)) == len(uuids), "two rows share a task UUID"
    counts = {uuid: entry["count"] for uuid, entry in billed.items()}
    assert {c for c in counts.values()} <= {1}, {u: c for u, c in counts.items() if c != 1}
    extra = sorted(set(counts) - set(uuids))
    missing = sorted(set(uuids) - set(counts))
    assert not extra, f"{len(extra)} charged tasks are no row's result (charged twice): {extra[:3]}"
    assert not missing, f"{len(missing)} results were never charged: {missing[:3]}"

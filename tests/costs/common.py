"""Inputs and a run helper for the money tests: photos of any size, manifests, emulator runs."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from prefect_flux_erase import storage
from prefect_flux_erase.emulator import EmulatorServer
from prefect_flux_erase.run import RunwareConfig, run_manifest
from tests.fixtures.builders import write_manifest
from tests.fixtures.jobs import FAST_POLL, FAST_RETRY, TEST_KEY


def jpeg(seed: int, size: tuple[int, int]) -> bytes:
    """A small-on-disk JPEG photo of ``size`` (deterministic per seed)."""
    rng = np.random.default_rng(seed)
    w, h = size
    colour = rng.integers(0, 255, size=3)
    arr = np.zeros((h, w, 3), np.uint8) + colour.astype(np.uint8)
    arr[: h // 2, : w // 2] = 255 - arr[: h // 2, : w // 2]
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, "JPEG", quality=70)
    return buf.getvalue()


def mask(size: tuple[int, int]) -> bytes:
    """A binary PNG mask of ``size`` with a white square in the middle."""
    w, h = size
    arr = np.zeros((h, w), np.uint8)
    arr[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3] = 255
    buf = io.BytesIO()
    Image.fromarray(arr, "L").save(buf, "PNG")
    return buf.getvalue()


def write_rows(
    root: str | Path, contents: Sequence[int], sizes: Sequence[tuple[int, int]] | None = None
) -> list[dict[str, Any]]:
    """One row per entry of ``contents``: its own image and mask *files* whose bytes depend only
    on the entry (equal entries, equal bytes, different URIs). ``sizes[i]`` sizes content i."""
    rows = []
    for i, content in enumerate(contents):
        size = sizes[content] if sizes is not None else (256, 256)
        image_uri = f"{root}/in/img{i:05d}.jpg"
        mask_uri = f"{root}/in/img{i:05d}-mask.png"
        storage.write_bytes(image_uri, jpeg(content, size))
        storage.write_bytes(mask_uri, mask(size))
        rows.append({"row_key": f"row{i:05d}", "image_uri": image_uri, "mask_uri": mask_uri})
    return rows


def manifest_of(root: str | Path, rows: list[dict[str, Any]], name: str = "m.parquet") -> str:
    """The rows written as a Parquet manifest under ``root``."""
    return write_manifest(f"{root}/{name}", rows)


def config_for(emu: EmulatorServer) -> RunwareConfig:
    """API settings pointing at the emulator."""
    return RunwareConfig(api_key=TEST_KEY, base_url=emu.url)


def erase(manifest: str, output: str, emu: EmulatorServer | None, **options: Any) -> Any:
    """``run_manifest`` on the emulator with the tests' fast policies, keys from ``row_key``."""
    options.setdefault("backend", "runware")
    if "runware" not in options:
        options["runware"] = config_for(emu)
    options.setdefault("key_column", "row_key")
    options.setdefault("report", False)
    options.setdefault("poll_policy", FAST_POLL)
    options.setdefault("retry_policy", FAST_RETRY)
    return run_manifest(manifest, output, **options)


def results(output: str) -> list[dict[str, Any]]:
    """The rows of ``{output}/results.parquet``, in manifest order."""
    return pq.read_table(f"{output}/results.parquet").to_pylist()  # type: ignore[no-any-return]

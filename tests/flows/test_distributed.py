"""The same flow, unchanged, on prefect-dask's DaskTaskRunner (2 worker processes)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from prefect_flux_erase.flows import erase_manifest
from tests.fixtures.builders import write_bad_inputs, write_inputs, write_manifest

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _comparable(output: Path) -> list[tuple[Any, ...]]:
    rows = pq.read_table(output / "results.parquet").to_pylist()
    return [
        (
            r["row_key"],
            r["status"],
            r["error_code"],
            r["cost"],
            r["note"],
            [Path(u).name for u in r["output_uri"]],
        )
        for r in rows
    ]


def _pixels(path: Path) -> Any:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def test_dask_runner_gives_the_same_results_as_the_default_runner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.settings import PREFECT_API_URL
    from prefect_dask import DaskTaskRunner

    rows = write_inputs(str(tmp_path), 6) + write_bad_inputs(str(tmp_path))[:2]
    manifest = write_manifest(f"{tmp_path}/m.parquet", rows)
    options: dict[str, Any] = {
        "key_column": "row_key",
        "local_engine": "echo",
        "shard_size": 2,
        "max_failed_fraction": 0.5,
        "report": False,
    }
    default = erase_manifest(manifest, f"{tmp_path}/threads", **options)

    # Worker processes inherit the environment: point them at the harness's API server instead
    # of letting each start a temporary server of its own.
    monkeypatch.setenv("PREFECT_API_URL", str(PREFECT_API_URL.value()))
    runner = DaskTaskRunner(
        cluster_kwargs={
            "n_workers": 2,
            "threads_per_worker": 2,
            "processes": True,
            "dashboard_address": None,
        }
    )
    on_dask = erase_manifest.with_options(task_runner=runner)(
        manifest, f"{tmp_path}/dask", **options
    )

    assert (on_dask.succeeded, on_dask.failed) == (default.succeeded, default.failed) == (6, 2)
    assert _comparable(tmp_path / "dask") == _comparable(tmp_path / "threads")
    # Seeds come from task UUIDs, which differ with the output root: same images up to dither.
    for name in [f"img{i:03d}.jpg" for i in range(6)]:
        a = _pixels(tmp_path / "dask" / "images" / name)
        b = _pixels(tmp_path / "threads" / "images" / name)
        assert a.shape == b.shape
        assert float(np.abs(a - b).mean()) < 1.0
    assert os.environ["PREFECT_API_URL"] == str(PREFECT_API_URL.value())

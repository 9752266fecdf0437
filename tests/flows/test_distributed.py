"""The same flow, unchanged, on a real Dask cluster and a real Ray cluster.

Each cluster runs on loopback as separate processes (``dask scheduler`` and two ``dask worker``
processes; a ``ray start --head`` cluster), not in this process: the shards' stage tasks are
pickled, shipped to the workers and run there against the same Prefect API server, as on a
deployment's cluster.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from prefect_flux_erase.flows import erase_manifest
from tests.fixtures.builders import write_bad_inputs, write_inputs, write_manifest
from tests.fixtures.clusters import dask_cluster, ray_cluster

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


def _run_both(tmp_path: Path, runner: Any) -> tuple[Any, Any]:
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
    elsewhere = erase_manifest.with_options(task_runner=runner)(
        manifest, f"{tmp_path}/cluster", **options
    )
    return default, elsewhere


def _assert_same(tmp_path: Path, default: Any, elsewhere: Any) -> None:
    assert (elsewhere.succeeded, elsewhere.failed) == (default.succeeded, default.failed) == (6, 2)
    assert _comparable(tmp_path / "cluster") == _comparable(tmp_path / "threads")
    # Seeds come from task UUIDs, which differ with the output root: same images up to dither.
    for name in [f"img{i:03d}.jpg" for i in range(6)]:
        a = _pixels(tmp_path / "cluster" / "images" / name)
        b = _pixels(tmp_path / "threads" / "images" / name)
        assert a.shape == b.shape
        assert float(np.abs(a - b).mean()) < 1.0


def _worker_env() -> dict[str, str]:
    from prefect.settings import PREFECT_API_URL

    # Workers point at the harness's API server instead of each starting a server of its own.
    return {"PREFECT_API_URL": str(PREFECT_API_URL.value())}


def test_a_dask_cluster_of_separate_processes_gives_the_same_results(tmp_path: Path) -> None:
    from distributed import Client
    from prefect_dask import DaskTaskRunner

    with dask_cluster(workers=2, threads=2, env=_worker_env()) as address:
        default, on_dask = _run_both(tmp_path, DaskTaskRunner(address=address))
        with Client(address) as client:
            ran_on = client.run(os.getpid)  # the workers' own process ids
    _assert_same(tmp_path, default, on_dask)
    assert len(ran_on) == 2
    assert os.getpid() not in ran_on.values()


def test_a_ray_cluster_gives_the_same_results(tmp_path: Path) -> None:
    pytest.importorskip("prefect_ray", reason="pip install 'prefect-flux-erase[ray]'")
    from prefect_ray import RayTaskRunner

    with ray_cluster(cpus=2, env=_worker_env()) as address:
        default, on_ray = _run_both(tmp_path, RayTaskRunner(address=address))
    _assert_same(tmp_path, default, on_ray)

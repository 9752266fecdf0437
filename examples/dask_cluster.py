"""Run ``erase_manifest`` on a Dask cluster: shards become Dask tasks, the flow is unchanged.

``DaskTaskRunner`` without an address starts a temporary ``LocalCluster`` for the run; give it
``address="tcp://scheduler:8786"`` to use an existing cluster. Needs the ``dask`` extra.

Run:
    python examples/dask_cluster.py manifest.parquet erased/ --workers 2
    python examples/dask_cluster.py --samples           # the bundled sample photos
"""

from __future__ import annotations

import argparse
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from prefect import Flow
from prefect_dask.task_runners import DaskTaskRunner

from prefect_flux_erase import EraseSummary, erase_manifest


def dask_erase_manifest(workers: int = 2, threads_per_worker: int = 2) -> Flow[Any, Any]:
    """``erase_manifest`` on a temporary local Dask cluster of ``workers`` workers.

    Thread workers (``processes=False``) share the flow's process, so they also share its
    Prefect API connection and can read local files; with process workers or a remote cluster,
    use storage every worker reaches (S3, GCS, Azure) and set ``PREFECT_API_URL`` for them.
    """
    runner = DaskTaskRunner(
        cluster_kwargs={
            "n_workers": workers,
            "threads_per_worker": threads_per_worker,
            "processes": False,
            "dashboard_address": None,  # no dashboard port to bind
        }
    )
    flow: Flow[Any, Any] = erase_manifest.with_options(task_runner=runner)
    return flow


def main(
    manifest: str, output: str, *, workers: int = 2, shard_size: int = 100, **options: Any
) -> EraseSummary:
    """Erase ``manifest`` into ``output`` on the cluster; print and return the summary."""
    summary = dask_erase_manifest(workers)(manifest, output, shard_size=shard_size, **options)
    assert isinstance(summary, EraseSummary)
    print(f"{summary.describe()} ({summary.shards} shards on {workers} Dask workers)")
    return summary


def sample_manifest(root: Path) -> Path:
    """A manifest of the bundled sample photos (for a quick try)."""
    data = resources.files("prefect_flux_erase") / "sample_data"
    names = ("astronaut", "chelsea", "coffee", "rocket")
    table = pa.table(
        {
            "row_key": list(names),
            "image_uri": [str(data / "images" / f"{n}.jpg") for n in names],
            "mask_uri": [str(data / "masks" / f"{n}.png") for n in names],
        }
    )
    pq.write_table(table, root / "manifest.parquet")
    return root / "manifest.parquet"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", nargs="?", help="manifest URI")
    parser.add_argument("output", nargs="?", help="output URI")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--samples", action="store_true", help="erase the bundled samples")
    args = parser.parse_args()
    if args.samples:
        root = Path(tempfile.mkdtemp(prefix="flux-erase-dask-"))
        main(str(sample_manifest(root)), str(root / "output"), workers=args.workers, shard_size=1)
    elif args.manifest and args.output:
        main(args.manifest, args.output, workers=args.workers)
    else:
        parser.error("give MANIFEST and OUTPUT, or --samples")

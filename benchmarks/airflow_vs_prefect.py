"""Airflow against Prefect: the manifest DAG and the Prefect flow on the same manifest and emulator.

The emulator (echo engine, ``--latency`` per result) runs in its own process. The Prefect flow
``erase_manifest(backend="runware")`` runs against a Prefect API server in a subprocess (Prefect's
test harness); the Airflow DAG (``flux_erase_manifest``: plan → one mapped task per shard →
finalize) runs with ``dag.test()`` on a fresh SQLite metadata database, with the connection in
``AIRFLOW_CONN_FLUX_ERASE_DEFAULT``. Both use the same shard size, per-shard concurrency and
options, and write to their own output, so each bills every row once. Each run is timed in this
process, from the call to its return, after an untimed warm-up run of each on a few rows (the
first ``dag.test()`` of a process spends ~10-20 s setting Airflow up; the first flow starts
Prefect's client).

``dag.test()`` runs task instances one after another in this process (no scheduler, no
executor): the Airflow figure is of shards in sequence, where the Prefect flow keeps
``max_shards_in_flight`` shards at the API at once. A deployment with a parallel executor runs
mapped shards side by side, up to its pools and parallelism.

Needs the Airflow environment (``make airflow-setup``)::

    .venv-airflow/bin/python benchmarks/airflow_vs_prefect.py [--rows 400] [--latency 0.2]

The last line is machine-readable: ``airflow_rows_per_s=… prefect_rows_per_s=…``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common import BENCH_KEY, Emulator, machine, prefect_server, versions, write_corpus
from common import write_manifest as write_bench_manifest

DAG_FILE = """
import os
from datetime import datetime

from airflow.sdk import DAG

from prefect_flux_erase.airflow import flux_erase_manifest

with DAG("flux_erase_bench", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    flux_erase_manifest(
        manifest=os.environ.get("BENCH_MANIFEST", "memory://unset.parquet"),
        output=os.environ.get("BENCH_OUTPUT", "memory://unset"),
        shard_size=int(os.environ.get("BENCH_SHARD_SIZE", "100")),
        concurrency=int(os.environ.get("BENCH_CONCURRENCY", "16")),
        report=False,
    )
"""


def _airflow_home(work: Path) -> Path:
    """Airflow's settings, in the environment before the first ``import airflow``."""
    home = work / "airflow"
    (home / "dags").mkdir(parents=True)
    (home / "dags" / "flux_erase_bench.py").write_text(DAG_FILE)
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        }
    )
    sys.path.insert(0, str(home / "dags"))
    return home


def _run_airflow(manifest: str, output: str, url: str, shard_size: int) -> tuple[float, str]:
    os.environ["AIRFLOW_CONN_FLUX_ERASE_DEFAULT"] = json.dumps(
        {"conn_type": "flux_erase", "host": url, "password": BENCH_KEY}
    )
    os.environ.update(
        {"BENCH_MANIFEST": manifest, "BENCH_OUTPUT": output, "BENCH_SHARD_SIZE": str(shard_size)}
    )
    import importlib

    from airflow.utils import db

    db.initdb()
    module = importlib.reload(importlib.import_module("flux_erase_bench"))
    started = time.perf_counter()
    run = module.dag.test()
    return time.perf_counter() - started, str(run.state)


def _run_prefect(manifest: str, output: str, url: str, shard_size: int) -> tuple[float, Any]:
    from prefect_flux_erase import RunwareCredentials, erase_manifest

    started = time.perf_counter()
    summary = erase_manifest(
        manifest,
        output,
        backend="runware",
        credentials=RunwareCredentials(api_key=BENCH_KEY, base_url=url),
        shard_size=shard_size,
        report=False,
    )
    return time.perf_counter() - started, summary


def _count_results(output: str) -> dict[str, int]:
    import pyarrow.parquet as pq

    rows = pq.read_table(f"{output}/results.parquet", columns=["status"]).to_pylist()
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    """Run the Prefect flow, then the Airflow DAG; print the figures, last line both rates."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=400)
    p.add_argument("--latency", type=float, default=0.2)
    p.add_argument("--shard-size", type=int, default=100)
    args = p.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="flux-erase-airflow-bench-"))
    _airflow_home(work)
    print(f"machine: {machine()}; {versions()}")
    try:
        pairs = write_corpus(work, distinct=8)
        manifest = write_bench_manifest(work / "manifest.parquet", pairs, rows=args.rows)
        warmup = write_bench_manifest(work / "warmup.parquet", pairs, rows=8)
        with Emulator(latency=args.latency) as emu, prefect_server() as server:
            import airflow

            print(
                f"emulator {emu.url} (echo, latency {args.latency} s, separate process); "
                f"Prefect API {server.api_url}; Airflow {airflow.__version__} dag.test() on "
                f"SQLite; {args.rows} rows in shards of {args.shard_size}"
            )
            figures: dict[str, float] = {}
            for name, run in (("prefect", _run_prefect), ("airflow", _run_airflow)):
                run(warmup, str(work / f"warmup-{name}"), emu.url, args.shard_size)
                emu.reset()
                server.settle()
                output = str(work / f"out-{name}")
                seconds, outcome = run(manifest, output, emu.url, args.shard_size)
                stats = emu.stats()
                counts = _count_results(output)
                figures[name] = args.rows / seconds
                print(
                    f"{name}: {seconds:.2f} s, {figures[name]:.1f} rows/s; "
                    f"results {counts}; billed {stats['results_billed']}; "
                    f"requests {stats['requests_total']}; outcome "
                    f"{getattr(outcome, 'succeeded', outcome)}"
                )
        print(
            f"airflow_rows_per_s={figures['airflow']:.1f} "
            f"prefect_rows_per_s={figures['prefect']:.1f}"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

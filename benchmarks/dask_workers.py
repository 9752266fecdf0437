"""Distributed: the local engine on a real Dask cluster, 1 worker process against 2.

A ``dask scheduler`` and separate ``dask worker`` processes (one thread each) run on loopback,
against one Prefect API server (Prefect's test harness, a subprocess). The same manifest
(``--rows`` 256x256 photos, the ``local`` engine: CPU-bound) is erased by ``erase_manifest``
with ``DaskTaskRunner(address=...)`` on a cluster of 1 worker, then of 2 (the order alternates
every repeat), with enough shards at once to keep every worker busy. The machine has 2 cores,
so 2 workers can reach at most ~2x; the flow's own process and the Prefect server share them.

Run::

    python benchmarks/dask_workers.py [--rows 96] [--repeat 2] [--shard-size 8]

The last line is machine-readable: ``rows_s_1_worker=… rows_s_2_workers=… speedup=…``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from common import load_average, machine, prefect_server, versions, write_corpus, write_manifest

BIN = Path(sys.executable).parent


@contextmanager
def dask_cluster(workers: int, env: dict[str, str]) -> Iterator[str]:
    """``dask scheduler`` plus ``workers`` ``dask worker`` processes (1 thread each)."""
    from distributed import Client

    folder = Path(tempfile.mkdtemp(prefix="flux-erase-dask-"))
    file = folder / "scheduler.json"
    environ = {**os.environ, **env}
    dask = str(BIN / "dask")
    processes = [
        subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", str(file)],
            env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    ]  # fmt: skip
    try:
        while not file.exists():
            time.sleep(0.1)
        address = str(json.loads(file.read_text())["address"])
        for i in range(workers):
            processes.append(
                subprocess.Popen(
                    [dask, "worker", address, "--nworkers", "1", "--nthreads", "1",
                     "--host", "127.0.0.1", "--name", f"w{i}", "--no-dashboard",
                     "--memory-limit", "0"],
                    env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )
            )  # fmt: skip
        with Client(address, timeout=60) as client:
            client.wait_for_workers(workers, timeout=120)
        yield address
    finally:
        for process in processes[::-1]:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


def run_on(address: str, manifest: str, output: str, shard_size: int, workers: int) -> int:
    """Erase the manifest with the local engine on the cluster at ``address``."""
    from prefect_dask import DaskTaskRunner

    from prefect_flux_erase import erase_manifest

    summary = erase_manifest.with_options(task_runner=DaskTaskRunner(address=address))(
        manifest,
        output,
        backend="local",
        shard_size=shard_size,
        concurrency=shard_size,
        max_shards_in_flight=2 * workers,
        report=False,
    )
    return int(summary.succeeded)  # type: ignore[union-attr]


def main(argv: Sequence[str] | None = None) -> int:
    """Measure 1 and 2 workers; print rows/s and the speedup."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=96)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--shard-size", type=int, default=8)
    args = p.parse_args(argv)

    print(f"machine: {machine()}; {versions()}; load average {load_average()}")
    work = Path(tempfile.mkdtemp(prefix="flux-erase-distributed-"))
    rates: dict[int, list[float]] = {1: [], 2: []}
    try:
        pairs = write_corpus(work, distinct=8)
        manifest = write_manifest(work / "m.parquet", pairs, rows=args.rows)
        with prefect_server() as server:
            env = {"PREFECT_API_URL": server.api_url}
            for rep in range(args.repeat):
                for workers in (1, 2) if rep % 2 == 0 else (2, 1):
                    with dask_cluster(workers, env) as address:
                        output = str(work / f"out-{workers}-{rep}")
                        server.settle()
                        started = time.perf_counter()
                        done = run_on(address, manifest, output, args.shard_size, workers)
                        elapsed = time.perf_counter() - started
                    if done != args.rows:
                        raise SystemExit(f"{workers} worker(s): {done} of {args.rows} rows")
                    rates[workers].append(args.rows / elapsed)
                    print(
                        f"  {workers} worker(s): {args.rows} rows in {elapsed:6.1f} s = "
                        f"{args.rows / elapsed:5.2f} rows/s; load {load_average()}",
                        flush=True,
                    )
                    shutil.rmtree(output, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    print(f"rows_s_1_worker={one:.2f} rows_s_2_workers={two:.2f} speedup={two / one:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Resume: a finished 10,000-row run, then the very same run again.

The emulator (echo engine, ``--latency`` per result) runs in its own process, and a Prefect API
server in another (Prefect's test harness). ``erase_manifest(backend="runware")`` erases the
manifest once with the flow's default settings, then the same call runs again: every shard is
already committed, so the rerun must make no API request at all and cost a small fraction of
the first run's time. Both runs are timed in this process, from the call to its return.

Run::

    python benchmarks/resume.py [--rows 10000] [--latency 0.2] [--repeat 1]

The last line is machine-readable: ``rerun_api_requests=… rerun_time_ratio=…`` (the largest
request count and the median ratio over the repeats). Goal: 0 requests and a ratio <= 0.1.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common import (
    BENCH_KEY,
    Emulator,
    machine,
    prefect_server,
    versions,
    write_corpus,
    write_manifest,
)


def _run(manifest: str, output: str, url: str) -> tuple[float, Any]:
    from prefect_flux_erase import RunwareCredentials, erase_manifest

    started = time.perf_counter()
    summary = erase_manifest(
        manifest,
        output,
        backend="runware",
        credentials=RunwareCredentials(api_key=BENCH_KEY, base_url=url),
        dedupe=False,  # the rows cycle over a few files; every row must be erased
    )
    return time.perf_counter() - started, summary


def main(argv: Sequence[str] | None = None) -> int:
    """Run first and second passes; print the figures, last line the request count and ratio."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=10_000)
    p.add_argument("--latency", type=float, default=0.2)
    p.add_argument("--repeat", type=int, default=1)
    args = p.parse_args(argv)

    print(f"machine: {machine()}; {versions()}")
    work = Path(tempfile.mkdtemp(prefix="flux-erase-resume-"))
    ratios: list[float] = []
    requests: list[int] = []
    try:
        pairs = write_corpus(work, distinct=8)
        manifest = write_manifest(work / "manifest.parquet", pairs, rows=args.rows)
        with Emulator(latency=args.latency) as emu, prefect_server() as server:
            print(
                f"emulator {emu.url} (echo, latency {args.latency} s, separate process); "
                f"Prefect API {server.api_url} (test-harness subprocess server, SQLite); "
                f"{args.rows} rows, default flow settings"
            )
            for rep in range(args.repeat):
                output = str(work / f"out-{rep}")
                emu.reset()
                server.settle()
                first_s, first = _run(manifest, output, emu.url)
                billed = emu.stats()["results_billed"]
                before = emu.stats()["requests_total"]
                server.settle()
                again_s, again = _run(manifest, output, emu.url)
                made = emu.stats()["requests_total"] - before
                if first.succeeded != args.rows or again.succeeded != args.rows:
                    raise SystemExit(f"rows succeeded: {first.succeeded}, then {again.succeeded}")
                ratios.append(again_s / first_s)
                requests.append(made)
                print(
                    f"repeat {rep + 1}: first run {first_s:.2f} s ({args.rows / first_s:.0f} "
                    f"rows/s, {billed} results billed, {first.shards} shards); rerun "
                    f"{again_s:.2f} s, {again.shards_skipped} of {again.shards} shards skipped, "
                    f"{made} API requests; ratio {again_s / first_s:.4f}",
                    flush=True,
                )
                shutil.rmtree(output, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"rerun_api_requests={max(requests)} rerun_time_ratio={statistics.median(ratios):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

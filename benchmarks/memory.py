"""Memory: peak RSS of `erase_manifest` over 10,000 and 100,000 rows, each in a fresh process.

The emulator (echo engine, no latency) runs in its own process and a Prefect API server in
another (Prefect's test harness, a subprocess server on SQLite). Manifests sit on local disk and
point at a few tiny images (256x256, the model's minimum; many rows share the same files). Each
size runs ``erase_manifest(backend="runware")`` with the flow's default settings (shard size
100, concurrency 16, 4 shards in flight, report on) in a fresh interpreter, which reports its
own peak resident set (``VmHWM`` from ``/proc/self/status``) when the flow has returned.
``dedupe`` is off: the rows cycle over a few files, and every row must reach the emulator.

Run::

    python benchmarks/memory.py [--sizes 10000,100000]

The emulator runs in a fresh process for each size, and its own peak resident memory is
reported too (it keeps images within a memory budget and spills the rest to disk).

The last line is machine-readable:
``rss_10k_mb=… rss_100k_mb=… ratio=… emulator_rss_10k_mb=… emulator_rss_100k_mb=…``.
Goal: ratio <= 1.2 and both <= 500 MB; the emulator within a few hundred MB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from common import (
    BENCH_KEY,
    Emulator,
    machine,
    peak_rss_mb,
    prefect_server,
    versions,
    write_corpus,
    write_manifest,
)


def child(manifest: str, output: str, url: str) -> int:
    """Run one erase in this (fresh) process and print its figures as one JSON line."""
    from prefect_flux_erase import RunwareCredentials, erase_manifest

    baseline = peak_rss_mb()
    started = time.perf_counter()
    summary = erase_manifest(
        manifest,
        output,
        backend="runware",
        credentials=RunwareCredentials(api_key=BENCH_KEY, base_url=url),
        # The rows cycle over a few files: with dedupe on, a handful of tasks would be sent.
        dedupe=False,
    )
    elapsed = time.perf_counter() - started
    figures = {
        "rows": summary.rows,  # type: ignore[union-attr]
        "succeeded": summary.succeeded,  # type: ignore[union-attr]
        "seconds": round(elapsed, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "rss_after_imports_mb": round(baseline, 1),
    }
    print("FIGURES " + json.dumps(figures), flush=True)
    return 0


def _label(rows: int) -> str:
    return f"{rows // 1000}k" if rows % 1000 == 0 else str(rows)


def main(argv: Sequence[str] | None = None) -> int:
    """Run every size in a fresh process; print the figures, last line the ratio."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="10000,100000", help="comma-separated row counts")
    p.add_argument(
        "--child", nargs=3, metavar=("MANIFEST", "OUTPUT", "URL"), help=argparse.SUPPRESS
    )
    args = p.parse_args(argv)
    if args.child:
        return child(*args.child)
    sizes = [int(s) for s in args.sizes.split(",") if s]

    print(f"machine: {machine()}; {versions()}")
    work = Path(tempfile.mkdtemp(prefix="flux-erase-memory-"))
    peaks: dict[int, float] = {}
    emu_peaks: dict[int, float] = {}
    try:
        pairs = write_corpus(work, distinct=4)
        with prefect_server() as server:
            print(
                f"emulator: echo, no latency, a fresh process per size; Prefect API "
                f"{server.api_url} (test-harness subprocess server, SQLite)"
            )
            for rows in sizes:
                manifest = write_manifest(work / f"manifest-{rows}.parquet", pairs, rows=rows)
                output = work / f"out-{rows}"
                server.settle()
                emu = Emulator(latency=0.0).__enter__()
                env = {**os.environ, "PREFECT_API_URL": server.api_url}
                command = [sys.executable, __file__, "--child", manifest, str(output), emu.url]
                try:
                    done = subprocess.run(command, env=env, capture_output=True, text=True)
                    emu_peaks[rows] = peak_rss_mb(emu.pid)
                    spilled = emu.stats()["images_spilled_bytes"] / 1e6
                finally:
                    emu.__exit__(None, None, None)
                lines = [x for x in done.stdout.splitlines() if x.startswith("FIGURES ")]
                if done.returncode != 0 or not lines:
                    print(done.stdout[-3000:], done.stderr[-3000:], sep="\n")
                    raise SystemExit(f"the {rows}-row run failed (exit {done.returncode})")
                figures = json.loads(lines[-1].removeprefix("FIGURES "))
                if figures["succeeded"] != rows:
                    raise SystemExit(f"{rows} rows: only {figures['succeeded']} succeeded")
                peaks[rows] = figures["peak_rss_mb"]
                print(
                    f"{rows:>7} rows: peak RSS {figures['peak_rss_mb']:7.1f} MB "
                    f"(after imports {figures['rss_after_imports_mb']:.1f} MB), "
                    f"{figures['seconds']:.1f} s, {rows / figures['seconds']:.0f} rows/s; "
                    f"emulator peak RSS {emu_peaks[rows]:.1f} MB ({spilled:.0f} MB of images "
                    "spilled to disk)",
                    flush=True,
                )
                shutil.rmtree(output, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    parts = [f"rss_{_label(rows)}_mb={peak:.1f}" for rows, peak in peaks.items()]
    if len(peaks) >= 2:
        small, large = peaks[sizes[0]], peaks[sizes[-1]]
        parts.append(f"ratio={large / small:.3f}")
    parts += [f"emulator_rss_{_label(rows)}_mb={peak:.1f}" for rows, peak in emu_peaks.items()]
    print(" ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())

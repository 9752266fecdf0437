"""Scale: many rows in flight at a realistic latency, and a 1,000,000-row manifest resumed.

Two parts, each against the Runware emulator (echo engine) in its own process, through the
core's front door (``prefect_flux_erase.run``, no Prefect):

- ``concurrency``: ``--rows`` rows (20,000) with ``--in-flight`` rows at the API (512) and a
  fixed ``--latency`` per result (2 s), as at Runware's real latencies where throughput is
  bounded by concurrency. Reports rows/s against the ideal (in flight / latency) and the
  client's CPU per row. Goal: >= 0.9 of the ideal. ``--ways door,sdk`` adds the official SDK's
  loop at the same concurrency, side by side.
- ``million``: a manifest of ``--million-rows`` rows (1,000,000) is planned in a fresh process
  (the plan, the duplicate-key check and the cost scan of every input), then finished, then run
  again in a fresh process: every shard is committed, so the rerun must make **0 API
  requests**; it assembles ``results.parquet`` (streamed, one part at a time). Each phase
  reports its time and peak resident memory (``VmHWM``). Goal: plan and rerun <= 500 MB.
  ``--finish parts`` (default) writes the committed parts a finished run leaves directly, from
  each shard's rows (succeeded, output paths of the run's layout), in a fresh process: a real
  run of 1,000,000 rows takes hours on 2 cores. ``--finish emulator`` runs it for real.

Run::

    python benchmarks/scale.py [--parts concurrency,million] [--rows 20000] [--in-flight 512]
        [--latency 2.0] [--million-rows 1000000] [--finish parts|emulator]

The last line is machine-readable::

    concurrency_ratio=… plan_rss_mb=… plan_s=… rerun_rss_mb=… rerun_s=… rerun_api_requests=…
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
from typing import Any

from common import (
    BENCH_KEY,
    Emulator,
    load_average,
    machine,
    peak_rss_mb,
    process_cpu_seconds,
    self_cpu_seconds,
    versions,
    write_corpus,
    write_manifest,
)

# --------------------------------------------------------------------------- concurrency


def concurrency(args: Any, work: Path) -> dict[str, float]:
    """``--rows`` rows at ``--in-flight`` in flight and ``--latency`` s: rows/s vs ideal."""
    import throughput

    pairs = write_corpus(work / "conc", distinct=8)
    manifest = write_manifest(work / "conc" / "m.parquet", pairs, rows=args.rows)
    rows = [(f"row-{i:07d}", *pairs[i % len(pairs)]) for i in range(args.rows)]
    per_shard = min(args.in_flight, args.concurrency)
    options = {
        "shard_size": args.shard_size,
        "concurrency": per_shard,
        "max_shards_in_flight": max(1, args.in_flight // per_shard),
        "dedupe": False,  # the rows cycle over a few files; every row must be erased
    }
    ideal = args.in_flight / args.latency
    figures: dict[str, float] = {}
    print(
        f"\n== concurrency: {args.rows} rows, {args.in_flight} in flight, latency "
        f"{args.latency} s, ideal {ideal:.0f} rows/s; door settings {options}",
        flush=True,
    )
    with Emulator(latency=args.latency) as emu:
        for way in [w for w in args.ways.split(",") if w]:
            emu.reset()
            out = work / "conc" / f"out-{way}"
            cpu0, emu0 = self_cpu_seconds(), process_cpu_seconds(emu.pid)
            started = time.perf_counter()
            if way == "door":
                done = throughput.run_door(emu.url, manifest, out, options)
            elif way == "sdk":
                done = throughput.run_sdk(emu.url, rows, out, args.in_flight)
            else:
                raise SystemExit(f"unknown way {way!r}")
            elapsed = time.perf_counter() - started
            cpu = self_cpu_seconds() - cpu0
            if done != args.rows:
                raise SystemExit(f"{way}: {done} of {args.rows} rows succeeded")
            rate = args.rows / elapsed
            figures[way] = rate / ideal
            print(
                f"  {way:<5} {args.rows} rows in {elapsed:7.1f} s = {rate:6.1f} rows/s = "
                f"{rate / ideal:.3f} of the ideal; client CPU {1000 * cpu / args.rows:.2f} ms/row, "
                f"emulator {1000 * (process_cpu_seconds(emu.pid) - emu0) / args.rows:.2f} "
                f"ms/row; load {load_average()}",
                flush=True,
            )
            shutil.rmtree(out, ignore_errors=True)
    return figures


# --------------------------------------------------------------------------- a million rows


def _spec_options(url: str) -> dict[str, Any]:
    from prefect_flux_erase.run import RunwareConfig

    return {
        "backend": "runware",
        "runware": RunwareConfig(api_key=BENCH_KEY, base_url=url),
        "shard_size": 1000,
    }


def child_plan(manifest: str, output: str, url: str) -> dict[str, Any]:
    """Plan the run (fresh process): shards, duplicate keys, committed parts, cost scan."""
    from prefect_flux_erase.run import RunSpec, plan_run

    started = time.perf_counter()
    run = plan_run(RunSpec(manifest, output, **_spec_options(url)))
    return {
        "rows": run.plan.num_rows,
        "shards": len(run.plan.shards),
        "todo": len(run.todo),
        "run_key": run.run_key,
        "seconds": round(time.perf_counter() - started, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def child_finish_parts(manifest: str, output: str, url: str) -> dict[str, Any]:
    """Write every shard's committed part as a finished run leaves it (fresh process)."""
    from prefect_flux_erase.manifest.plan import plan_manifest, read_shard
    from prefect_flux_erase.results.assemble import write_part
    from prefect_flux_erase.results.row_outcome import RowOutcome
    from prefect_flux_erase.run import RunSpec, build_job
    from prefect_flux_erase.run.plan import manifest_spec
    from prefect_flux_erase.shards.stages import output_uri

    started = time.perf_counter()
    spec = RunSpec(manifest, output, **_spec_options(url)).check()
    job = build_job(spec)
    plan = plan_manifest(manifest_spec(spec), shard_size=spec.shard_size)
    for shard in plan.shards:
        rows = list(read_shard(job.manifest, shard))
        outcomes = [
            RowOutcome(
                row_key=row.key,
                row_index=row.index,
                status="succeeded",
                output_uri=[output_uri(job, row.key, 0)],
                cost=0.03,
                attempts=1,
                latency_s=2.0,
            )
            for row in rows
        ]
        write_part(output, shard.index, job.run_key, rows, outcomes, schema=plan.schema)
    return {
        "shards": len(plan.shards),
        "seconds": round(time.perf_counter() - started, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def child_run(manifest: str, output: str, url: str) -> dict[str, Any]:
    """The whole run through the front door (fresh process): a first run, or the rerun."""
    from prefect_flux_erase.run import run_manifest

    started = time.perf_counter()
    summary = run_manifest(manifest, output, **_spec_options(url))
    return {
        "rows": summary.rows,
        "succeeded": summary.succeeded,
        "shards_skipped": summary.shards_skipped,
        "shards": summary.shards,
        "seconds": round(time.perf_counter() - started, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


CHILDREN = {"plan": child_plan, "finish-parts": child_finish_parts, "run": child_run}


def _in_child(phase: str, manifest: str, output: str, url: str) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", phase, manifest, output, url]
    done = subprocess.run(command, capture_output=True, text=True)
    lines = [x for x in done.stdout.splitlines() if x.startswith("FIGURES ")]
    if done.returncode != 0 or not lines:
        print(done.stdout[-3000:], done.stderr[-3000:], sep="\n")
        raise SystemExit(f"the {phase} phase failed (exit {done.returncode})")
    figures: dict[str, Any] = json.loads(lines[-1].removeprefix("FIGURES "))
    return figures


def million(args: Any, work: Path) -> dict[str, float]:
    """Plan, finish and rerun a ``--million-rows`` manifest; memory and time of each phase."""
    folder = work / "million"
    pairs = write_corpus(folder, distinct=8)
    started = time.perf_counter()
    manifest = write_manifest(folder / "m.parquet", pairs, rows=args.million_rows)
    print(
        f"\n== million: {args.million_rows} rows (manifest "
        f"{Path(manifest).stat().st_size / 1e6:.0f} MB, written in "
        f"{time.perf_counter() - started:.0f} s), shards of 1000, finish: {args.finish}",
        flush=True,
    )
    output = str(folder / "out")
    figures: dict[str, float] = {}
    with Emulator(latency=0.0) as emu:
        plan = _in_child("plan", manifest, output, emu.url)
        print(f"  plan:   {plan}", flush=True)
        figures.update(plan_rss_mb=plan["peak_rss_mb"], plan_s=plan["seconds"])
        phase = "finish-parts" if args.finish == "parts" else "run"
        finished = _in_child(phase, manifest, output, emu.url)
        print(f"  finish: {finished} ({phase})", flush=True)
        before = emu.stats()["requests_total"]
        rerun = _in_child("run", manifest, output, emu.url)
        made = emu.stats()["requests_total"] - before
        print(f"  rerun:  {rerun}; {made} API requests; load {load_average()}", flush=True)
        if rerun["shards_skipped"] != rerun["shards"] or rerun["succeeded"] != args.million_rows:
            raise SystemExit(f"the rerun did not find the run finished: {rerun}")
        figures.update(
            rerun_rss_mb=rerun["peak_rss_mb"], rerun_s=rerun["seconds"], rerun_api_requests=made
        )
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    """Run the parts; print the figures, the last line machine-readable."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--parts", default="concurrency,million")
    p.add_argument("--rows", type=int, default=20_000)
    p.add_argument("--in-flight", type=int, default=512)
    p.add_argument("--latency", type=float, default=2.0)
    p.add_argument("--shard-size", type=int, default=2048, help="concurrency: rows per shard")
    p.add_argument("--concurrency", type=int, default=256, help="concurrency: rows per shard")
    p.add_argument("--ways", default="door", help="concurrency: door, sdk")
    p.add_argument("--million-rows", type=int, default=1_000_000)
    p.add_argument("--finish", choices=("parts", "emulator"), default="parts")
    p.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        phase, manifest, output, url = args.child
        print("FIGURES " + json.dumps(CHILDREN[phase](manifest, output, url)), flush=True)
        return 0

    print(f"machine: {machine()}; {versions()}; load average {load_average()}")
    work = Path(tempfile.mkdtemp(prefix="flux-erase-scale-"))
    parts = [x for x in args.parts.split(",") if x]
    line: dict[str, float] = {}
    try:
        if "concurrency" in parts:
            ratios = concurrency(args, work)
            line["concurrency_ratio"] = ratios.get("door", float("nan"))
            if "sdk" in ratios:
                line["concurrency_ratio_sdk"] = ratios["sdk"]
        if "million" in parts:
            line.update(million(args, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        " ".join(
            f"{k}={v:.0f}"
            if k == "rerun_api_requests"
            else f"{k}={v:.3f}"
            if k.startswith("concurrency")
            else f"{k}={v:.1f}"
            for k, v in line.items()
        )
    )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    sys.exit(main())

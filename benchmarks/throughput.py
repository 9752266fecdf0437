"""Throughput: `erase_manifest` against a hand-written asyncio + httpx loop and a naive `.map`.

One emulator (echo engine, fixed latency, 256x256 JPEG photos and PNG masks) runs in its own
process; a Prefect API server runs in another (Prefect's test harness: a subprocess server on
SQLite that outlives every measured run). The same manifest is then erased three ways, in one
process, alternating (the order rotates every repeat) so the shared machine's load hits all of
them alike:

- ``raw``: the practical limit on one machine. A minimal ``asyncio`` + ``httpx`` loop that does
  the same protocol work per row: read the image and mask, submit one ``imageInference`` task
  (async delivery, ``outputType`` URL, inputs inline as data URIs), poll ``getResponse`` on the
  pipeline's cadence (0.2 s, then 0.25 s growing x1.5), download the result URL and write the
  file. An ``asyncio.Semaphore`` keeps ``--in-flight`` rows in flight.
- ``flow``: ``erase_manifest(backend="runware")`` at the emulator, same delivery (async, URL).
  Its settings keep the same number of rows at the API: shards of ``--shard-size`` rows, and
  ``--in-flight / --shard-size`` shards at the API at once (``max_shards_in_flight``; one more
  shard may read and validate its rows meanwhile, but sends nothing until a shard at the API
  is answered).
- ``naive``: the way a Prefect user would start: one task run per row,
  ``erase_image.map(...)`` on a ``ThreadPoolTaskRunner`` with ``--in-flight`` workers.

Run::

    python benchmarks/throughput.py [--rows 5000] [--repeat 3] [--latency 0.2] [--in-flight 64]

The last line is machine-readable: ``ratio_flow_vs_raw=… ratio_flow_vs_naive=…``
(medians over the repeats). Goal: flow >= 0.90 x raw and >= 5 x naive.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from common import (
    BENCH_KEY,
    Emulator,
    PrefectServer,
    machine,
    prefect_server,
    versions,
    write_corpus,
    write_manifest,
)

#: The pipeline's getResponse cadence (``PIPELINE_POLL_POLICY``), used by the raw loop too.
POLL_FIRST, POLL_NEXT, POLL_GROWTH, POLL_MAX = 0.2, 0.1, 1.5, 5.0


# --------------------------------------------------------------------------- raw asyncio + httpx


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


async def _raw_submit_and_wait(client: httpx.AsyncClient, url: str, image: str, mask: str) -> Any:
    """Read the inputs, submit one task (async delivery), poll until it succeeds."""
    task_uuid = str(uuid.uuid4())
    # Small local files, read inline: a thread hop would cost more than the read.
    image_bytes = Path(image).read_bytes()  # noqa: ASYNC240
    mask_bytes = Path(mask).read_bytes()  # noqa: ASYNC240
    task = {
        "taskType": "imageInference",
        "taskUUID": task_uuid,
        "model": "bfl:flux@erase",
        "inputs": {
            "image": _data_uri(image_bytes, "image/jpeg"),
            "mask": _data_uri(mask_bytes, "image/png"),
        },
        "deliveryMethod": "async",
        "outputType": "URL",
        "outputFormat": "JPG",
        "includeCost": True,
    }
    reply = await client.post(url, json=[task])
    reply.raise_for_status()
    wait, following = POLL_FIRST, POLL_NEXT
    while True:
        await asyncio.sleep(wait)
        polled = await client.post(url, json=[{"taskType": "getResponse", "taskUUID": task_uuid}])
        polled.raise_for_status()
        for item in polled.json().get("data", []):
            if item.get("status") == "success":
                return item
        wait, following = following, min(following * POLL_GROWTH, POLL_MAX)


def run_raw(url: str, rows: Sequence[tuple[str, str, str]], out: Path, in_flight: int) -> int:
    """Erase every row with the raw loop; return how many succeeded.

    A row holds one of ``in_flight`` slots from reading its inputs until its result is ready
    (as a shard of the flow does from submission to its last answer); the download and the
    write follow outside the slot, at most ``in_flight`` at once.
    """
    out.mkdir(parents=True, exist_ok=True)

    async def main() -> int:
        limits = httpx.Limits(max_connections=2 * in_flight, max_keepalive_connections=in_flight)
        headers = {"Authorization": f"Bearer {BENCH_KEY}"}
        async with httpx.AsyncClient(timeout=120, limits=limits, headers=headers) as client:
            at_api, writing = asyncio.Semaphore(in_flight), asyncio.Semaphore(in_flight)

            async def one(key: str, image: str, mask: str) -> float:
                async with at_api:
                    item = await _raw_submit_and_wait(client, url, image, mask)
                async with writing:
                    data = await client.get(item["imageURL"])
                    data.raise_for_status()
                    (out / f"{key}.jpg").write_bytes(data.content)
                return float(item.get("cost", 0.0))

            costs = await asyncio.gather(*(one(*row) for row in rows))
        return len(costs)

    return asyncio.run(main())


# --------------------------------------------------------------------------- the flow


def run_flow(url: str, manifest: str, out: Path, options: dict[str, Any]) -> int:
    """Erase the manifest with ``erase_manifest``; return how many rows succeeded."""
    from prefect_flux_erase import RunwareCredentials, erase_manifest

    summary = erase_manifest(
        manifest,
        str(out),
        backend="runware",
        credentials=RunwareCredentials(api_key=BENCH_KEY, base_url=url),
        report=False,
        **options,
    )
    return int(summary.succeeded)  # type: ignore[union-attr]


# --------------------------------------------------------------------------- naive .map


def run_naive(url: str, rows: Sequence[tuple[str, str, str]], out: Path, in_flight: int) -> int:
    """One Prefect task run per row: ``erase_image.map`` on ``in_flight`` threads."""
    from prefect import flow
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect.utilities.annotations import unmapped

    from prefect_flux_erase import FluxEraseSettings, RunwareCredentials
    from prefect_flux_erase.tasks import erase_image

    out.mkdir(parents=True, exist_ok=True)
    credentials = RunwareCredentials(api_key=BENCH_KEY, base_url=url)
    settings = FluxEraseSettings(include_cost=True)

    @flow(name="naive-map", task_runner=ThreadPoolTaskRunner(max_workers=in_flight))
    def naive() -> int:
        futures = erase_image.map(
            [image for _, image, _ in rows],
            [mask for _, _, mask in rows],
            output=[str(out / f"{key}.jpg") for key, _, _ in rows],
            backend="runware",
            credentials=unmapped(credentials),
            settings=unmapped(settings),
        )
        done = 0
        for future in futures:
            future.result()
            done += 1
        return done

    return naive()


# --------------------------------------------------------------------------- driver


def _measure(name: str, rows: int, fn: Callable[[], int]) -> float:
    started = time.perf_counter()
    done = fn()
    elapsed = time.perf_counter() - started
    if done != rows:
        raise SystemExit(f"{name}: {done} of {rows} rows succeeded")
    rate = rows / elapsed
    print(f"  {name:<5} {rows} rows in {elapsed:7.2f} s = {rate:7.1f} rows/s", flush=True)
    return rate


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison and print the figures; the last line holds the ratios."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=5000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--latency", type=float, default=0.2)
    p.add_argument("--in-flight", type=int, default=64)
    p.add_argument("--shard-size", type=int, default=64, help="flow: rows per shard")
    p.add_argument("--flow-options", default="{}", help="JSON: erase_manifest overrides")
    p.add_argument("--ways", default="raw,flow,naive", help="comma-separated subset")
    args = p.parse_args(argv)
    ways = [w for w in args.ways.split(",") if w]

    print(f"machine: {machine()}; {versions()}")
    work = Path(tempfile.mkdtemp(prefix="flux-erase-throughput-"))
    rates: dict[str, list[float]] = {w: [] for w in ways}
    flow_options = {
        "shard_size": args.shard_size,
        "concurrency": args.shard_size,
        "max_shards_in_flight": max(1, args.in_flight // args.shard_size),
    }
    flow_options.update(json.loads(args.flow_options))
    try:
        pairs = write_corpus(work, distinct=8)
        manifest = write_manifest(work / "manifest.parquet", pairs, rows=args.rows)
        rows = [(f"row-{i:07d}", *pairs[i % len(pairs)]) for i in range(args.rows)]
        with Emulator(latency=args.latency) as emu, prefect_server() as server:
            print(
                f"emulator {emu.url} (echo, latency {args.latency} s, separate process); "
                f"Prefect API {server.api_url} (test-harness subprocess server, SQLite)"
            )
            print(
                f"{args.rows} rows, {args.in_flight} in flight, ideal "
                f"{args.in_flight / args.latency:.0f} rows/s; flow settings {flow_options}"
            )
            # Warm up: Prefect's first flow run in a process pays imports and registration.
            _warm(emu, server, work, pairs, args)
            for rep in range(args.repeat):
                order = ways[rep % len(ways) :] + ways[: rep % len(ways)]
                print(f"repeat {rep + 1}/{args.repeat}: {', '.join(order)}", flush=True)
                for way in order:
                    out = work / f"out-{way}-{rep}"
                    emu.reset()
                    server.settle()
                    fn: Callable[[], int]
                    if way == "raw":
                        fn = partial(run_raw, emu.url, rows, out, args.in_flight)
                    elif way == "flow":
                        fn = partial(run_flow, emu.url, manifest, out, flow_options)
                    else:
                        fn = partial(run_naive, emu.url, rows, out, args.in_flight)
                    rates[way].append(_measure(way, args.rows, fn))
                    shutil.rmtree(out, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _report(rates, args)


def _warm(emu: Emulator, server: PrefectServer, work: Path, pairs: list[Any], args: Any) -> None:
    small = write_manifest(work / "warm.parquet", pairs, rows=64)
    run_flow(emu.url, small, work / "warm-out", {"shard_size": 32})
    shutil.rmtree(work / "warm-out", ignore_errors=True)


def _report(rates: dict[str, list[float]], args: Any) -> int:
    print(f"ideal {args.in_flight / args.latency:.1f} rows/s")
    medians = {way: statistics.median(r) for way, r in rates.items() if r}
    for way, values in rates.items():
        shown = ", ".join(f"{v:.1f}" for v in values)
        print(f"{way}: median {medians[way]:.1f} rows/s ({shown})")
    parts = []
    if "flow" in medians and "raw" in medians:
        parts.append(f"ratio_flow_vs_raw={medians['flow'] / medians['raw']:.3f}")
    if "flow" in medians and "naive" in medians:
        parts.append(f"ratio_flow_vs_naive={medians['flow'] / medians['naive']:.2f}")
    print(" ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())

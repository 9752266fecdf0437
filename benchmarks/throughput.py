"""Throughput and CPU per row: the pipeline against the official SDK's own loop, side by side.

One emulator (echo engine, fixed latency) runs in its own process; a Prefect API server runs in
another (Prefect's test harness: a subprocess server on SQLite that outlives every measured
run). The same rows are then erased several ways, in this one process, alternating (the order
rotates every repeat) so the shared machine's load hits all of them alike:

- ``sdk``: **the peer** — the loop a Runware user writes with the official ``runware-sdk``
  (aiohttp under the hood, REST transport pointed at the emulator): ``asyncio.gather`` over
  every row under an ``asyncio.Semaphore(in_flight)``, each row read from disk with the SDK's
  ``file_to_data_uri``, sent with ``deliveryMethod`` sync and ``outputType`` base64Data (one
  request per row), and its result decoded and written to disk.
- ``door``: the core's front door, ``prefect_flux_erase.run.run_manifest(backend="runware")``,
  no Prefect: what a plain script or an Airflow task runs.
- ``flow``: ``erase_manifest(backend="runware")``, the Prefect flow, against the Prefect server.
- ``raw``: a minimal ``asyncio`` + ``httpx`` loop doing the pipeline's old protocol work per row
  (submit async with URL output, poll ``getResponse``, download, write): context for the past
  figures.
- ``naive``: one Prefect task run per row, ``erase_image.map(...)`` on ``in_flight`` threads.

``door`` and ``flow`` keep the same number of rows at the API as the loops: shards of
``--shard-size`` rows, ``concurrency`` = ``--in-flight`` (capped at the shard size) and as many
shards at the API as fill ``--in-flight``; delivery and output type are the pipeline's defaults,
so the defaults are what is measured. Their ``dedupe`` is off: the manifest's rows cycle over a
few files, and the peer erases every row.

Two payloads (``--payloads``): ``small``, 256x256 JPEG photos with PNG masks (5,000 rows by
default, every way), and ``photo``, ~2 MP photo-like 1600x1200 JPEGs (1,000 rows, the ``sdk``,
``door`` and ``flow`` ways). For each way the script prints rows/s, **client CPU per row**
(this process's user + system CPU over the run and until the Prefect server has settled, all
threads), the Prefect server's and the emulator's CPU per row, and API requests per row; then
the ratios against the SDK loop. CPU per row is the figure that holds up on a loaded machine;
rows/s ratios are only meaningful from one run like this one.

Run::

    python benchmarks/throughput.py [--payloads small,photo] [--rows 5000] [--photo-rows 1000]
        [--repeat 3] [--latency 0.2] [--in-flight 64]

The last line is machine-readable (medians over the repeats)::

    rate_flow_vs_sdk=… cpu_flow_vs_sdk=… rate_door_vs_sdk=… cpu_door_vs_sdk=…
    rate_flow_vs_sdk_2mp=… cpu_flow_vs_sdk_2mp=… ratio_flow_vs_raw=… ratio_flow_vs_naive=…

Goals (issue 16): 256x256, flow rows/s >= 1.0 x sdk and client CPU per row <= 1.2 x sdk;
~2 MP, flow rows/s >= 1.0 x sdk and CPU <= 1.1 x sdk; and, as before, flow >= 5 x naive.
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
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from common import (
    BENCH_KEY,
    PHOTO_SIZE,
    Emulator,
    PrefectServer,
    load_average,
    machine,
    prefect_server,
    process_cpu_seconds,
    self_cpu_seconds,
    versions,
    write_corpus,
    write_manifest,
)

#: The pipeline's old getResponse cadence, used by the raw loop.
POLL_FIRST, POLL_NEXT, POLL_GROWTH, POLL_MAX = 0.2, 0.1, 1.5, 5.0

#: Each payload: image size (None: the 256x256 default), default rows, default ways.
PAYLOADS: dict[str, tuple[tuple[int, int] | None, int, str]] = {
    "small": (None, 5000, "sdk,door,flow,raw,naive"),
    "photo": (PHOTO_SIZE, 1000, "sdk,door,flow"),
}

Row = tuple[str, str, str]


# --------------------------------------------------------------------------- the official SDK


def run_sdk(url: str, rows: Sequence[Row], out: Path, in_flight: int) -> int:
    """The official ``runware-sdk`` loop: gather + semaphore, sync delivery, base64Data."""
    from runware import Runware, file_to_data_uri

    out.mkdir(parents=True, exist_ok=True)

    async def main() -> int:
        slots = asyncio.Semaphore(in_flight)
        async with Runware(api_key=BENCH_KEY, transport="rest", http_base_url=url) as sdk:

            async def one(key: str, image: str, mask: str) -> int:
                async with slots:
                    results = await sdk.run(
                        {
                            "taskType": "imageInference",
                            "model": "bfl:flux@erase",
                            "inputs": {
                                "image": file_to_data_uri(image),
                                "mask": file_to_data_uri(mask),
                            },
                            "deliveryMethod": "sync",
                            "outputType": "base64Data",
                            "outputFormat": "JPG",
                            "includeCost": True,
                        }
                    )
                    data = base64.b64decode(results[0]["imageBase64Data"])
                    (out / f"{key}.jpg").write_bytes(data)
                return 1

            done = await asyncio.gather(*(one(*row) for row in rows))
        return sum(done)

    return asyncio.run(main())


# --------------------------------------------------------------------------- raw asyncio + httpx


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


async def _raw_submit_and_wait(client: httpx.AsyncClient, url: str, image: str, mask: str) -> Any:
    """Read the inputs, submit one task (async delivery), poll until it succeeds."""
    task_uuid = str(uuid.uuid4())
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


def run_raw(url: str, rows: Sequence[Row], out: Path, in_flight: int) -> int:
    """The raw httpx loop: submit (async, URL), poll, download, write; ``in_flight`` rows."""
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


# --------------------------------------------------------------------------- door and flow


def run_door(url: str, manifest: str, out: Path, options: dict[str, Any]) -> int:
    """The core's front door, no Prefect: ``run_manifest(backend="runware")``."""
    from prefect_flux_erase.run import RunwareConfig, run_manifest

    summary = run_manifest(
        manifest,
        str(out),
        backend="runware",
        runware=RunwareConfig(api_key=BENCH_KEY, base_url=url),
        report=False,
        **options,
    )
    return int(summary.succeeded)


def run_flow(url: str, manifest: str, out: Path, options: dict[str, Any]) -> int:
    """The Prefect flow: ``erase_manifest(backend="runware")``."""
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


def run_naive(url: str, rows: Sequence[Row], out: Path, in_flight: int) -> int:
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


# --------------------------------------------------------------------------- measuring


@dataclass
class Figures:
    """One way's measurements over the repeats (per-row figures in milliseconds)."""

    rate: list[float] = field(default_factory=list)
    client_ms: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)
    emulator_ms: list[float] = field(default_factory=list)
    requests: list[float] = field(default_factory=list)

    def median(self, name: str) -> float:
        values: list[float] = getattr(self, name)
        return statistics.median(values) if values else float("nan")


def _measure(
    name: str,
    rows: int,
    fn: Callable[[], int],
    emu: Emulator,
    server: PrefectServer,
    figures: Figures,
) -> None:
    """Run one way; record rows/s, CPU per row of each process and requests per row.

    CPU is counted from the start until the Prefect server has settled, so that work a way
    leaves behind (task-run events the server writes, the client's own event threads) is
    charged to that way and not to the next.
    """
    client0, emu0 = self_cpu_seconds(), process_cpu_seconds(emu.pid)
    server0 = process_cpu_seconds(server.pid) if server.pid else 0.0
    requests0 = emu.stats()["requests_total"]
    started = time.perf_counter()
    done = fn()
    elapsed = time.perf_counter() - started
    requests = emu.stats()["requests_total"] - requests0
    server.settle()
    client = self_cpu_seconds() - client0
    server_cpu = (process_cpu_seconds(server.pid) - server0) if server.pid else 0.0
    emu_cpu = process_cpu_seconds(emu.pid) - emu0
    if done != rows:
        raise SystemExit(f"{name}: {done} of {rows} rows succeeded")
    figures.rate.append(rows / elapsed)
    figures.client_ms.append(1000 * client / rows)
    figures.server_ms.append(1000 * server_cpu / rows)
    figures.emulator_ms.append(1000 * emu_cpu / rows)
    figures.requests.append(requests / rows)
    print(
        f"  {name:<5} {rows} rows in {elapsed:7.2f} s = {rows / elapsed:7.1f} rows/s; CPU per row "
        f"client {1000 * client / rows:6.2f} ms, Prefect server {1000 * server_cpu / rows:5.2f} "
        f"ms, emulator {1000 * emu_cpu / rows:5.2f} ms; {requests / rows:.3f} requests/row; "
        f"load {load_average()}",
        flush=True,
    )


def _pipeline_options(args: Any) -> dict[str, Any]:
    """Shard settings that keep ``--in-flight`` rows at the API, as the loops do."""
    concurrency = min(args.in_flight, args.shard_size)
    options: dict[str, Any] = {
        "shard_size": args.shard_size,
        "concurrency": concurrency,
        "max_shards_in_flight": max(1, args.in_flight // concurrency),
        # The rows cycle over a few files; the peer erases every row, so the pipeline must
        # too (with dedupe on it would send each distinct file once).
        "dedupe": False,
    }
    options.update(json.loads(args.flow_options))
    return options


def run_payload(
    payload: str,
    rows_n: int,
    ways: list[str],
    emu: Emulator,
    server: PrefectServer,
    work: Path,
    args: Any,
) -> dict[str, Figures]:
    """Every way over one payload, ``--repeat`` times, rotating the order."""
    size = PAYLOADS[payload][0]
    folder = work / payload
    pairs = write_corpus(folder, distinct=8 if size is None else 4, size=size)
    manifest = write_manifest(folder / "manifest.parquet", pairs, rows=rows_n)
    rows = [(f"row-{i:07d}", *pairs[i % len(pairs)]) for i in range(rows_n)]
    options = _pipeline_options(args)
    shown = "256x256" if size is None else f"{size[0]}x{size[1]}"
    print(
        f"\n== {payload}: {rows_n} rows of {shown} JPEG "
        f"({Path(pairs[0][0]).stat().st_size / 1e3:.0f} kB each) and PNG masks; "
        f"{args.in_flight} in flight, ideal {args.in_flight / args.latency:.0f} rows/s; "
        f"door/flow settings {options} (delivery and output type: the pipeline's defaults)",
        flush=True,
    )
    figures = {w: Figures() for w in ways}
    for rep in range(args.repeat):
        order = ways[rep % len(ways) :] + ways[: rep % len(ways)]
        print(f"repeat {rep + 1}/{args.repeat}: {', '.join(order)}", flush=True)
        for way in order:
            out = folder / f"out-{way}-{rep}"
            emu.reset()
            server.settle()
            fn: Callable[[], int]
            if way == "sdk":
                fn = partial(run_sdk, emu.url, rows, out, args.in_flight)
            elif way == "raw":
                fn = partial(run_raw, emu.url, rows, out, args.in_flight)
            elif way == "door":
                fn = partial(run_door, emu.url, manifest, out, options)
            elif way == "flow":
                fn = partial(run_flow, emu.url, manifest, out, options)
            elif way == "naive":
                fn = partial(run_naive, emu.url, rows, out, args.in_flight)
            else:
                raise SystemExit(f"unknown way {way!r}")
            _measure(way, rows_n, fn, emu, server, figures[way])
            shutil.rmtree(out, ignore_errors=True)
    return figures


def _warm(emu: Emulator, work: Path, args: Any) -> None:
    """Pay imports and Prefect's first-flow registration before anything is measured."""
    pairs = write_corpus(work / "warm", distinct=2)
    small = write_manifest(work / "warm" / "m.parquet", pairs, rows=64)
    rows = [(f"row-{i:07d}", *pairs[i % 2]) for i in range(64)]
    run_flow(emu.url, small, work / "warm" / "flow", {"shard_size": 32, "dedupe": False})
    run_door(emu.url, small, work / "warm" / "door", {"shard_size": 32, "dedupe": False})
    run_sdk(emu.url, rows, work / "warm" / "sdk", 16)
    shutil.rmtree(work / "warm", ignore_errors=True)


def _report(payload: str, figures: dict[str, Figures]) -> dict[str, float]:
    print(f"\n{payload}: medians over the repeats (CPU in ms per row)")
    print("| way | rows/s | client CPU | Prefect server CPU | emulator CPU | requests/row |")
    print("|---|---|---|---|---|---|")
    for way, f in figures.items():
        print(
            f"| {way} | {f.median('rate'):.1f} | {f.median('client_ms'):.2f} | "
            f"{f.median('server_ms'):.2f} | {f.median('emulator_ms'):.2f} | "
            f"{f.median('requests'):.3f} |"
        )
    suffix = "" if payload == "small" else "_2mp"
    ratios: dict[str, float] = {}
    if "sdk" in figures:
        sdk = figures["sdk"]
        for way in ("flow", "door"):
            if way in figures:
                ratios[f"rate_{way}_vs_sdk{suffix}"] = figures[way].median("rate") / sdk.median(
                    "rate"
                )
                ratios[f"cpu_{way}_vs_sdk{suffix}"] = figures[way].median("client_ms") / sdk.median(
                    "client_ms"
                )
    if "flow" in figures:
        for way in ("raw", "naive"):
            if way in figures:
                ratios[f"ratio_flow_vs_{way}{suffix}"] = figures["flow"].median("rate") / figures[
                    way
                ].median("rate")
    for name, value in ratios.items():
        print(f"  {name} = {value:.3f}")
    return ratios


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison and print the figures; the last line holds the ratios."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--payloads", default="small,photo", help="comma-separated: small, photo")
    p.add_argument("--rows", type=int, default=PAYLOADS["small"][1], help="rows, small")
    p.add_argument("--photo-rows", type=int, default=PAYLOADS["photo"][1], help="rows, photo")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--latency", type=float, default=0.2)
    p.add_argument("--in-flight", type=int, default=64)
    p.add_argument("--shard-size", type=int, default=256, help="door/flow: rows per shard")
    p.add_argument("--flow-options", default="{}", help="JSON: door/flow option overrides")
    p.add_argument("--ways", default=PAYLOADS["small"][2], help="ways for small")
    p.add_argument("--photo-ways", default=PAYLOADS["photo"][2], help="ways for photo")
    args = p.parse_args(argv)
    payloads = [x for x in args.payloads.split(",") if x]

    print(f"machine: {machine()}; {versions()}; load average {load_average()}")
    work = Path(tempfile.mkdtemp(prefix="flux-erase-throughput-"))
    ratios: dict[str, float] = {}
    try:
        with Emulator(latency=args.latency) as emu, prefect_server() as server:
            print(
                f"emulator {emu.url} (echo, latency {args.latency} s, separate process); "
                f"Prefect API {server.api_url} (test-harness subprocess server, SQLite)"
            )
            _warm(emu, work, args)
            for payload in payloads:
                rows_n = args.rows if payload == "small" else args.photo_rows
                ways_arg = args.ways if payload == "small" else args.photo_ways
                ways = [w for w in ways_arg.split(",") if w]
                figures = run_payload(payload, rows_n, ways, emu, server, work, args)
                ratios.update(_report(payload, figures))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average at the end {load_average()}")
    print(" ".join(f"{k}={v:.3f}" for k, v in ratios.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

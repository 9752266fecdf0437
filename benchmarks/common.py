"""Shared pieces of the benchmarks: an emulator in its own process, a Prefect server that
outlives the measured runs, a small-image corpus and manifests, and process measurements.

Every benchmark runs the Runware emulator as a separate process (``flux-erase emulator``), so
the emulator's work never shares the measured client's GIL, and a real Prefect API server in a
subprocess (Prefect's test harness: a temporary SQLite database, a ``uvicorn`` server on a free
loopback port), so task-run records and events reach a database instead of being dropped at
exit as in ephemeral mode.

Example:
    ```python
    with Emulator(latency=0.2) as emu, prefect_server() as server:
        corpus = write_corpus(workdir, distinct=8)
        manifest = write_manifest(f"{workdir}/m.parquet", corpus, rows=5000)
        ...
        server.settle()             # wait until the API server has caught up
        print(emu.stats()["results_billed"])
    ```
"""

from __future__ import annotations

import contextlib
import io
import os
import platform
import re
import resource
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The package before pyarrow, as in any process that runs the pipeline (the CLI, a deployment,
# a script that imports the flow): it chooses Arrow's allocator, which pyarrow fixes on load.
import prefect_flux_erase  # noqa: F401

# isort: split
import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

# The benchmarks talk to a local server only: no telemetry, no update checks.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "WARNING")

#: Any key: the emulator accepts every non-empty key unless told otherwise.
BENCH_KEY = "rk-benchmark-key"
#: Side of the benchmark images: the model's (and the emulator's) minimum.
IMAGE_SIDE = 256
_SERVING = re.compile(r"serving (http://\S+)")


# --------------------------------------------------------------------------- the emulator


class Emulator:
    """``flux-erase emulator`` in a child process on 127.0.0.1, port 0.

    Example:
        ```python
        with Emulator(latency=0.2) as emu:
            emu.url                      # http://127.0.0.1:PORT/v1
            emu.stats()["requests_total"]
        ```
    """

    def __init__(self, *, latency: float = 0.0, extra: Sequence[str] = ()) -> None:
        self.latency = latency
        self.extra = list(extra)
        self.url = ""
        self.root = ""
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> Emulator:
        command = [
            sys.executable,
            "-m",
            "prefect_flux_erase.cli",
            "emulator",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--latency",
            str(self.latency),
            *self.extra,
        ]
        self._proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        match = _SERVING.search(line)
        if not match:
            self._proc.kill()
            raise RuntimeError(f"the emulator did not start: {line!r}")
        self.url = match.group(1)
        self.root = self.url.rsplit("/v1", 1)[0]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    @property
    def pid(self) -> int:
        """The emulator process id."""
        assert self._proc is not None
        return self._proc.pid

    def stats(self) -> dict[str, Any]:
        """``GET /_emulator/stats``: requests, tasks, ledger."""
        return dict(httpx.get(f"{self.root}/_emulator/stats", timeout=30).json())

    def reset(self) -> None:
        """Forget every task, image, charge and counter (between measured runs)."""
        httpx.post(f"{self.root}/_emulator/reset", timeout=60).raise_for_status()

    def configure(self, **changes: Any) -> None:
        """``POST /_emulator/config`` with ``changes``."""
        httpx.post(f"{self.root}/_emulator/config", json=changes, timeout=30).raise_for_status()


# --------------------------------------------------------------------------- Prefect


@dataclass
class PrefectServer:
    """The Prefect API server of a benchmark (a subprocess) and its process id."""

    api_url: str
    pid: int | None

    def settle(
        self, *, quiet_share: float = 0.05, window: float = 1.0, limit: float = 600
    ) -> float:
        """Wait until the server process uses under ``quiet_share`` of a core; return seconds.

        A burst of task runs leaves the server writing events and states for a while after
        the client is done; measuring the next variant then would charge it for that work.

        Example:
            ```python
            waited = server.settle()
            ```
        """
        if self.pid is None:
            return 0.0
        started = time.monotonic()
        while time.monotonic() - started < limit:
            before = process_cpu_seconds(self.pid)
            time.sleep(window)
            if process_cpu_seconds(self.pid) - before < quiet_share * window:
                break
        return time.monotonic() - started


@contextlib.contextmanager
def prefect_server() -> Iterator[PrefectServer]:
    """Run the block against a Prefect API server in a subprocess (Prefect's test harness).

    Example:
        ```python
        with prefect_server() as server:
            erase_manifest(...)
        ```
    """
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        server = SubprocessASGIServer._instances.get(None)
        process = getattr(server, "server_process", None)
        yield PrefectServer(str(PREFECT_API_URL.value()), process.pid if process else None)


# --------------------------------------------------------------------------- data


#: The large payload of the throughput benchmark: a ~2 MP photo (1600x1200, 1.92 MP).
PHOTO_SIZE = (1600, 1200)


def _photo(seed: int, width: int, height: int | None = None) -> bytes:
    """A JPEG photo stand-in; ``height`` given: the large, photo-like kind.

    The square small ones are the benchmarks' historical 256x256 inputs (a gradient and a
    little grain). The large ones add soft blobs of colour and finer grain, so that they
    compress like a photograph (a 1600x1200 one is ~0.3-0.5 MB at quality 85), not like a
    flat test card.
    """
    rng = np.random.default_rng(seed)
    if height is None:
        side = width
        yy, xx = np.mgrid[0:side, 0:side]
        base = np.stack([xx, yy, (xx + yy) // 2], axis=-1) * 255 // side
        noise = rng.integers(0, 12, size=(side, side, 3))
        rgb = np.clip(base + noise, 0, 255).astype(np.uint8)
    else:
        yf, xf = np.mgrid[0:height, 0:width].astype(np.float32)
        scale = float(max(width, height))
        grad = np.stack([xf, yf, (xf + yf) / 2], axis=-1) * 255 / scale
        for _ in range(6):  # soft blobs of colour, like objects out of focus
            cx, cy = rng.uniform(0, width), rng.uniform(0, height)
            r = rng.uniform(0.05, 0.3) * scale
            blob = np.exp(-((xf - cx) ** 2 + (yf - cy) ** 2) / (2 * r * r))[..., None]
            grad = grad * (1 - 0.6 * blob) + 0.6 * blob * rng.uniform(0, 255, size=3)
        grain = rng.normal(0, 6, size=(height, width, 3))
        rgb = np.clip(grad + grain, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, "JPEG", quality=85)
    return buf.getvalue()


def _mask(seed: int, width: int, height: int | None = None) -> bytes:
    height = height or width
    arr = np.zeros((height, width), np.uint8)
    side = min(width, height)
    lo = side // 4 + (seed % 8) * 4
    arr[lo : lo + side // 3, lo : lo + side // 3] = 255
    buf = io.BytesIO()
    Image.fromarray(arr, "L").save(buf, "PNG")
    return buf.getvalue()


def write_corpus(
    root: str | Path,
    *,
    distinct: int = 8,
    side: int = IMAGE_SIDE,
    size: tuple[int, int] | None = None,
) -> list[Any]:
    """Write ``distinct`` JPEG photos and PNG masks; return their (image, mask) paths.

    The images are ``side`` x ``side`` (256 by default), or ``size`` = (width, height).

    Example:
        ```python
        pairs = write_corpus("/tmp/bench", distinct=8)
        photos = write_corpus("/tmp/bench-2mp", distinct=4, size=PHOTO_SIZE)
        ```
    """
    width, height = size or (side, side)
    folder = Path(root) / "inputs"
    folder.mkdir(parents=True, exist_ok=True)
    pairs = []
    for i in range(distinct):
        image, mask = folder / f"photo-{i}.jpg", folder / f"photo-{i}-mask.png"
        image.write_bytes(_photo(i, width, None if size is None else height))
        mask.write_bytes(_mask(i, width, height))
        pairs.append((str(image), str(mask)))
    return pairs


def write_manifest(uri: str | Path, pairs: Sequence[Any], *, rows: int) -> str:
    """A manifest of ``rows`` rows cycling over ``pairs``, keyed ``row-0000000``…

    Row groups of 64k rows, as a data tool writing a large manifest would use.

    Example:
        ```python
        manifest = write_manifest("/tmp/bench/m.parquet", pairs, rows=5000)
        ```
    """
    images = [pairs[i % len(pairs)][0] for i in range(rows)]
    masks = [pairs[i % len(pairs)][1] for i in range(rows)]
    table = pa.table(
        {
            "image_uri": pa.array(images, pa.string()),
            "mask_uri": pa.array(masks, pa.string()),
            "row_key": pa.array([f"row-{i:07d}" for i in range(rows)], pa.string()),
        }
    )
    pq.write_table(table, str(uri), row_group_size=65_536)
    return str(uri)


# --------------------------------------------------------------------------- measurements


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (from ``/proc/PID/stat``).

    Example:
        >>> process_cpu_seconds(os.getpid()) >= 0
        True
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def self_cpu_seconds() -> float:
    """User + system CPU seconds of this process, all threads (``getrusage``).

    Example:
        >>> self_cpu_seconds() > 0
        True
    """
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as ``uptime`` shows them.

    Example:
        >>> len(load_average().split(", "))
        3
    """
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def peak_rss_mb(pid: int | None = None) -> float:
    """Peak resident memory (``VmHWM``) of a process, in MB (1e6 bytes).

    Example:
        >>> peak_rss_mb() > 0
        True
    """
    status = Path(f"/proc/{pid or os.getpid()}/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+)\s+kB", status, re.MULTILINE)
    return int(match.group(1)) * 1024 / 1e6 if match else 0.0


def machine() -> str:
    """One line about the machine the figures come from.

    Example:
        >>> "cores" in machine()
        True
    """
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{os.cpu_count()} cores, {platform.machine()}, Linux {platform.release()}, "
        f"Python {platform.python_version()}, load average {load:.2f} at start"
    )


def versions() -> str:
    """Versions of the parts that matter for the figures.

    Example:
        >>> "prefect" in versions()
        True
    """
    import prefect

    return f"prefect {prefect.__version__}, httpx {httpx.__version__}, pyarrow {pa.__version__}"

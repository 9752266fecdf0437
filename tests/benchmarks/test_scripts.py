"""The benchmark scripts run, tiny, and print their machine-readable last line.

Their figures are measured by hand (``make bench``) on a quiet machine; here they only have to
work, so that a change in the package never leaves them broken. Figures are not checked except
where they are guarantees rather than speeds: a rerun makes no API request.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _run(script: str, *args: str) -> str:
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    env.pop("PREFECT_API_URL", None)  # each script starts its own server
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=BENCHMARKS,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.slow
def test_throughput_compares_every_way_with_the_official_sdk_at_both_payloads() -> None:
    last = _run(
        "throughput.py", "--rows", "96", "--photo-rows", "8", "--repeat", "1",
        "--latency", "0.05", "--shard-size", "32",
    )  # fmt: skip
    names = [
        "rate_flow_vs_sdk", "cpu_flow_vs_sdk", "rate_door_vs_sdk", "cpu_door_vs_sdk",
        "ratio_flow_vs_raw", "ratio_flow_vs_naive", "rate_flow_vs_sdk_2mp", "cpu_flow_vs_sdk_2mp",
        "rate_door_vs_sdk_2mp", "cpu_door_vs_sdk_2mp",
    ]  # fmt: skip
    figures = dict(pair.split("=") for pair in last.split())
    assert sorted(figures) == sorted(names), last
    assert all(float(value) > 0 for value in figures.values()), last


@pytest.mark.slow
def test_scale_reruns_a_finished_manifest_without_a_single_api_request() -> None:
    last = _run(
        "scale.py", "--rows", "200", "--in-flight", "32", "--latency", "0.1",
        "--shard-size", "64", "--concurrency", "32", "--million-rows", "3000",
    )  # fmt: skip
    figures = dict(pair.split("=") for pair in last.split())
    assert figures["rerun_api_requests"] == "0", last
    assert 0 < float(figures["concurrency_ratio"]) <= 1.05, last
    assert 20 < float(figures["rerun_rss_mb"]) < 2000, last


@pytest.mark.slow
def test_memory_measures_each_size_in_a_fresh_process() -> None:
    last = _run("memory.py", "--sizes", "200,400")
    match = re.fullmatch(
        r"rss_200_mb=(\d+\.\d) rss_400_mb=(\d+\.\d) ratio=(\d+\.\d+) "
        r"emulator_rss_200_mb=(\d+\.\d) emulator_rss_400_mb=(\d+\.\d)",
        last,
    )
    assert match, last
    assert 50 < float(match.group(1)) < 2000
    assert 20 < float(match.group(5)) < 2000


@pytest.mark.slow
def test_resume_reruns_without_a_single_api_request() -> None:
    last = _run("resume.py", "--rows", "300", "--latency", "0.0")
    match = re.fullmatch(r"rerun_api_requests=(\d+) rerun_time_ratio=(\d+\.\d+)", last)
    assert match, last
    assert match.group(1) == "0"


@pytest.mark.slow
def test_dask_workers_compares_one_worker_process_with_two() -> None:
    last = _run("dask_workers.py", "--rows", "8", "--repeat", "1", "--shard-size", "2")
    figures = dict(pair.split("=") for pair in last.split())
    assert sorted(figures) == ["rows_s_1_worker", "rows_s_2_workers", "speedup"], last
    assert float(figures["speedup"]) > 0, last

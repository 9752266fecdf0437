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
def test_throughput_compares_the_three_ways() -> None:
    last = _run("throughput.py", "--rows", "96", "--repeat", "1", "--latency", "0.05")
    match = re.fullmatch(r"ratio_flow_vs_raw=(\d+\.\d+) ratio_flow_vs_naive=(\d+\.\d+)", last)
    assert match, last
    assert float(match.group(1)) > 0
    assert float(match.group(2)) > 0


@pytest.mark.slow
def test_memory_measures_each_size_in_a_fresh_process() -> None:
    last = _run("memory.py", "--sizes", "200,400")
    match = re.fullmatch(r"rss_200_mb=(\d+\.\d) rss_400_mb=(\d+\.\d) ratio=(\d+\.\d+)", last)
    assert match, last
    assert 50 < float(match.group(1)) < 2000


@pytest.mark.slow
def test_resume_reruns_without_a_single_api_request() -> None:
    last = _run("resume.py", "--rows", "300", "--latency", "0.0")
    match = re.fullmatch(r"rerun_api_requests=(\d+) rerun_time_ratio=(\d+\.\d+)", last)
    assert match, last
    assert match.group(1) == "0"

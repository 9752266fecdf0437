"""The nightly deployment, both ways the example gives, against a Prefect API server process.

``python examples/nightly_deployment.py`` serves the flow; ``prefect work-pool create``,
``prefect deploy --all`` (from a copy of ``examples/``) and ``prefect worker start`` deploy it
from ``prefect.yaml`` to a process work pool. Each test checks the deployment the server holds
(schedule, parameters, pool), then starts one run of it, as ``prefect deployment run`` does,
and checks that the run completes and erases that day's manifest.

The server is the session's test harness (a real ``uvicorn`` process on loopback); every CLI
call and process gets it as ``PREFECT_API_URL``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from tests.fixtures.examples import EXAMPLES, load_example

pytestmark = pytest.mark.usefixtures("prefect_harness")
DEPLOYMENT = "nightly-erase/nightly-erase"
DAY = "2024-06-01"


def _api() -> str:
    from prefect.settings import PREFECT_API_URL

    return str(PREFECT_API_URL.value())


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNWARE_")}
    env["PREFECT_API_URL"] = _api()
    return env


def _prefect_command() -> list[str]:
    script = Path(sys.executable).with_name("prefect")
    return [str(script)] if script.exists() else [sys.executable, "-m", "prefect"]


def _prefect(*args: str, cwd: Path) -> str:
    proc = subprocess.run(
        [*_prefect_command(), *args],
        cwd=cwd,
        env={**_env(), "PWD": str(cwd)},  # as after `cd` in a shell: prefect.yaml reads $PWD
        stdin=subprocess.DEVNULL,  # no terminal: the CLI must not wait for an answer
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, f"prefect {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """A dataset with one day's manifest (the four samples) under ``manifests/``."""
    root = tmp_path / "dataset"
    (root / "manifests").mkdir(parents=True)
    samples = load_example("quickstart_offline").write_sample_manifest(tmp_path / "samples")
    pq.write_table(pq.read_table(samples), root / "manifests" / f"{DAY}.parquet")
    return root


@pytest.fixture
def no_deployment() -> Iterator[None]:
    """Each test creates the deployment itself and leaves none behind for the next one."""
    yield
    found = httpx.get(f"{_api()}/deployments/name/{DEPLOYMENT}", timeout=10)
    if found.status_code == 200:
        httpx.delete(f"{_api()}/deployments/{found.json()['id']}", timeout=10)


def _deployment(deadline_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + deadline_s
    while True:
        found = httpx.get(f"{_api()}/deployments/name/{DEPLOYMENT}", timeout=10)
        if found.status_code == 200:
            deployment: dict[str, Any] = found.json()
            return deployment
        assert time.monotonic() < deadline, f"no deployment {DEPLOYMENT}: {found.text}"
        time.sleep(0.25)


def _run_and_wait(dataset: Path, cwd: Path, *watch: subprocess.Popen[str]) -> dict[str, Any]:
    """``prefect deployment run`` for one day on the local backend; the finished flow run."""
    out = _prefect(
        "deployment",
        "run",
        DEPLOYMENT,
        "--param",
        f"dataset={dataset}",
        "--param",
        f"day={DAY}",
        "--param",
        "backend=local",
        cwd=cwd,
    )
    found = re.search(r"UUID:?\s*([0-9a-f]{8}-[0-9a-f-]{27})", out)
    assert found, out
    flow_run_id = found.group(1)
    deadline = time.monotonic() + 300
    while True:
        run: dict[str, Any] = httpx.get(f"{_api()}/flow_runs/{flow_run_id}", timeout=10).json()
        if run["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return run
        for proc in watch:
            assert proc.poll() is None, f"{proc.args} exited: {proc.communicate()[0][-3000:]}"
        assert time.monotonic() < deadline, f"flow run still {run['state_type']}"
        time.sleep(0.5)


def _stop(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.communicate()[0]


def _check_erased(dataset: Path) -> None:
    results = pq.read_table(dataset / "erased" / DAY / "results.parquet").to_pylist()
    assert [r["status"] for r in results] == ["succeeded"] * 4
    assert all(Path(r["output_uri"][0]).is_file() for r in results)


def _schedule(deployment: dict[str, Any]) -> tuple[str, str, bool]:
    (entry,) = deployment["schedules"]
    return (entry["schedule"]["cron"], entry["schedule"]["timezone"], entry["active"])


def test_served_deployment_is_scheduled_nightly_and_runs_on_demand(
    dataset: Path, tmp_path: Path, no_deployment: None
) -> None:
    serve = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "nightly_deployment.py")],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deployment = _deployment()
        run = _run_and_wait(dataset, tmp_path, serve)
    finally:
        output = _stop(serve)

    assert _schedule(deployment) == ("0 2 * * *", "UTC", True)
    assert deployment["parameters"]["dataset"] == "s3://datasets/street-scenes"
    assert deployment["work_pool_name"] is None  # served: the serving process runs it
    assert run["state_type"] == "COMPLETED", output[-3000:]
    _check_erased(dataset)


def test_prefect_yaml_deploys_to_a_process_pool_whose_worker_runs_it(
    dataset: Path, tmp_path: Path, no_deployment: None
) -> None:
    project = tmp_path / "examples"  # a copy: the deployment must not depend on the checkout
    shutil.copytree(EXAMPLES, project, ignore=shutil.ignore_patterns("__pycache__"))
    pools = httpx.post(f"{_api()}/work_pools/filter", json={}, timeout=10).json()
    if "image-cleaning" not in {p["name"] for p in pools}:
        _prefect("work-pool", "create", "image-cleaning", "--type", "process", cwd=tmp_path)

    _prefect("deploy", "--all", cwd=project)
    deployment = _deployment(deadline_s=5)
    worker = subprocess.Popen(
        [*_prefect_command(), "worker", "start", "--pool", "image-cleaning"],
        cwd=tmp_path,
        env=_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        run = _run_and_wait(dataset, tmp_path, worker)
    finally:
        output = _stop(worker)

    assert _schedule(deployment) == ("0 2 * * *", "UTC", True)
    assert deployment["work_pool_name"] == "image-cleaning"
    assert deployment["entrypoint"] == "nightly_deployment.py:nightly_erase"
    limit = deployment.get("global_concurrency_limit") or {}  # Prefect 3.4+: a GCL object
    assert limit.get("limit", deployment.get("concurrency_limit")) == 1, deployment
    assert deployment["parameters"]["credentials_block"] == "runware"
    (step,) = deployment["pull_steps"]
    directory = step["prefect.deployments.steps.set_working_directory"]["directory"]
    assert Path(directory).resolve() == project.resolve()  # "{{ $PWD }}" at deploy time
    assert run["state_type"] == "COMPLETED", output[-3000:]
    _check_erased(dataset)

"""A flow run cancelled through Prefect's API mid-run: it stops within 10 s, ends ``Cancelled``
with what was done committed, and the same flow run again completes every row, charging each
result once.

The flow runs in a process of its own against a real Prefect server (the test harness); the
test cancels it as the UI's Cancel button does (``Cancelling`` through the API) once about half
the rows were charged.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from prefect_flux_erase.emulator import EmulatorServer
from tests.fixtures.corpus import (
    assert_each_result_charged_once,
    cycled_rows,
    results,
    shared_pairs,
    write_manifest,
)
from tests.reliability.crash_child import run

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

ROWS = 1000
REPO = Path(__file__).resolve().parents[2]


def _flow_run_writing_to(output: str, timeout: float = 120) -> Any:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState
    from prefect.client.schemas.filters import FlowRunFilterStateType as StateTypes
    from prefect.client.schemas.objects import StateType

    running = FlowRunFilter(state=FlowRunFilterState(type=StateTypes(any_=[StateType.RUNNING])))
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            for flow_run in client.read_flow_runs(flow_run_filter=running):
                if flow_run.parameters.get("output") == output:
                    return flow_run
            time.sleep(0.1)
    raise AssertionError(f"no running flow run writes to {output}")


def test_a_flow_run_cancelled_through_the_api_stops_cleanly_and_resumes(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL
    from prefect.states import Cancelling

    root = str(tmp_path)
    manifest = write_manifest(f"{root}/m.parquet", cycled_rows(shared_pairs(root), ROWS))
    output = f"{root}/out"
    emu.configure(latency=0.05)
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    command = [sys.executable, "-m", "tests.reliability.crash_child", manifest, output, emu.url]
    log = tmp_path / "child.log"
    with log.open("w") as out:
        child = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=out)
        try:
            flow_run = _flow_run_writing_to(output)
            deadline = time.monotonic() + 300
            while emu.stats()["results_billed"] < ROWS // 2:
                assert child.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, "half the rows never got charged"
                time.sleep(0.01)
            with get_client(sync_client=True) as client:
                client.set_flow_run_state(flow_run.id, Cancelling(message="from the test"))
            asked = time.monotonic()
            child.wait(timeout=120)
            took = time.monotonic() - asked
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()

    assert took < 10, f"the flow run took {took:.1f} s to stop:\n{log.read_text()[-3000:]}"
    with get_client(sync_client=True) as client:
        final = client.read_flow_run(flow_run.id).state
    assert final is not None
    assert final.is_cancelled(), (final, log.read_text()[-3000:])
    assert "rows are done and committed" in (final.message or "")
    assert not Path(output, "results.parquet").exists()
    emu.wait_idle()
    assert emu.stats()["results_billed"] < ROWS

    state = run(manifest, output, emu.url)

    assert state.is_completed(), state.message
    got = results(output)
    assert [r["row_index"] for r in got] == list(range(ROWS))
    assert {r["status"] for r in got} == {"succeeded"}
    emu.wait_idle()
    assert_each_result_charged_once(emu.stats()["billed"], got)

"""Crash and resume: the flow, in its own process, is killed with SIGKILL mid-run; a rerun
completes every row, skips what was committed and charges nothing twice.

The test watches the emulator's ledger and kills the child once about half the rows were
charged: shards are then committed, in flight (submitted, maybe finished, not committed) and
not started. The rerun must (1) leave committed shards alone (no request for their rows),
(2) recover in-flight rows through their deterministic task UUIDs (``conflictTaskUUID`` →
``getResponse``, no second charge) and (3) erase the rest.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from prefect_flux_erase.emulator import EmulatorServer
from tests.fixtures.corpus import (
    assert_each_result_charged_once,
    cycled_rows,
    results,
    shared_pairs,
    write_manifest,
)
from tests.reliability.crash_child import SHARD_SIZE, run

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

ROWS = 1000
SHARDS = ROWS // SHARD_SIZE
REPO = Path(__file__).resolve().parents[2]


def _kill_after_half_charged(command: list[str], emu: EmulatorServer, log: Path) -> int:
    """Start the child, SIGKILL it once half the rows are charged; return the charged count."""
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    with log.open("w") as out:
        child = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=out)
        deadline = time.monotonic() + 300
        try:
            while time.monotonic() < deadline and child.poll() is None:
                charged = emu.stats()["results_billed"]
                if charged >= ROWS // 2:
                    child.send_signal(signal.SIGKILL)
                    child.wait(timeout=30)
                    return int(charged)
                time.sleep(0.01)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    raise AssertionError(f"the child ended (exit {child.returncode}) before half the rows: "
                         f"{log.read_text()[-2000:]}")  # fmt: skip


def test_killed_run_resumes_every_row_without_charging_any_twice(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    root = str(tmp_path)
    manifest = write_manifest(f"{root}/m.parquet", cycled_rows(shared_pairs(root), ROWS))
    output = f"{root}/out"
    emu.configure(latency=0.05)
    command = [sys.executable, "-m", "tests.reliability.crash_child", manifest, output, emu.url]

    charged_at_kill = _kill_after_half_charged(command, emu, tmp_path / "child.log")

    emu.wait_idle()  # what the child had in flight finishes (and is charged) on the server
    parts = sorted((tmp_path / "out" / "_parts").glob("shard-*.parquet"))
    committed = {int(p.stem.split("-")[1]): pq.read_table(p).to_pylist() for p in parts}
    assert 0 < len(committed) < SHARDS, f"{len(committed)} of {SHARDS} shards committed"
    assert ROWS // 2 <= charged_at_kill < ROWS
    before = emu.stats()
    assert before["results_billed"] < ROWS

    state = run(manifest, output, emu.url)

    assert state.is_completed(), state.message
    rows = results(output)
    assert [r["row_index"] for r in rows] == list(range(ROWS))
    assert {r["status"] for r in rows} == {"succeeded"}
    emu.wait_idle()
    after = emu.stats()
    assert_each_result_charged_once(after["billed"], rows)
    assert after["results_billed"] == ROWS
    # Committed shards were skipped: the rerun sent a task for every other row, and only them.
    uncommitted_rows = ROWS - sum(len(r) for r in committed.values())
    sent = after["requests_by_task_type"]["imageInference"]
    sent -= before["requests_by_task_type"]["imageInference"]
    assert sent == uncommitted_rows
    for index, part in committed.items():
        final = rows[index * SHARD_SIZE : (index + 1) * SHARD_SIZE]
        assert [r["task_uuid"] for r in final] == [r["task_uuid"] for r in part]
        assert not any(r["resumed"] for r in final)
    # In-flight rows were recovered by task UUID, not resubmitted as new tasks.
    recovered = [r for r in rows if r["resumed"]]
    assert recovered, "no row was in flight at the kill"
    assert len(recovered) == after["conflicts"] - before["conflicts"]
    assert after["tasks_accepted"] == ROWS

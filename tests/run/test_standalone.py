"""The core stands alone: the front door runs a manifest end to end where Prefect is missing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from prefect_flux_erase.emulator import EmulatorServer
from tests.fixtures.builders import BAD_INPUT_CODES, write_bad_inputs, write_inputs, write_manifest

ROOT = Path(__file__).resolve().parents[2]


def _run_child(manifest: str, output: str, backend: str, url: str | None = None) -> Any:
    args = [sys.executable, "-m", "tests.run.standalone_child", manifest, output, backend]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [*args, *([url] if url else [])],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("backend", ["local", "runware"])
def test_front_door_runs_and_resumes_a_manifest_without_prefect(
    tmp_path: Path, emu: EmulatorServer, backend: str
) -> None:
    """Good and bad rows, then a rerun, with `import prefect` failing in the process: every row
    once with its code, the bad rows never sent, and the rerun sends nothing."""
    root = str(tmp_path)
    good = write_inputs(root, 5)
    bad = write_bad_inputs(root)
    manifest = write_manifest(f"{root}/m.parquet", good + bad)
    output = f"{root}/out"

    url = emu.url if backend == "runware" else None

    first = _run_child(manifest, output, backend, url)
    requests_of_first_run = emu.stats()["requests_total"]
    rerun = _run_child(manifest, output, backend, url)

    assert first["orchestrator_modules"] == rerun["orchestrator_modules"] == []
    assert first["outcome"] == rerun["outcome"] == "tooManyFailedRows"
    assert first["rows"] == len(good) + len(bad)
    assert first["succeeded"] == len(good)
    assert rerun["shards_skipped"] == rerun["shards"]
    assert rerun["resumed"] == 0
    table = pq.read_table(f"{output}/results.parquet").to_pylist()
    by_key = {row["row_key"]: row for row in table}
    assert len(by_key) == len(table) == len(good) + len(bad)  # every row exactly once
    for row in good:
        assert by_key[row["row_key"]]["status"] == "succeeded"
        assert Path(by_key[row["row_key"]]["output_uri"][0]).exists()
    for code in BAD_INPUT_CODES:
        assert by_key[code]["status"] == "failed"
        assert by_key[code]["error_code"] == code
    assert by_key["../../escape"]["error_code"] == "unsafeRowKey"
    stats = emu.stats()
    if backend == "runware":
        # Only the good rows reached the API, each billed once; the rerun sent nothing.
        assert stats["tasks_accepted"] == len(good)
        assert len(stats["billed"]) == len(good)
        assert requests_of_first_run > 0
        assert stats["requests_total"] == requests_of_first_run
    else:
        assert stats["requests_total"] == 0

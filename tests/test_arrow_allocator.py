"""The pipeline's choice of Arrow allocator, checked in fresh interpreters (it is process-wide)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from prefect_flux_erase import manifest_reader
from prefect_flux_erase.flows import erase_images
from tests.tasks.builders import write_inputs

PROBE = """
import pyarrow as pa
from prefect_flux_erase.manifest_reader import prefer_system_allocator
before = pa.default_memory_pool().backend_name
chosen = prefer_system_allocator()
print(before, chosen, pa.default_memory_pool().backend_name)
"""


def _run(code: str, **env: str) -> list[str]:
    environ = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    environ.update(env)
    done = subprocess.run(
        [sys.executable, "-c", code], env=environ, capture_output=True, text=True, check=True
    )
    return done.stdout.split()


def test_the_system_allocator_replaces_pyarrows_default_pool() -> None:
    before, chosen, after = _run(PROBE)
    assert before != "system"  # pyarrow's wheels default to mimalloc (or jemalloc)
    assert (chosen, after) == ("system", "system")


@pytest.mark.parametrize("pool", ["mimalloc", "system"])
def test_a_pool_the_user_chose_through_the_environment_is_kept(pool: str) -> None:
    before, chosen, after = _run(PROBE, ARROW_DEFAULT_MEMORY_POOL=pool)
    assert before == chosen == after == pool


@pytest.mark.usefixtures("prefect_harness")
def test_a_flow_run_switches_its_process_to_the_system_allocator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    pa.set_memory_pool(pa.mimalloc_memory_pool())
    manifest_reader.prefer_system_allocator.cache_clear()
    try:
        rows = write_inputs(str(tmp_path), 2)
        pairs = [(r["image_uri"], r["mask_uri"]) for r in rows]
        summary = erase_images(pairs, f"{tmp_path}/out", local_engine="echo", report=False)
        assert summary.succeeded == 2
        assert pa.default_memory_pool().backend_name == "system"
    finally:
        manifest_reader.prefer_system_allocator.cache_clear()
        manifest_reader.prefer_system_allocator()

"""Arrow's allocator: chosen when pyarrow loads, so each case runs in a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

REPORT = "import os, pyarrow as pa; print(pa.default_memory_pool().backend_name, "
REPORT += "os.environ.get('ARROW_DEFAULT_MEMORY_POOL', '-'))"


def _run(code: str, **env: str) -> list[str]:
    environ = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    environ.update(env)
    done = subprocess.run(
        [sys.executable, "-c", code], env=environ, capture_output=True, text=True, check=True
    )
    return done.stdout.split()


def test_importing_the_package_first_gives_arrow_the_system_allocator() -> None:
    assert _run("import prefect_flux_erase\n" + REPORT) == ["system", "system"]


def test_the_flow_module_alone_is_enough() -> None:
    # Deployments import the flow by module path, not the package's top level first.
    assert _run("import prefect_flux_erase.flows.manifest_flow\n" + REPORT) == ["system", "system"]


@pytest.mark.parametrize("pool", ["mimalloc", "jemalloc", "system"])
def test_a_pool_the_user_chose_is_kept(pool: str) -> None:
    backend, variable = _run("import prefect_flux_erase\n" + REPORT, ARROW_DEFAULT_MEMORY_POOL=pool)
    assert variable == pool
    if pool != "jemalloc":  # some pyarrow builds lack jemalloc and fall back
        assert backend == pool


def test_a_process_that_loaded_pyarrow_first_is_left_alone() -> None:
    backend, variable = _run("import pyarrow\nimport prefect_flux_erase\n" + REPORT)
    assert variable == "-"  # not even for the processes it starts later
    assert backend != "system"

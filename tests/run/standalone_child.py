"""Run the front door over a manifest in a process where Prefect and Airflow cannot be
imported; print what happened as JSON. Used by tests/run/test_standalone.py.

Usage: python -m tests.run.standalone_child MANIFEST OUTPUT BACKEND [BASE_URL]
"""

from __future__ import annotations

import importlib.abc
import json
import sys
from typing import Any


class _NoOrchestrators(importlib.abc.MetaPathFinder):
    """Makes ``import prefect`` (and ``airflow``) fail, as on a machine without them."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.split(".")[0] in ("prefect", "airflow"):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
        return None


def main() -> None:
    # Installed here, not at import: pytest imports this module too (for its doctests).
    sys.meta_path.insert(0, _NoOrchestrators())
    manifest, output, backend, *rest = sys.argv[1:]
    from prefect_flux_erase.run import RunwareConfig, TooManyFailedRows, run_manifest

    options: dict[str, Any] = {"backend": backend, "key_column": "row_key", "shard_size": 3}
    if backend == "runware":
        options["runware"] = RunwareConfig(api_key="rk-standalone-test", base_url=rest[0])
    else:
        options["local_engine"] = "echo"
    try:
        summary = run_manifest(manifest, output, **options)
        outcome = "ok"
    except TooManyFailedRows as exc:
        summary, outcome = exc.summary, "tooManyFailedRows"
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("prefect", "airflow"))
    print(json.dumps({"outcome": outcome, **summary.as_dict(), "orchestrator_modules": loaded}))


if __name__ == "__main__":
    main()

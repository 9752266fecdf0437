"""The README's "From plain Python" example runs as written, in a fresh process without Prefect."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[2]
MARKER = "<!-- readme-example: plain-python -->"
#: Runs the snippet with `import prefect` failing, as on a machine without Prefect.
BLOCKER = """
import importlib.abc, sys
class _NoPrefect(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "prefect":
            raise ModuleNotFoundError("No module named 'prefect' (blocked by the test)")
sys.meta_path.insert(0, _NoPrefect())
"""


def readme_example() -> str:
    """The Python block right after the marker in README.md."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    after = text[text.index(MARKER) :]
    match = re.search(r"```python\n(.*?)```", after, re.S)
    assert match is not None
    return match.group(1)


def test_plain_python_example_runs_as_written_without_prefect(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", BLOCKER + readme_example()],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "4 of 4 rows succeeded, 0 failed" in done.stdout
    results = pq.read_table(tmp_path / "plain-python-demo" / "output" / "results.parquet")
    assert results.column("status").to_pylist() == ["succeeded"] * 4
    assert (tmp_path / "plain-python-demo" / "output" / "report.html").exists()

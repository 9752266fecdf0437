"""The offline examples run as written: the quickstart, S3 (on moto's server) and Dask."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import s3fs

from tests.fixtures.examples import EXAMPLES, load_example

pytestmark = pytest.mark.usefixtures("prefect_harness")
SAMPLES = ["astronaut", "chelsea", "coffee", "rocket"]
JPEG = b"\xff\xd8\xff"


def test_quickstart_erases_the_samples_and_carries_columns_through(tmp_path: Path) -> None:
    quickstart = load_example("quickstart_offline")

    summary = quickstart.main(str(tmp_path / "qs"), engine="echo")

    assert (summary.rows, summary.succeeded, summary.failed) == (4, 4, 0)
    results = pq.read_table(summary.results_uri).to_pylist()
    assert [r["row_key"] for r in results] == SAMPLES
    assert {r["source"] for r in results} == {"scikit-image sample data"}
    for r in results:
        assert Path(r["output_uri"][0]).read_bytes()[:3] == JPEG
    assert summary.report_uri == str(tmp_path / "qs" / "output" / "report.html")


def test_quickstart_script_runs_from_the_command_line(tmp_path: Path) -> None:
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}  # the harness server
    script = str(EXAMPLES / "quickstart_offline.py")
    proc = subprocess.run(
        [sys.executable, script, "--out", str(tmp_path / "cli"), "--engine", "echo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "4 of 4 rows succeeded, 0 failed" in proc.stdout
    assert (tmp_path / "cli" / "output" / "report.html").is_file()


def test_manifest_on_s3_reads_and_writes_only_the_bucket(
    s3_server: str, s3_bucket: str, tmp_path: Path
) -> None:
    on_s3 = load_example("manifest_on_s3")
    root = f"s3://{s3_bucket}/batch-1"
    # What the example's own local server gives (s3fs's instance cache on, as users have it).
    s3_options = {"key": "k", "secret": "s", "client_kwargs": {"endpoint_url": s3_server}}

    summary = on_s3.main(root, s3_options, local_engine="echo")

    assert (summary.rows, summary.succeeded) == (4, 4)
    assert summary.results_uri == f"{root}/erased/results.parquet"
    fs = s3fs.S3FileSystem(**s3_options)
    fs.invalidate_cache()
    images = sorted(fs.ls(f"{s3_bucket}/batch-1/erased/images"))
    assert images == [f"{s3_bucket}/batch-1/erased/images/{n}.jpg" for n in SAMPLES]
    assert fs.cat(images[0])[:3] == JPEG
    assert fs.exists(f"{s3_bucket}/batch-1/erased/report.html")
    assert not any(tmp_path.iterdir())  # nothing was written locally


def test_dask_example_runs_the_shards_on_a_local_cluster(tmp_path: Path) -> None:
    from prefect_dask import DaskTaskRunner

    dask_example = load_example("dask_cluster")
    assert isinstance(dask_example.dask_erase_manifest(2).task_runner, DaskTaskRunner)
    manifest = dask_example.sample_manifest(tmp_path)

    summary = dask_example.main(
        str(manifest), str(tmp_path / "out"), workers=2, shard_size=1, local_engine="echo"
    )

    assert (summary.rows, summary.succeeded, summary.shards) == (4, 4, 4)
    assert sorted(p.name for p in (tmp_path / "out" / "images").iterdir()) == [
        f"{n}.jpg" for n in SAMPLES
    ]

"""The front door's progress reports: what a watcher (the CLI's bar) is told as a run goes."""

from __future__ import annotations

from pathlib import Path

from prefect_flux_erase.run import Progress, TooManyFailedRows, listen, run_manifest
from tests.fixtures.builders import write_bad_inputs, write_inputs, write_manifest


def test_a_resumed_run_counts_the_failed_rows_of_the_shards_it_skips(tmp_path: Path) -> None:
    rows = write_inputs(str(tmp_path), 2) + write_bad_inputs(str(tmp_path))[:2]
    manifest = write_manifest(f"{tmp_path}/m.parquet", rows)
    options = {"shard_size": 2, "local_engine": "echo", "report": False, "key_column": "row_key"}
    first = run_manifest(manifest, f"{tmp_path}/out", max_failed_fraction=1.0, **options)
    seen: list[Progress] = []

    with listen(seen.append):
        try:
            again = run_manifest(manifest, f"{tmp_path}/out", **options)
        except TooManyFailedRows as exc:
            again = exc.summary

    assert first.failed == again.failed == 2
    assert again.shards_skipped == 2
    assert [(p.done_rows, p.total_rows, p.failed_rows) for p in seen] == [(4, 4, 2)]

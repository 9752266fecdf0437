"""`erase_manifest` end to end on az://: manifest, inputs and outputs on Azurite, through adlfs."""

from __future__ import annotations

from typing import Any

import pytest

from prefect_flux_erase import storage
from tests.flows.test_erase_manifest import _results, _run
from tests.tasks.builders import write_bad_inputs, write_inputs, write_manifest

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_azure_gives_the_same_results_as_the_other_stores(
    azure_options: dict[str, Any], azure_container: str
) -> None:
    # The shape of test_erase_manifest.py's file/memory/s3 comparison, with the same expectations.
    so = azure_options
    root = f"az://{azure_container}/run"
    rows = write_inputs(root, 4, so) + write_bad_inputs(root, so)[:2]
    manifest = write_manifest(storage.join(root, "m.parquet"), rows, so)

    state = _run(manifest, storage.join(root, "out"), storage_options=so, max_failed_fraction=1.0)

    assert state.is_completed(), state.message
    got = _results(storage.join(root, "out"), so)
    comparable = [
        (
            r["row_key"],
            r["status"],
            r["error_code"],
            r["note"],
            [u.replace(root, "<root>") for u in r["output_uri"]],
        )
        for r in got
    ]
    assert comparable == [
        ("img000", "succeeded", None, "note-0", ["<root>/out/images/img000.jpg"]),
        ("img001", "succeeded", None, "note-1", ["<root>/out/images/img001.jpg"]),
        ("img002", "succeeded", None, "note-2", ["<root>/out/images/img002.jpg"]),
        ("img003", "succeeded", None, "note-3", ["<root>/out/images/img003.jpg"]),
        ("inputNotFound", "failed", "inputNotFound", "note-4", []),
        ("invalidImage", "failed", "invalidImage", "note-5", []),
    ]
    first = storage.read_bytes(storage.join(root, "out/images/img000.jpg"), so)
    assert first[:3] == b"\xff\xd8\xff"
    # Everything the run wrote is in the output root: no temporary object left behind.
    fs, out = storage.resolve(storage.join(root, "out"), so)
    fs.invalidate_cache()
    written = sorted(p.removeprefix(f"{out}/") for p in fs.find(out))
    assert written == [
        "_parts/shard-00000.parquet",
        *(f"images/img{i:03d}.jpg" for i in range(4)),
        "results.parquet",
    ]

"""`erase_images`: a list of pairs becomes a small manifest run by `erase_manifest`."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from prefect_flux_erase.flows import erase_images
from prefect_flux_erase.run.spec import RunConfigError
from tests.fixtures.builders import write_inputs

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_pairs_as_tuples_and_dicts_are_erased_and_a_repeat_resumes(tmp_path: Path) -> None:
    rows = write_inputs(str(tmp_path), 3)
    pairs = [
        (rows[0]["image_uri"], rows[0]["mask_uri"]),
        {"image_uri": rows[1]["image_uri"], "mask_uri": rows[1]["mask_uri"], "key": "second"},
        {"image": rows[2]["image_uri"], "mask": rows[2]["mask_uri"], "dilate_pixels": 99},
    ]
    options = {"local_engine": "echo", "report": False, "max_failed_fraction": 0.5}

    summary = erase_images(pairs, f"{tmp_path}/out", **options)
    again = erase_images(pairs, f"{tmp_path}/out", **options)

    assert (summary.succeeded, summary.failed) == (2, 1)
    table = pq.read_table(f"{tmp_path}/out/results.parquet").to_pylist()
    assert [r["row_key"] for r in table] == ["000000", "second", "000002"]
    assert [r["error_code"] for r in table] == [None, None, "invalidOption"]
    assert (tmp_path / "out" / "images" / "second.jpg").exists()
    assert again.shards_skipped == again.shards == 1


def test_a_malformed_pair_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RunConfigError, match=r"pairs\[0\]"):
        erase_images.fn(["just-one-uri"], f"{tmp_path}/out")

"""Duplicate row keys are found across shards and files, exactly, before any shard runs."""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prefect_flux_erase import storage
from prefect_flux_erase.manifest.keys import mark_duplicate_keys
from prefect_flux_erase.manifest.plan import ManifestSpec, plan_manifest


def _write(uri: str, columns: dict[str, list[Any]]) -> None:
    buf = io.BytesIO()
    pq.write_table(pa.table(columns), buf, row_group_size=3)
    storage.write_bytes(uri, buf.getvalue())


def _duplicates(spec: ManifestSpec, shard_size: int) -> list[tuple[tuple[int, int], ...]]:
    plan = mark_duplicate_keys(spec, plan_manifest(spec, shard_size=shard_size))
    return [s.duplicates for s in plan.shards]


def test_later_rows_with_a_seen_key_are_marked_with_the_first_row_across_files_and_shards() -> None:
    root = "memory://keys/across"
    _write(
        f"{root}/a.parquet",
        {
            "image_uri": list("abcde"),
            "mask_uri": list("mmmmm"),
            "row_key": ["x", "y", "x", "z", "ü w"],
        },
    )
    _write(
        f"{root}/b.parquet",
        {"image_uri": list("fgh"), "mask_uri": list("mmm"), "row_key": ["ü w", None, "y"]},
    )

    found = _duplicates(ManifestSpec(root), shard_size=2)

    # Shards: a[0:2] a[2:4] a[4:5] b[0:2] b[2:3]; global rows 0-4 then 5-7.
    assert found == [(), ((2, 0),), (), ((5, 4),), ((7, 1),)]


def test_no_duplicates_no_key_column_or_integer_keys_are_handled() -> None:
    root = "memory://keys/plain"
    _write(
        f"{root}/m.parquet",
        {"image_uri": list("abcd"), "mask_uri": list("mmmm"), "id": [7, 8, 7, 9]},
    )

    assert _duplicates(ManifestSpec(f"{root}/m.parquet"), 10) == [()]  # derived keys
    assert _duplicates(ManifestSpec(f"{root}/m.parquet", key_column="id"), 10) == [((2, 0),)]


@pytest.mark.parametrize("keys", [["a", "b", "c"], ["same", "same", "same"]])
def test_plan_is_unchanged_without_duplicates_and_every_repeat_points_at_the_first(
    keys: list[str],
) -> None:
    uri = f"memory://keys/param-{keys[0]}/m.parquet"
    _write(uri, {"image_uri": ["1", "2", "3"], "mask_uri": ["m", "m", "m"], "row_key": keys})
    spec = ManifestSpec(uri)
    plan = plan_manifest(spec, shard_size=10)

    marked = mark_duplicate_keys(spec, plan)

    if len(set(keys)) == 3:
        assert marked is plan
    else:
        assert marked.shards[0].duplicates == ((1, 0), (2, 0))

"""manifest.py over real backends: planning from footers, shard reads, keys, errors, memory."""

from __future__ import annotations

import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from prefect_flux_erase import storage
from prefect_flux_erase.manifest import reader as manifest_reader
from prefect_flux_erase.manifest.plan import (
    ManifestError,
    ManifestRow,
    ManifestSpec,
    derive_row_key,
    plan_manifest,
    read_shard,
)
from prefect_flux_erase.results.assemble import passthrough_columns
from tests.fixtures.manifests import put_parquet, sample_table
from tests.fixtures.roots import Root, root, serve_directory

__all__ = ["root"]


@pytest.fixture(autouse=True)
def _fresh_cursors() -> Iterator[None]:
    manifest_reader.close_cursors()
    yield
    manifest_reader.close_cursors()


def read_all(spec: ManifestSpec, shard_size: int) -> list[ManifestRow]:
    plan = plan_manifest(spec, shard_size=shard_size)
    return [row for shard in plan.shards for row in read_shard(spec, shard)]


def assert_rows_match(rows: list[ManifestRow], table: pa.Table) -> None:
    assert [r.index for r in rows] == list(range(table.num_rows))
    expected = table.to_pylist()
    assert [r.values for r in rows] == expected
    assert [r.image_uri for r in rows] == [e["image_uri"] for e in expected]
    assert [r.mask_uri for r in rows] == [e["mask_uri"] for e in expected]
    assert [r.dilate_pixels for r in rows] == [e["dilate_pixels"] for e in expected]


# --------------------------------------------------------------------------- sharding


@pytest.mark.parametrize("row_group_size", [7, 10_000], ids=["many-small-groups", "one-group"])
def test_every_row_read_exactly_once_in_order_on_every_backend(
    root: Root, row_group_size: int
) -> None:
    table = sample_table(250)
    uri = root.join("manifest.parquet")
    put_parquet(uri, table, root.options, row_group_size=row_group_size)
    spec = ManifestSpec(uri, storage_options=root.options)
    plan = plan_manifest(spec, shard_size=20)
    assert plan.num_rows == 250
    assert [(s.row_start, s.row_stop) for s in plan.shards][-2:] == [(220, 240), (240, 250)]
    assert [s.global_start for s in plan.shards] == list(range(0, 250, 20))
    assert plan.schema.field("taken").type == pa.timestamp("us", tz="UTC")
    rows = [row for shard in plan.shards for row in read_shard(spec, shard)]
    assert_rows_match(rows, table)
    assert [r.key for r in rows] == [
        derive_row_key(i, r.image_uri, r.mask_uri) for i, r in enumerate(rows)
    ]


def test_shards_read_out_of_order_and_concurrently_inside_one_row_group(tmp_path: Path) -> None:
    table = sample_table(3000)
    uri = str(tmp_path / "one-group.parquet")
    pq.write_table(table, uri, row_group_size=3000)
    spec = ManifestSpec(uri)
    plan = plan_manifest(spec, shard_size=37)
    order = list(plan.shards)
    random.Random(7).shuffle(order)
    with ThreadPoolExecutor(max_workers=4) as pool:
        shards_rows = list(pool.map(lambda s: read_shard(spec, s), order))
    by_index = {row.index: row for rows in shards_rows for row in rows}
    assert len(by_index) == sum(len(rows) for rows in shards_rows) == 3000
    assert_rows_match([by_index[i] for i in range(3000)], table)


def test_in_order_shards_continue_a_cursor_instead_of_decoding_again(tmp_path: Path) -> None:
    uri = str(tmp_path / "one-group.parquet")
    pq.write_table(sample_table(4000), uri, row_group_size=4000)
    spec = ManifestSpec(uri)
    plan = plan_manifest(spec, shard_size=100)
    before = manifest_reader.skipped_rows
    for shard in plan.shards:
        read_shard(spec, shard)
    assert manifest_reader.skipped_rows == before  # nothing decoded only to be skipped
    manifest_reader.close_cursors()
    read_shard(spec, plan.shards[30])
    assert manifest_reader.skipped_rows - before == 3000  # a cold cursor skips to its range


def test_rewritten_file_is_never_served_from_a_stale_cursor(root: Root) -> None:
    uri = root.join("m.parquet")
    put_parquet(uri, sample_table(300), root.options, row_group_size=300)
    spec = ManifestSpec(uri, storage_options=root.options)
    plan = plan_manifest(spec, shard_size=100)
    read_shard(spec, plan.shards[0])  # leaves a cursor at row 100
    put_parquet(uri, sample_table(300, start=5000), root.options, row_group_size=300)
    rows = read_shard(spec, plan_manifest(spec, shard_size=100).shards[1])
    assert rows[0].image_uri == "s3://data/img/05100.png"


def test_dataset_directory_reads_its_files_in_order_and_skips_pipeline_output(
    root: Root,
) -> None:
    tables = [sample_table(30, 0), sample_table(25, 30), sample_table(10, 55)]
    put_parquet(root.join("data", "a.parquet"), tables[0], root.options)
    put_parquet(root.join("data", "b.parquet"), tables[1], root.options)
    put_parquet(root.join("data", "c", "d.parquet"), tables[2], root.options)
    junk = sample_table(3, 900)
    for name in [
        "_parts/shard-00000.parquet",
        "out/_parts/shard-00001.parquet",
        "out/images/x.parquet",
        "report/r.parquet",
        "results.parquet",
        "out/results.parquet",
        ".hidden.parquet",
        "_temporary/x.parquet",
    ]:
        put_parquet(root.join("data", *name.split("/")), junk, root.options)
    storage.write_bytes(root.join("data", "_SUCCESS"), b"", root.options)
    storage.write_bytes(root.join("data", "notes.txt"), b"not parquet", root.options)
    spec = ManifestSpec(root.join("data"), storage_options=root.options)
    plan = plan_manifest(spec, shard_size=20)
    assert [s.file.rsplit("/", 1)[-1] for s in plan.shards] == [
        "a.parquet", "a.parquet", "b.parquet", "b.parquet", "d.parquet"
    ]  # fmt: skip
    assert [s.global_start for s in plan.shards] == [0, 20, 30, 50, 55]
    rows = read_all(spec, 20)
    assert_rows_match(rows, pa.concat_tables(tables))


def test_glob_selects_matching_files(tmp_path: Path) -> None:
    for i in range(3):
        pq.write_table(sample_table(4, i * 4), tmp_path / f"batch-{i}.parquet")
    plan = plan_manifest(ManifestSpec(str(tmp_path / "batch-[02].parquet")), shard_size=10)
    assert [s.file.rsplit("/", 1)[-1] for s in plan.shards] == [
        "batch-0.parquet",
        "batch-2.parquet",
    ]


def test_plan_reads_footers_only(root: Root, monkeypatch: pytest.MonkeyPatch) -> None:
    put_parquet(root.join("m.parquet"), sample_table(40), root.options, row_group_size=8)

    def no_data(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("planning must not read row data")

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", no_data)
    monkeypatch.setattr(pq.ParquetFile, "iter_batches", no_data)
    monkeypatch.setattr(pq.ParquetFile, "read", no_data)
    plan = plan_manifest(ManifestSpec(root.join("m.parquet"), root.options), shard_size=15)
    assert plan.num_rows == 40


# --------------------------------------------------------------------------- http


@pytest.mark.parametrize("ranges", [True, False], ids=["range-requests", "no-ranges"])
def test_http_manifest_with_and_without_range_support(tmp_path: Path, ranges: bool) -> None:
    table = sample_table(3000)
    pq.write_table(table, tmp_path / "m.parquet", row_group_size=1000)
    # Over 64 KiB: pyarrow's first read is the footer near the end, a Range request that a
    # server without Range support answers with the whole file (the fallback path).
    assert (tmp_path / "m.parquet").stat().st_size > 65_536
    with serve_directory(tmp_path, ranges=ranges) as base:
        rows = read_all(ManifestSpec(f"{base}/m.parquet"), 1200)
    assert_rows_match(rows, table)


# --------------------------------------------------------------------------- keys


def test_derived_keys_are_stable_across_runs(root: Root) -> None:
    put_parquet(root.join("m.parquet"), sample_table(45), root.options)
    spec = ManifestSpec(root.join("m.parquet"), root.options)
    first = [r.key for r in read_all(spec, 10)]
    manifest_reader.close_cursors()
    second = [r.key for r in read_all(spec, 7)]  # other shard sizes: same keys
    assert first == second
    assert first[3] == derive_row_key(3, "s3://data/img/00003.png", None)
    assert len(set(first)) == 45


def test_key_column_values_are_stringified_and_empty_keys_fall_back(tmp_path: Path) -> None:
    table = sample_table(4).append_column("id", pa.array([10, None, 12, 13], pa.int64()))
    pq.write_table(table, tmp_path / "m.parquet")
    rows = read_all(ManifestSpec(str(tmp_path / "m.parquet"), key_column="id"), 10)
    assert [r.key for r in rows] == [
        "10",
        derive_row_key(1, rows[1].image_uri, rows[1].mask_uri),
        "12",
        "13",
    ]


def test_row_key_column_is_used_when_no_key_column_is_named(tmp_path: Path) -> None:
    table = sample_table(2).append_column("row_key", pa.array(["cat", "dog"]))
    pq.write_table(table, tmp_path / "m.parquet")
    spec = ManifestSpec(str(tmp_path / "m.parquet"))
    plan = plan_manifest(spec)
    assert plan.key_column == "row_key"
    assert "row_key" not in passthrough_columns(plan.schema)  # the pipeline writes it itself
    assert [r.key for r in read_all(spec, 10)] == ["cat", "dog"]


def test_dilate_column_is_optional_and_nan_means_none(tmp_path: Path) -> None:
    table = pa.table(
        {"image_uri": ["a", "b"], "mask_uri": ["m", "n"], "grow": pa.array([3.0, float("nan")])}
    )
    pq.write_table(table, tmp_path / "m.parquet")
    without = read_all(ManifestSpec(str(tmp_path / "m.parquet")), 10)
    assert [r.dilate_pixels for r in without] == [None, None]
    named = read_all(ManifestSpec(str(tmp_path / "m.parquet"), dilate_column="grow"), 10)
    assert [r.dilate_pixels for r in named] == [3.0, None]


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("options", "column"),
    [
        ({"image_column": "img"}, "img"),
        ({"mask_column": "mask"}, "mask"),
        ({"key_column": "id"}, "id"),
    ],
)
def test_missing_column_error_names_it_and_lists_the_available_ones(
    tmp_path: Path, options: dict[str, str], column: str
) -> None:
    pq.write_table(sample_table(3), tmp_path / "m.parquet")
    with pytest.raises(ManifestError) as info:
        plan_manifest(ManifestSpec(str(tmp_path / "m.parquet"), **options))  # type: ignore[arg-type]
    assert info.value.code == "manifestColumnMissing"
    assert repr(column) in info.value.message
    assert "image_uri, mask_uri, score, taken, dilate_pixels" in info.value.message


def test_non_string_uri_column_is_rejected(tmp_path: Path) -> None:
    table = pa.table({"image_uri": [1, 2], "mask_uri": ["a", "b"]})
    pq.write_table(table, tmp_path / "m.parquet")
    with pytest.raises(ManifestError, match=r"'image_uri'.*int64") as info:
        plan_manifest(ManifestSpec(str(tmp_path / "m.parquet")))
    assert info.value.code == "manifestColumnType"


def test_unreadable_manifest_names_the_uri(root: Root) -> None:
    uri = root.join("broken.parquet")
    storage.write_bytes(uri, b"this is not parquet at all", root.options)
    with pytest.raises(ManifestError) as info:
        plan_manifest(ManifestSpec(uri, root.options))
    assert info.value.code == "manifestUnreadable"
    assert "broken.parquet" in info.value.message
    assert "Parquet" in info.value.message


def test_missing_and_empty_manifests(root: Root) -> None:
    with pytest.raises(ManifestError) as missing:
        plan_manifest(ManifestSpec(root.join("nope.parquet"), root.options))
    assert missing.value.code == "manifestNotFound"
    put_parquet(root.join("empty", "m.parquet"), sample_table(0), root.options)
    with pytest.raises(ManifestError) as empty:
        plan_manifest(ManifestSpec(root.join("empty"), root.options))
    assert empty.value.code == "manifestEmpty"
    assert "no rows" in empty.value.message


def test_incompatible_files_in_a_dataset_are_named(tmp_path: Path) -> None:
    pq.write_table(sample_table(2), tmp_path / "a.parquet")
    other = sample_table(2).set_column(2, "score", pa.array(["x", "y"]))
    pq.write_table(other, tmp_path / "b.parquet")
    with pytest.raises(ManifestError, match=r"b\.parquet") as info:
        plan_manifest(ManifestSpec(str(tmp_path)))
    assert info.value.code == "manifestSchemaMismatch"


def test_manifest_error_survives_pickling() -> None:
    import pickle

    error = pickle.loads(pickle.dumps(ManifestError("gone", code="manifestNotFound")))
    assert (error.code, error.message) == ("manifestNotFound", "gone")


# --------------------------------------------------------------------------- memory


@pytest.fixture(scope="module")
def big_manifest(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, int]:
    """200,000 rows written as ONE row group (pyarrow's default shape for such a file)."""
    n = 200_000
    ids = pc.utf8_lpad(pa.array(range(n)).cast(pa.string()), 8, "0")
    prefix = "s3://datasets-bucket/batch-42/{}/deep/prefix/photo-"
    table = pa.table(
        {
            "image_uri": pc.binary_join_element_wise(prefix.format("images"), ids, ".png", ""),
            "mask_uri": pc.binary_join_element_wise(prefix.format("masks"), ids, "-m.png", ""),
            "caption": pc.binary_join_element_wise("a caption for photograph ", ids, ""),
            "n": pa.array(range(n), pa.int64()),
        }
    )
    path = str(tmp_path_factory.mktemp("big") / "m.parquet")
    pq.write_table(table, path, row_group_size=n)
    return path, int(table.nbytes)


def test_planning_and_reading_200k_rows_in_one_row_group_keeps_arrow_memory_small(
    big_manifest: tuple[str, int],
) -> None:
    path, table_bytes = big_manifest
    assert pq.ParquetFile(path).metadata.num_row_groups == 1
    default = pa.default_memory_pool()
    tracked = pa.proxy_memory_pool(default)  # its own peak counter, only for this test
    pa.set_memory_pool(tracked)
    try:
        spec = ManifestSpec(path)
        plan = plan_manifest(spec, shard_size=1000)
        seen = 0
        for shard in plan.shards:
            rows = read_shard(spec, shard)
            assert rows[0].index == seen
            assert rows[-1].values["n"] == seen + len(rows) - 1
            seen += len(rows)
    finally:
        pa.set_memory_pool(default)
    assert seen == 200_000
    assert tracked.max_memory() < table_bytes / 3, (tracked.max_memory(), table_bytes)


def test_cursors_of_another_process_are_dropped_not_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = str(tmp_path / "one-group.parquet")
    pq.write_table(sample_table(400), uri, row_group_size=400)
    spec = ManifestSpec(uri)
    plan = plan_manifest(spec, shard_size=100)
    read_shard(spec, plan.shards[0])  # leaves a cursor at row 100
    inherited = [c for group in manifest_reader._cursors.values() for c in group]
    assert len(inherited) == 1
    # As after a fork: the cache was filled by a process with another pid.
    monkeypatch.setattr(manifest_reader, "_owner_pid", -1)
    before = manifest_reader.skipped_rows
    rows = read_shard(spec, plan.shards[1])
    assert rows[0].index == 100
    assert manifest_reader.skipped_rows - before == 100  # a fresh cursor, not the inherited one
    assert inherited[0].position == 100  # the parent's cursor was left untouched


def test_a_file_uri_reads_the_same_rows_as_the_plain_path(tmp_path: Path) -> None:
    table = sample_table(45)
    path = tmp_path / "with space" / "manifest.parquet"
    path.parent.mkdir()
    pq.write_table(table, str(path), row_group_size=10)
    by_path = ManifestSpec(str(path))
    by_uri = ManifestSpec(path.as_uri().replace("%20", " "))
    assert by_uri.uri.startswith("file://")

    rows = {}
    for name, spec in (("path", by_path), ("uri", by_uri)):
        plan = plan_manifest(spec, shard_size=20)
        assert plan.num_rows == 45
        rows[name] = [r for shard in plan.shards for r in read_shard(spec, shard)]
    assert_rows_match(rows["uri"], table)
    assert [r.key for r in rows["uri"]] == [r.key for r in rows["path"]]

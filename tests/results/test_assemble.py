"""Results parts and assembly on local disk, memory:// and S3 (moto)."""

from __future__ import annotations

import math
import random
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prefect_flux_erase import storage
from prefect_flux_erase.manifest.plan import ManifestPlan, ManifestRow, ManifestSpec, plan_manifest
from prefect_flux_erase.manifest.plan import read_shard as read_manifest_shard
from prefect_flux_erase.results import assemble as results
from prefect_flux_erase.results.assemble import (
    ResultsError,
    assemble_results,
    committed_shards,
    part_footers,
    part_uri,
    read_part_outcomes,
    write_part,
)
from prefect_flux_erase.results.outcome_codes import REFETCH_CODES, RESUME_CODES
from prefect_flux_erase.results.row_outcome import RESULT_SCHEMA, RowOutcome
from prefect_flux_erase.results.tally import SummaryTally
from tests.fixtures.manifests import put_parquet, sample_table
from tests.fixtures.roots import Root, root

__all__ = ["root"]

CODES = ("inputNotFound", "invalidMaskDimensions", "providerContentPolicyViolation")


def outcome_for(row: ManifestRow, output: str) -> RowOutcome:
    """A deterministic mix of successes and failures with costs and latencies."""
    i = row.index
    if i % 7 == 0:
        return RowOutcome(
            row_key=row.key,
            row_index=i,
            status="failed",
            error_code=CODES[(i // 7) % len(CODES)],
            error_message=f"row {i}: <b>broken</b> & https://x/y.png?X-Amz-Signature=s3cr3t",
            attempts=1,
        )
    return RowOutcome(
        row_key=row.key,
        row_index=i,
        status="succeeded",
        output_uri=[f"{output}/images/{storage.safe_key(row.key)}.jpg"],
        image_uuid=[f"uuid-{i}"],
        cost=0.0125,
        attempts=1 + i % 2,
        latency_s=float(1 + i % 10),
        task_uuid=f"task-{i}",
        resumed=i % 11 == 0,
    )


def make_plan(
    root: Root, rows: int = 95, shard_size: int = 10
) -> tuple[ManifestSpec, ManifestPlan]:
    table = sample_table(rows).append_column(
        "tags", pa.array([[f"t{i}", "x"] for i in range(rows)], pa.list_(pa.string()))
    )
    table = table.append_column(
        "camera", pa.array(["a" if i % 2 else "b" for i in range(rows)]).dictionary_encode()
    )
    put_parquet(root.join("data", "m.parquet"), table, root.options, row_group_size=13)
    spec = ManifestSpec(root.join("data", "m.parquet"), storage_options=root.options)
    return spec, plan_manifest(spec, shard_size=shard_size)


def commit_all(spec: ManifestSpec, plan: ManifestPlan, output: str, run_key: str) -> None:
    shards = list(plan.shards)
    random.Random(3).shuffle(shards)  # commit order must not matter
    for shard in shards:
        rows = read_manifest_shard(spec, shard)
        outcomes = [outcome_for(r, output) for r in reversed(rows)]  # matched by row_index
        write_part(output, shard.index, run_key, rows, outcomes, spec.storage_options)


# --------------------------------------------------------------------------- parts


def test_part_uri_layout() -> None:
    assert part_uri("s3://b/out/", 12) == "s3://b/out/_parts/shard-00012.parquet"


def test_committed_shards_match_the_run_key_only(root: Root) -> None:
    spec, plan = make_plan(root, rows=40)
    output = root.join("out")
    for shard, key in zip(plan.shards, ["run-a", "run-a", "run-b"], strict=False):
        rows = read_manifest_shard(spec, shard)
        write_part(
            output, shard.index, key, rows, [outcome_for(r, output) for r in rows], root.options
        )
    good = storage.read_bytes(part_uri(output, 0), root.options)
    # Leftovers a crash can leave: a temporary file, a stray, and a truncated final-named part.
    storage.write_bytes(
        root.join("out", "_parts", ".shard-00003.parquet.x.tmp"), good, root.options
    )
    storage.write_bytes(root.join("out", "_parts", "shard-00004.parquet.tmp"), good, root.options)
    storage.write_bytes(part_uri(output, 5), good[: len(good) // 2], root.options)
    assert committed_shards(output, "run-a", root.options) == {0, 1}
    assert committed_shards(output, "run-b", root.options) == {2}
    assert committed_shards(output, "run-c", root.options) == set()
    assert committed_shards(root.join("never-written"), "run-a", root.options) == set()


@pytest.mark.parametrize(
    "code", sorted({*RESUME_CODES, *REFETCH_CODES, "timeoutProvider", "serviceUnavailable"})
)
def test_a_part_with_a_retryable_row_is_not_final(root: Root, code: str) -> None:
    spec, plan = make_plan(root, rows=10)
    output = root.join("out")
    rows = read_manifest_shard(spec, plan.shards[0])
    outcomes = [outcome_for(r, output) for r in rows]
    outcomes[1] = RowOutcome(
        row_key=rows[1].key, row_index=rows[1].index, status="failed", error_code=code
    )
    write_part(output, 0, "run-u", rows, outcomes, root.options)
    assert committed_shards(output, "run-u", root.options) == set()
    outcomes[1] = outcome_for(rows[1], output)
    write_part(output, 0, "run-u", rows, outcomes, root.options)
    assert committed_shards(output, "run-u", root.options) == {0}


def test_a_part_with_final_rows_is_final_unless_retry_failed_names_their_code(
    root: Root,
) -> None:
    spec, plan = make_plan(root, rows=10)
    output = root.join("out")
    rows = read_manifest_shard(spec, plan.shards[0])
    outcomes = [outcome_for(r, output) for r in rows]
    outcomes[1] = RowOutcome(
        row_key=rows[1].key, row_index=rows[1].index, status="failed", error_code="emptyMask"
    )
    write_part(output, 0, "run-f", rows, outcomes, root.options, fingerprints={1: "fp-1"})

    assert committed_shards(output, "run-f", root.options) == {0}
    assert committed_shards(output, "run-f", root.options, retry_failed=frozenset({"*"})) == set()
    named = frozenset({"emptyMask"})
    assert committed_shards(output, "run-f", root.options, retry_failed=named) == set()
    other = frozenset({"uploadFailed"})
    assert committed_shards(output, "run-f", root.options, retry_failed=other) == {0}
    (footer,) = part_footers(output, "run-f", root.options).values()
    assert footer.errors["emptyMask"] == 1
    assert footer.inputs == {1: "fp-1"}
    found = read_part_outcomes(output, 0, "run-f", root.options)
    assert found is not None
    assert found[0][1] == outcomes[1]
    assert read_part_outcomes(output, 0, "another-run", root.options) is None


def test_a_new_run_overwrites_parts_of_another_run(root: Root) -> None:
    spec, plan = make_plan(root, rows=10)
    output = root.join("out")
    rows = read_manifest_shard(spec, plan.shards[0])
    outcomes = [outcome_for(r, output) for r in rows]
    write_part(output, 0, "old-run", rows, outcomes, root.options)
    write_part(output, 0, "new-run", rows, outcomes, root.options)
    assert committed_shards(output, "new-run", root.options) == {0}
    assert committed_shards(output, "old-run", root.options) == set()


@pytest.mark.parametrize("fault", ["missing", "duplicate", "stranger", "wrong-key"])
def test_write_part_refuses_outcomes_that_do_not_match_rows(root: Root, fault: str) -> None:
    spec, plan = make_plan(root, rows=10)
    output = root.join("out")
    rows = read_manifest_shard(spec, plan.shards[0])
    outcomes = [outcome_for(r, output) for r in rows]
    if fault == "missing":
        outcomes.pop(3)
    elif fault == "duplicate":
        outcomes.append(outcomes[2])
    elif fault == "stranger":
        outcomes.append(RowOutcome(row_key="zzz", row_index=999, status="failed"))
    else:
        outcomes[4].row_key = "someone-else"
    with pytest.raises(ResultsError) as info:
        write_part(output, 0, "run", rows, outcomes, root.options)
    assert info.value.code == "outcomeMismatch"
    assert not storage.exists(part_uri(output, 0), root.options)  # nothing half-committed


def test_local_part_write_leaves_no_temporary_files(tmp_path: Any) -> None:
    row = ManifestRow(0, "k", "a.png", "m.png", None, {"image_uri": "a.png", "mask_uri": "m.png"})
    write_part(str(tmp_path), 0, "run", [row], [outcome_for(row, str(tmp_path))])
    assert sorted(p.name for p in (tmp_path / "_parts").iterdir()) == ["shard-00000.parquet"]


def test_part_keeps_pass_through_types_from_the_rows_schema(root: Root) -> None:
    spec, plan = make_plan(root, rows=10)
    output = root.join("out")
    rows = read_manifest_shard(spec, plan.shards[0])
    uri = write_part(output, 0, "run-7", rows, [outcome_for(r, output) for r in rows], root.options)
    fs, path = storage.resolve(uri, root.options)
    with fs.open(path, "rb") as f:
        table = pq.read_table(f)
    assert table.schema.metadata[results.RUN_KEY_METADATA] == b"run-7"
    assert table.schema.field("taken").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("score").type == pa.float32()
    assert table.schema.field("tags").type == pa.list_(pa.string())
    assert table.schema.field("camera").type == pa.dictionary(pa.int32(), pa.string())
    assert table.select(list(RESULT_SCHEMA.names)).schema.equals(RESULT_SCHEMA)
    assert table.column("row_index").to_pylist() == list(range(10))


def test_part_without_any_schema_infers_from_values(tmp_path: Any) -> None:
    rows = [
        ManifestRow(i, f"k{i}", "a.png", "m.png", None, {"image_uri": "a.png", "n": i})
        for i in range(3)
    ]
    uri = write_part(str(tmp_path), 0, "run", rows, [outcome_for(r, str(tmp_path)) for r in rows])
    table = pq.read_table(uri)
    assert table.column("n").to_pylist() == [0, 1, 2]
    assert table.column_names[:2] == ["image_uri", "n"]


# --------------------------------------------------------------------------- assembly


def test_assemble_keeps_every_row_once_in_order_with_types_and_summary(root: Root) -> None:
    spec, plan = make_plan(root, rows=95, shard_size=10)
    output = root.join("out")
    commit_all(spec, plan, output, "run-1")
    summary = assemble_results(output, plan, root.options, run_key="run-1")
    assert summary.results_uri == storage.join(output, "results.parquet")
    fs, path = storage.resolve(summary.results_uri, root.options)
    with fs.open(path, "rb") as f:
        table = pq.read_table(f)
    assert table.column("row_index").to_pylist() == list(range(95))
    source = pq.read_table(fs.open(storage.resolve(spec.uri, root.options)[1], "rb"))
    for name in source.column_names:
        assert table.schema.field(name).type == source.schema.field(name).type, name
        assert table.column(name).to_pylist() == source.column(name).to_pylist(), name
    assert table.select(list(RESULT_SCHEMA.names)).schema.equals(RESULT_SCHEMA)
    failed = [i for i in range(95) if i % 7 == 0]
    assert (summary.rows, summary.failed, summary.succeeded) == (95, len(failed), 95 - len(failed))
    assert summary.resumed == sum(1 for i in range(95) if i % 11 == 0 and i % 7)
    assert math.isclose(summary.total_cost, 0.0125 * (95 - len(failed)))
    assert summary.error_counts == {
        code: sum(1 for i in failed if CODES[(i // 7) % 3] == code) for code in CODES
    }
    assert [f["row_index"] for f in summary.failures] == failed
    assert summary.failures[0]["error_code"] == "inputNotFound"
    assert summary.run_key == "run-1"
    latencies = sorted(float(1 + i % 10) for i in range(95) if i % 7)
    assert summary.p50_latency_s == pytest.approx(latencies[len(latencies) // 2], rel=0.01)
    assert summary.p95_latency_s == pytest.approx(10.0, rel=0.01)


def test_assemble_refuses_missing_parts_and_writes_nothing(root: Root) -> None:
    spec, plan = make_plan(root, rows=30, shard_size=10)
    output = root.join("out")
    for shard in plan.shards[:2]:
        rows = read_manifest_shard(spec, shard)
        write_part(
            output, shard.index, "run", rows, [outcome_for(r, output) for r in rows], root.options
        )
    with pytest.raises(ResultsError, match=r"first: \[2\]") as info:
        assemble_results(output, plan, root.options)
    assert info.value.code == "missingParts"
    assert not storage.exists(storage.join(output, "results.parquet"), root.options)


def test_assemble_refuses_a_part_from_another_run_or_with_wrong_rows(tmp_path: Any) -> None:
    local = Root("local", str(tmp_path))
    spec, plan = make_plan(local, rows=20, shard_size=10)
    output = str(tmp_path / "out")
    commit_all(spec, plan, output, "run")
    with pytest.raises(ResultsError, match="belongs to run") as other:
        assemble_results(output, plan, run_key="another")
    assert other.value.code == "partMismatch"
    rows = read_manifest_shard(spec, plan.shards[1])[:5]  # half a shard
    write_part(output, 1, "run", rows, [outcome_for(r, output) for r in rows])
    with pytest.raises(ResultsError, match=r"not exactly rows 10\.\.19") as short:
        assemble_results(output, plan)
    assert short.value.code == "partMismatch"


def test_results_row_groups_stay_bounded(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(results, "RESULTS_ROW_GROUP_ROWS", 25)
    local = Root("local", str(tmp_path))
    spec, plan = make_plan(local, rows=95, shard_size=10)
    output = str(tmp_path / "out")
    commit_all(spec, plan, output, "run")
    assemble_results(output, plan)
    metadata = pq.ParquetFile(str(tmp_path / "out" / "results.parquet")).metadata
    sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    assert sum(sizes) == 95
    assert max(sizes) <= 25 + 10  # buffered up to the limit plus at most one part


def test_latency_quantiles_are_within_one_percent() -> None:
    tally = SummaryTally("memory://x/results.parquet")
    values = [float(v) for v in range(1, 1001)]
    random.Random(1).shuffle(values)
    n = len(values)
    tally.add(
        pa.table(
            {
                "status": ["succeeded"] * n,
                "resumed": [False] * n,
                "cost": [None] * n,
                "latency_s": values,
                "row_index": list(range(n)),
                "row_key": [str(i) for i in range(n)],
                "error_code": [None] * n,
                "error_message": [None] * n,
            },
            schema=pa.schema(
                [
                    ("status", pa.string()),
                    ("resumed", pa.bool_()),
                    ("cost", pa.float64()),
                    ("latency_s", pa.float64()),
                    ("row_index", pa.int64()),
                    ("row_key", pa.string()),
                    ("error_code", pa.string()),
                    ("error_message", pa.string()),
                ]
            ),
        )
    )
    summary = tally.finish()
    assert summary.p50_latency_s == pytest.approx(500.5, rel=0.01)
    assert summary.p95_latency_s == pytest.approx(950.05, rel=0.01)
    assert summary.total_cost == 0.0

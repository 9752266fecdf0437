"""Results: one committed Parquet part per shard, then one streamed ``results.parquet``.

A shard commits by writing ``{output}/_parts/shard-NNNNN.parquet`` atomically, with the run key
in the file's key-value metadata. A rerun with the same run key skips committed shards
(:func:`committed_shards`); :func:`assemble_results` streams the parts, one at a time and in
shard order, into ``{output}/results.parquet`` while it checks that every row is there exactly
once and computes the :class:`ResultsSummary`.

Example:
    >>> from prefect_flux_erase.manifest.plan import ManifestRow
    >>> row = ManifestRow(index=0, key="cat", image_uri="cat.png", mask_uri="cat-mask.png",
    ...                   dilate_pixels=None, values={"image_uri": "cat.png"})
    >>> done = RowOutcome(row_key="cat", row_index=0, status="succeeded", cost=0.01)
    >>> write_part("memory://doc/results", 0, "run-1", [row], [done])
    'memory://doc/results/_parts/shard-00000.parquet'
    >>> committed_shards("memory://doc/results", "run-1")
    {0}
    >>> committed_shards("memory://doc/results", "another-run")
    set()
"""

from __future__ import annotations

import io
import json
import posixpath
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from prefect_flux_erase import storage
from prefect_flux_erase.errors import FluxEraseError
from prefect_flux_erase.memory import release_unused_memory
from prefect_flux_erase.results.outcome_codes import needs_rerun
from prefect_flux_erase.results.row_outcome import RESULT_COLUMNS, RESULT_FIELDS, RowOutcome
from prefect_flux_erase.results.tally import ResultsSummary, SummaryTally

if TYPE_CHECKING:
    from prefect_flux_erase.manifest.plan import ManifestPlan, ManifestRow

__all__ = [
    "PARTS_DIR",
    "RESULTS_FILE",
    "PartFooter",
    "ResultsError",
    "ResultsSummary",
    "assemble_results",
    "committed_shards",
    "part_footers",
    "part_uri",
    "read_part_outcomes",
    "results_schema",
    "write_part",
]

PARTS_DIR = "_parts"
RESULTS_FILE = "results.parquet"
#: Key-value metadata keys of parts and of ``results.parquet``.
RUN_KEY_METADATA = b"prefect_flux_erase.run_key"
SHARD_METADATA = b"prefect_flux_erase.shard"
IMAGE_COLUMN_METADATA = b"prefect_flux_erase.image_column"
MASK_COLUMN_METADATA = b"prefect_flux_erase.mask_column"
UNFINISHED_METADATA = b"prefect_flux_erase.unfinished_rows"
#: What a rerun needs to know of a part without reading its rows: ``{"errors": {code: rows},
#: "inputs": {row_index: fingerprint}}``, the fingerprints being those of the rows that failed
#: with a final code (see :mod:`~prefect_flux_erase.shards.reruns`).
RERUN_METADATA = b"prefect_flux_erase.rerun"

#: Failures after which the row's task may still have run (and been charged) on the server:
#: a rerun of the same run key polls it by its task UUID instead of losing a paid result;
#: and rows the cost cap kept from being sent (``budgetExhausted``), which a rerun sends.
#: (Kept for parts written before :data:`RERUN_METADATA`; every retryable code of
#: :mod:`~prefect_flux_erase.results.outcome_codes` makes a shard run again now.)
UNFINISHED_CODES: frozenset[str] = frozenset(
    {"pollTimeout", "notFinished", "unanswered", "missingReply", "budgetExhausted"}
)
#: Rows per row group of ``results.parquet`` (parts are small; this many are buffered, and the
#: writer encodes a whole row group in memory: at 32k rows assembling the results of a 100k-row
#: run raised the flow's peak memory by ~45 MB over a 10k-row run's, at 8k by ~10 MB).
RESULTS_ROW_GROUP_ROWS = 8_192
_PART_NAME = re.compile(r"^shard-(\d{5,})\.parquet$")


class ResultsError(FluxEraseError, ValueError):
    """Results that do not add up, with a stable ``code``.

    Codes: ``outcomeMismatch`` (a row without exactly one outcome), ``missingParts`` (shards
    not committed yet), ``partMismatch`` (a part that does not hold its shard's rows).

    Example:
        >>> ResultsError("shard 3 has no part", code="missingParts").code
        'missingParts'
    """

    code: str

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message, code=code)


def part_uri(output: str, shard_index: int) -> str:
    """Where shard ``shard_index`` commits its results part.

    Example:
        >>> part_uri("s3://bucket/out", 7)
        's3://bucket/out/_parts/shard-00007.parquet'
    """
    return storage.join(output, PARTS_DIR, f"shard-{shard_index:05d}.parquet")


def passthrough_columns(manifest_schema: pa.Schema) -> list[str]:
    """The manifest columns copied into the results: every column except those named like a
    result column (``status``, ``row_key``, …), whose values the pipeline writes itself.

    Example:
        >>> passthrough_columns(pa.schema([("image_uri", pa.string()), ("status", pa.int8())]))
        ['image_uri']
    """
    return [name for name in manifest_schema.names if name not in RESULT_COLUMNS]


def shadowed_columns(plan: ManifestPlan) -> list[str]:
    """Manifest columns named like a result column, so not carried to the results.

    The key column ``row_key`` is not listed: the results' ``row_key`` holds its values.

    Example:
        >>> schema = pa.schema([("image_uri", pa.string()), ("row_key", pa.string()),
        ...                     ("status", pa.string())])
        >>> from prefect_flux_erase.manifest.plan import ManifestPlan
        >>> shadowed_columns(ManifestPlan([], 0, schema, key_column="row_key"))
        ['status']
    """
    kept = set(passthrough_columns(plan.schema))
    return [
        name
        for name in plan.schema.names
        if name not in kept and not (name == "row_key" and plan.key_column == "row_key")
    ]


def results_schema(manifest_schema: pa.Schema) -> pa.Schema:
    """The results columns: the manifest's (original types) then the pipeline's.

    Manifest columns named like a result column are left out: the pipeline writes those.

    Example:
        >>> results_schema(pa.schema([("image_uri", pa.string()), ("status", pa.int8())])
        ...                ).names[:3]
        ['image_uri', 'row_key', 'row_index']
    """
    kept = set(passthrough_columns(manifest_schema))
    return pa.schema([*(f for f in manifest_schema if f.name in kept), *RESULT_FIELDS])


def _ordered_outcomes(
    rows: Sequence[ManifestRow], outcomes: Sequence[RowOutcome], shard_index: int
) -> list[RowOutcome]:
    by_index: dict[int, RowOutcome] = {}
    for outcome in outcomes:
        if outcome.row_index in by_index:
            raise ResultsError(
                f"shard {shard_index}: row {outcome.row_index} has two outcomes",
                code="outcomeMismatch",
            )
        by_index[outcome.row_index] = outcome
    ordered: list[RowOutcome] = []
    for row in rows:
        found = by_index.pop(row.index, None)
        if found is None:
            raise ResultsError(
                f"shard {shard_index}: row {row.index} ({row.key!r}) has no outcome",
                code="outcomeMismatch",
            )
        if found.row_key != row.key:
            raise ResultsError(
                f"shard {shard_index}: row {row.index} is {row.key!r} but its outcome says "
                f"{found.row_key!r}",
                code="outcomeMismatch",
            )
        ordered.append(found)
    if by_index:
        raise ResultsError(
            f"shard {shard_index}: outcomes for rows not in the shard: {sorted(by_index)[:10]}",
            code="outcomeMismatch",
        )
    return ordered


def _column(name: str, dtype: pa.DataType, values: list[Any], shard_index: int) -> pa.Array:
    try:
        return pa.array(values, type=dtype)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
        raise ResultsError(
            f"shard {shard_index}: column {name!r} does not fit its type {dtype} ({exc})",
            code="partMismatch",
        ) from exc


def write_part(
    output: str,
    shard_index: int,
    run_key: str,
    rows: Sequence[ManifestRow],
    outcomes: Sequence[RowOutcome],
    storage_options: Mapping[str, Any] | None = None,
    *,
    schema: pa.Schema | None = None,
    fingerprints: Mapping[int, str] | None = None,
) -> str:
    """Commit one shard: its rows' manifest columns plus their outcomes, in one atomic write.

    Pass-through columns keep their Arrow types, taken from ``schema`` (the plan's) or else
    from the rows' own file schema. Outcomes are matched to rows by ``row_index``. The part's
    footer records each failed code's row count and ``fingerprints`` (row index → what the
    row's inputs looked like when it failed), so that a rerun decides what to run again
    without reading the rows.

    Raises:
        ResultsError: a row has no outcome or two, or an outcome belongs to no row.

    Returns:
        The part's URI (see :func:`part_uri`).

    Example:
        >>> write_part("memory://doc/write_part", 1, "run", [], [])
        'memory://doc/write_part/_parts/shard-00001.parquet'
    """
    ordered = _ordered_outcomes(rows, outcomes, shard_index)
    manifest_schema = schema if schema is not None else (rows[0].schema if rows else None)
    if manifest_schema is None:
        names = list(dict.fromkeys(name for row in rows for name in row.values))
        inferred = pa.Table.from_pylist([row.values for row in rows]) if rows else None
        manifest_schema = inferred.schema if inferred is not None else pa.schema([])
        manifest_schema = pa.schema([manifest_schema.field(n) for n in names])
    target = results_schema(manifest_schema)
    records = [o.as_record() for o in ordered]
    arrays = [
        _column(
            f.name,
            f.type,
            [r[f.name] for r in records]
            if f.name in RESULT_COLUMNS
            else [row.values.get(f.name) for row in rows],
            shard_index,
        )
        for f in target
    ]
    unfinished = sum(o.error_code in UNFINISHED_CODES for o in ordered)
    errors = Counter(o.error_code or "unknownError" for o in ordered if o.status != "succeeded")
    rerun = {
        "errors": dict(sorted(errors.items())),
        "inputs": {str(i): fp for i, fp in sorted((fingerprints or {}).items())},
    }
    metadata = {
        RUN_KEY_METADATA: run_key.encode(),
        SHARD_METADATA: str(shard_index).encode(),
        UNFINISHED_METADATA: str(unfinished).encode(),
        RERUN_METADATA: json.dumps(rerun, separators=(",", ":")).encode(),
    }
    table = pa.Table.from_arrays(arrays, schema=target.with_metadata(metadata))
    uri = part_uri(output, shard_index)
    if not storage.is_within(output, uri):
        raise ValueError(f"refusing to write {storage.redact_url(uri)} outside {output!r}")
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    # One atomic write: a crash leaves either no part or a whole one, never half a commit.
    storage.write_bytes(uri, buffer.getvalue(), storage_options)
    del table, buffer
    release_unused_memory()
    return uri


def _list_parts(output: str, storage_options: Mapping[str, Any] | None) -> dict[int, str]:
    fs, path = storage.resolve(storage.join(output, PARTS_DIR), storage_options)
    fs.invalidate_cache(path)  # another process may have committed since the last listing
    try:
        entries = fs.ls(path, detail=False)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    parts: dict[int, str] = {}
    for entry in entries:
        match = _PART_NAME.match(posixpath.basename(str(entry).rstrip("/")))
        if match:  # temporary files (".shard-…tmp") and strays do not match
            parts[int(match.group(1))] = part_uri(output, int(match.group(1)))
    return parts


@dataclass(frozen=True)
class PartFooter:
    """What a committed part's footer says, without reading its rows.

    ``errors`` counts the failed rows per code; ``inputs`` holds the fingerprint of each row
    that failed with a final code (row index → fingerprint).

    Example:
        >>> footer = PartFooter("run", errors={"emptyMask": 1}, inputs={3: "ab12"})
        >>> footer.needs_rerun(), footer.needs_rerun(frozenset({"emptyMask"}))
        (False, True)
    """

    run_key: str | None
    errors: dict[str, int] = field(default_factory=dict)
    inputs: dict[int, str] = field(default_factory=dict)

    def needs_rerun(self, retry_failed: frozenset[str] = frozenset()) -> bool:
        """Whether a rerun has work here whatever the inputs say: a retryable row, or a
        failed code ``retry_failed`` names (:func:`~prefect_flux_erase.results.outcome_codes.
        retry_codes`)."""
        return needs_rerun(self.errors, retry_failed)


def _part_footer(uri: str, storage_options: Mapping[str, Any] | None) -> PartFooter:
    fs, path = storage.resolve(uri, storage_options)
    try:
        with fs.open(path, "rb", block_size=256 * 1024) as f:
            metadata = pq.read_metadata(f).metadata or {}
    except (OSError, ValueError, pa.ArrowException):
        return PartFooter(None)  # unreadable or truncated: not a commit, the shard runs again
    value = metadata.get(RUN_KEY_METADATA)
    run_key = value.decode() if value is not None else None
    rerun = metadata.get(RERUN_METADATA)
    if rerun is None:
        # A part from before the rerun footer: only its unfinished rows are known.
        unfinished = int(metadata.get(UNFINISHED_METADATA, b"0") or 0)
        return PartFooter(run_key, errors={"notFinished": unfinished} if unfinished else {})
    try:
        data = json.loads(rerun)
        errors = {str(k): int(v) for k, v in data.get("errors", {}).items()}
        inputs = {int(k): str(v) for k, v in data.get("inputs", {}).items()}
    except (ValueError, TypeError, AttributeError):
        return PartFooter(None)  # a footer we cannot read: the shard runs again
    return PartFooter(run_key, errors=errors, inputs=inputs)


def part_footers(
    output: str, run_key: str, storage_options: Mapping[str, Any] | None = None
) -> dict[int, PartFooter]:
    """The footers of the parts committed for the run ``run_key``, by shard index.

    Parts of another run key, unreadable parts and temporary files are left out (the new run
    overwrites them).

    Example:
        >>> part_footers("memory://doc/nothing-yet", "run")
        {}
    """
    parts = _list_parts(output, storage_options)
    with ThreadPoolExecutor(max_workers=8) as pool:
        footers = pool.map(lambda u: _part_footer(u, storage_options), parts.values())
        return {
            index: footer
            for index, footer in zip(parts, footers, strict=True)
            if footer.run_key == run_key
        }


def committed_shards(
    output: str,
    run_key: str,
    storage_options: Mapping[str, Any] | None = None,
    *,
    retry_failed: frozenset[str] = frozenset(),
) -> set[int]:
    """Indexes of shards whose part was committed, and is final, for the run ``run_key``.

    Parts of another run key, unreadable parts and temporary files do not count (the new run
    overwrites them); nor do parts with a row a rerun tries again — a retryable failure
    (:mod:`~prefect_flux_erase.results.outcome_codes`), or a code ``retry_failed`` names:
    their shard runs again, for those rows only. (Whether a final row's inputs changed is
    the plan's question: :func:`~prefect_flux_erase.run.plan.plan_run`.)

    Example:
        >>> committed_shards("memory://doc/nothing-yet", "run")
        set()
    """
    footers = part_footers(output, run_key, storage_options)
    return {index for index, footer in footers.items() if not footer.needs_rerun(retry_failed)}


def read_part_outcomes(
    output: str,
    shard_index: int,
    run_key: str,
    storage_options: Mapping[str, Any] | None = None,
) -> tuple[dict[int, RowOutcome], PartFooter] | None:
    """The outcomes an earlier run of ``run_key`` committed for a shard, by row index, and the
    part's footer; ``None`` when there is no readable part of that run.

    Example:
        >>> read_part_outcomes("memory://doc/nothing-yet", 0, "run") is None
        True
    """
    uri = part_uri(output, shard_index)
    footer = _part_footer(uri, storage_options)
    if footer.run_key != run_key:
        return None
    fs, path = storage.resolve(uri, storage_options)
    try:
        with fs.open(path, "rb") as f:
            parquet = pq.ParquetFile(f)
            available = set(parquet.schema_arrow.names)
            table = parquet.read(columns=[c for c in RESULT_COLUMNS if c in available])
    except (OSError, ValueError, pa.ArrowException):
        return None
    outcomes = {}
    for record in table.to_pylist():
        outcome = RowOutcome.from_record(record)
        outcomes[outcome.row_index] = outcome
    return outcomes, footer


def failed_in_parts(
    output: str, shard_indexes: Sequence[int], storage_options: Mapping[str, Any] | None = None
) -> int:
    """How many rows failed in the committed parts of ``shard_indexes`` (their status column).

    A resumed run skips those shards; its progress still counts their failed rows.

    Example:
        >>> failed_in_parts("memory://doc/no-parts", [])
        0
    """

    def failed(index: int) -> int:
        fs, path = storage.resolve(part_uri(output, index), storage_options)
        try:
            with fs.open(path, "rb") as f:
                status = pq.read_table(f, columns=["status"]).column("status")
        except (OSError, ValueError, KeyError, pa.ArrowException):
            return 0  # progress is a display: an unreadable part is reported by the assembly
        return int(len(status) - status.to_pylist().count("succeeded"))

    if not shard_indexes:
        return 0
    with ThreadPoolExecutor(max_workers=8) as pool:
        return int(sum(pool.map(failed, shard_indexes)))


def _read_part(
    uri: str,
    storage_options: Mapping[str, Any] | None,
    shard_range: tuple[int, int, int],
    target: pa.Schema,
    run_key: str | None,
) -> pa.Table:
    index, first, count = shard_range
    fs, path = storage.resolve(uri, storage_options)
    try:
        with fs.open(path, "rb") as f:
            table = pq.read_table(f)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise ResultsError(
            f"shard {index}: part {storage.redact_url(uri)} is unreadable ({exc})",
            code="partMismatch",
        ) from exc
    found_key = (table.schema.metadata or {}).get(RUN_KEY_METADATA, b"").decode()
    if run_key is not None and found_key != run_key:
        raise ResultsError(
            f"shard {index}: part {storage.redact_url(uri)} belongs to run {found_key!r}, not "
            f"{run_key!r}; run again to replace it",
            code="partMismatch",
        )
    indexes = table.column("row_index").to_numpy(zero_copy_only=False)
    expected = np.arange(first, first + count, dtype=np.int64)
    if not np.array_equal(np.sort(indexes), expected):
        raise ResultsError(
            f"shard {index}: part {storage.redact_url(uri)} holds {table.num_rows} rows, not "
            f"exactly rows {first}..{first + count - 1}",
            code="partMismatch",
        )
    if not np.array_equal(indexes, expected):
        table = table.sort_by("row_index")
    columns: list[pa.ChunkedArray | pa.Array] = []
    for f in target:
        if f.name not in table.column_names:
            columns.append(pa.nulls(table.num_rows, f.type))  # a file without that column
            continue
        column = table.column(f.name)
        try:
            columns.append(column if column.type.equals(f.type) else column.cast(f.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ResultsError(
                f"shard {index}: column {f.name!r} of {storage.redact_url(uri)} is "
                f"{column.type}, not {f.type} ({exc})",
                code="partMismatch",
            ) from exc
    return pa.Table.from_arrays(columns, schema=target)


def assemble_results(
    output: str,
    plan: ManifestPlan,
    storage_options: Mapping[str, Any] | None = None,
    *,
    run_key: str | None = None,
) -> ResultsSummary:
    """Stream every shard's part, in order, into ``{output}/results.parquet``; summarise.

    One part is read at a time (row groups of :data:`RESULTS_ROW_GROUP_ROWS` rows are
    buffered), so memory stays flat whatever the row count. The file appears atomically.

    Raises:
        ResultsError: ``missingParts`` when a shard has no part (run again); ``partMismatch``
            when a part does not hold exactly its shard's rows or, given ``run_key``, belongs
            to another run.

    Example:
        >>> from prefect_flux_erase.manifest.plan import ManifestPlan, Shard
        >>> plan = ManifestPlan(shards=[Shard(0, "m.parquet", 0, 1, 0)], num_rows=1,
        ...                     schema=pa.schema([("image_uri", pa.string())]))
        >>> from prefect_flux_erase.manifest.plan import ManifestRow
        >>> row = ManifestRow(0, "k", "a.png", "m.png", None, {"image_uri": "a.png"})
        >>> _ = write_part("memory://doc/assemble", 0, "run", [row],
        ...                [RowOutcome(row_key="k", row_index=0, status="failed",
        ...                            error_code="inputNotFound", error_message="a.png")])
        >>> summary = assemble_results("memory://doc/assemble", plan)
        >>> summary.rows, summary.failed, summary.error_counts
        (1, 1, {'inputNotFound': 1})
    """
    parts = _list_parts(output, storage_options)
    missing = [s.index for s in plan.shards if s.index not in parts]
    if missing:
        raise ResultsError(
            f"{len(missing)} of {len(plan.shards)} shards have no committed results part "
            f"(first: {missing[:10]}); run again to process them",
            code="missingParts",
        )
    uri = storage.join(output, RESULTS_FILE)
    if not storage.is_within(output, uri):
        raise ValueError(f"refusing to write {storage.redact_url(uri)} outside {output!r}")
    target = results_schema(plan.schema)
    known_key = run_key
    if known_key is None and plan.shards:
        known_key = _part_footer(parts[plan.shards[0].index], storage_options).run_key
    metadata = {IMAGE_COLUMN_METADATA: plan.image_column, MASK_COLUMN_METADATA: plan.mask_column}
    if known_key:
        metadata[RUN_KEY_METADATA] = known_key
    tally = SummaryTally(uri)
    tally.summary.run_key = known_key
    with storage.atomic_writer(uri, storage_options) as sink:
        writer = pq.ParquetWriter(sink, target.with_metadata(metadata))
        try:
            pending: list[pa.Table] = []
            pending_rows = 0
            for shard in plan.shards:
                shard_range = (shard.index, shard.global_start, shard.num_rows)
                table = _read_part(
                    parts[shard.index], storage_options, shard_range, target, run_key
                )
                tally.add(table)
                pending.append(table)
                pending_rows += table.num_rows
                if pending_rows >= RESULTS_ROW_GROUP_ROWS:
                    writer.write_table(pa.concat_tables(pending))
                    pending, pending_rows = [], 0
                    release_unused_memory()
            if pending:
                writer.write_table(pa.concat_tables(pending))
        finally:
            writer.close()
    return tally.finish()

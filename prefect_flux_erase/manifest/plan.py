"""Parquet manifests: plan them into shards from footers alone, read one shard's rows on demand.

A manifest is one Parquet file, a dataset directory (every ``*.parquet`` under it) or a glob,
on any fsspec backend. :func:`plan_manifest` reads only Parquet footers and cuts the rows into
:class:`Shard` ranges; :func:`read_shard` reads one range with bounded memory, so no step ever
holds the whole manifest (:mod:`prefect_flux_erase.manifest.reader` explains how).

Example:
    >>> import io, pyarrow as pa, pyarrow.parquet as pq
    >>> from prefect_flux_erase import storage
    >>> buf = io.BytesIO()
    >>> pq.write_table(pa.table({"image_uri": ["a.png", "b.png", "c.png"],
    ...                          "mask_uri": ["ma.png", "mb.png", None]}), buf)
    >>> storage.write_bytes("memory://doc/manifest/m.parquet", buf.getvalue())
    >>> spec = ManifestSpec("memory://doc/manifest/m.parquet")
    >>> plan = plan_manifest(spec, shard_size=2)
    >>> plan.num_rows, [(s.row_start, s.row_stop) for s in plan.shards]
    (3, [(0, 2), (2, 3)])
    >>> [(r.index, r.image_uri, r.mask_uri) for r in read_shard(spec, plan.shards[1])]
    [(2, 'c.png', None)]
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from prefect_flux_erase import storage
from prefect_flux_erase.manifest.reader import (
    ManifestError,
    list_manifest_files,
    open_parquet,
    read_rows,
)
from prefect_flux_erase.memory import release_unused_memory

__all__ = [
    "ManifestError",
    "ManifestPlan",
    "ManifestRow",
    "ManifestSpec",
    "Shard",
    "derive_row_key",
    "plan_manifest",
    "read_shard",
]

#: The column :func:`flux-erase manifest <prefect_flux_erase.manifest.pairing.build_manifest>`
#: writes; used as the row key when ``key_column`` is not given and the manifest has it.
DEFAULT_KEY_COLUMN = "row_key"


@dataclass(frozen=True)
class ManifestSpec:
    """Where a manifest is and which columns mean what.

    ``key_column=None`` uses a ``row_key`` column when the manifest has one (as
    ``flux-erase manifest`` writes) and otherwise derives a key from each row's position and
    URIs (:func:`derive_row_key`). Key values must be unique: they name task UUIDs and outputs.

    Example:
        >>> ManifestSpec("s3://bucket/batch-42/manifest.parquet").image_column
        'image_uri'
    """

    uri: str
    storage_options: dict[str, Any] = field(default_factory=dict)
    image_column: str = "image_uri"
    mask_column: str = "mask_uri"
    key_column: str | None = None
    dilate_column: str = "dilate_pixels"


@dataclass(frozen=True)
class Shard:
    """Rows ``[row_start, row_stop)`` of one manifest file; self-contained and picklable.

    A worker in another process reads it with :func:`read_shard` and the spec alone.

    Example:
        >>> s = Shard(index=3, file="s3://b/m.parquet", row_start=300, row_stop=400,
        ...           global_start=300)
        >>> s.num_rows
        100
    """

    index: int
    file: str
    row_start: int
    row_stop: int
    global_start: int
    #: (row, first row with the same key) for rows whose key repeats an earlier row's key
    #: (see :func:`~prefect_flux_erase.manifest.keys.mark_duplicate_keys`).
    duplicates: tuple[tuple[int, int], ...] = ()
    #: (row, row whose erase it reuses) for rows whose image, mask and settings repeat an
    #: earlier row's (see :mod:`~prefect_flux_erase.shards.contents`): billed once, by that row.
    shared: tuple[tuple[int, int], ...] = ()
    #: Row ranges ``[start, stop)`` given no share of the run's cost cap (``max_cost_usd``):
    #: such a row is never sent to the API; it ends ``budgetExhausted`` unless the result
    #: cache serves it.
    unbudgeted: tuple[tuple[int, int], ...] = ()

    @property
    def num_rows(self) -> int:
        """How many rows the shard holds."""
        return self.row_stop - self.row_start


@dataclass(frozen=True)
class ManifestPlan:
    """The shards of a manifest, its row count and Arrow schema.

    ``key_column`` is the column the keys come from (None: derived); ``image_column`` /
    ``mask_column`` say which columns the report shows. Which of the manifest's columns reach
    the results is the results' business
    (:func:`~prefect_flux_erase.results.assemble.passthrough_columns`).

    Example:
        >>> plan = ManifestPlan(shards=[], num_rows=0, schema=pa.schema([]))
        >>> plan.num_rows
        0
    """

    shards: list[Shard]
    num_rows: int
    schema: pa.Schema
    key_column: str | None = None
    image_column: str = "image_uri"
    mask_column: str = "mask_uri"


@dataclass
class ManifestRow:
    """One manifest row: its global index, key, input URIs and every column's value.

    ``schema`` is the Arrow schema of the file the row came from (shared by every row of a
    shard), so results keep each pass-through column's original type.

    Example:
        >>> ManifestRow(index=0, key="k", image_uri="a.png", mask_uri="m.png",
        ...             dilate_pixels=None, values={}).key
        'k'
    """

    index: int
    key: str
    image_uri: str | None
    mask_uri: str | None
    dilate_pixels: Any | None
    values: dict[str, Any]
    schema: pa.Schema | None = field(default=None, repr=False, compare=False)


def derive_row_key(index: int, image_uri: str | None, mask_uri: str | None) -> str:
    """A stable key from a row's global position and its URIs (same manifest, same keys).

    Example:
        >>> derive_row_key(7, "s3://b/a.png", "s3://b/a-mask.png")
        '00000007-aaee619b'
    """
    content = f"{image_uri or ''}|{mask_uri or ''}".encode()
    return f"{index:08d}-{hashlib.sha1(content, usedforsecurity=False).hexdigest()[:8]}"


def _is_string_view(dtype: pa.DataType) -> bool:
    # string_view arrived in pyarrow 16; the package supports pyarrow >= 15.
    check = getattr(pa.types, "is_string_view", None)
    return bool(check(dtype)) if check is not None else False


def _is_stringish(dtype: pa.DataType) -> bool:
    if pa.types.is_dictionary(dtype):
        return _is_stringish(dtype.value_type)
    return bool(
        pa.types.is_string(dtype)
        or pa.types.is_large_string(dtype)
        or _is_string_view(dtype)
        or pa.types.is_null(dtype)
    )


def _check_columns(spec: ManifestSpec, schema: pa.Schema, where: str) -> None:
    names = list(schema.names)
    available = ", ".join(names) or "(none)"
    wanted = [("image_column", spec.image_column), ("mask_column", spec.mask_column)]
    if spec.key_column is not None:
        wanted.append(("key_column", spec.key_column))
    for option, column in wanted:
        if column not in names:
            raise ManifestError(
                f"manifest {where} has no column {column!r} ({option}); available columns: "
                f"{available}. Pass {option}= naming the right column.",
                code="manifestColumnMissing",
            )
    for option, column in wanted[:2]:
        dtype = schema.field(column).type
        if not _is_stringish(dtype):
            raise ManifestError(
                f"manifest {where}: column {column!r} ({option}) holds {dtype}, not URI "
                "strings; store each image/mask location as a string",
                code="manifestColumnType",
            )


def _merge_schema(current: pa.Schema, other: pa.Schema, where: str) -> pa.Schema:
    if current.equals(other):
        return current
    try:
        return pa.unify_schemas([current, other], promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ManifestError(
            f"manifest file {where} has a schema that does not match the others ({exc})",
            code="manifestSchemaMismatch",
        ) from exc


def plan_manifest(spec: ManifestSpec, shard_size: int = 100) -> ManifestPlan:
    """Cut a manifest into shards of at most ``shard_size`` rows, reading only footers.

    Shards never span files; a file's last shard may be shorter.

    Raises:
        ManifestError: unreadable or missing manifest, missing or non-string column, empty
            dataset; the message names the URI or column (and lists the available ones).

    Example:
        >>> try:
        ...     plan_manifest(ManifestSpec("memory://doc/manifest/nothing.parquet"))
        ... except ManifestError as e:
        ...     e.code
        'manifestNotFound'
    """
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1; got {shard_size}")
    files = list_manifest_files(spec.uri, spec.storage_options)
    schema: pa.Schema | None = None
    shards: list[Shard] = []
    total = 0
    for file_uri in files:
        with open_parquet(file_uri, spec.storage_options) as parquet:
            metadata = parquet.metadata
            file_schema = parquet.schema_arrow
        shown = storage.redact_url(file_uri)
        _check_columns(spec, file_schema, shown)
        schema = file_schema if schema is None else _merge_schema(schema, file_schema, shown)
        rows = int(metadata.num_rows)
        for start in range(0, rows, shard_size):
            stop = min(start + shard_size, rows)
            shards.append(Shard(len(shards), file_uri, start, stop, total + start))
        total += rows
    if schema is None or total == 0:
        raise ManifestError(
            f"manifest {storage.redact_url(spec.uri)} has no rows "
            f"({len(files)} Parquet file(s) found); nothing to erase",
            code="manifestEmpty",
        )
    key_column = spec.key_column
    if key_column is None and DEFAULT_KEY_COLUMN in schema.names:
        key_column = DEFAULT_KEY_COLUMN
    return ManifestPlan(shards, total, schema, key_column, spec.image_column, spec.mask_column)


def _as_uri(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value if isinstance(value, str) else str(value)


def _as_key(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def read_shard(spec: ManifestSpec, shard: Shard) -> list[ManifestRow]:
    """Read one shard's rows (only the row groups it overlaps, in bounded batches).

    Keys: the key column's value as a string; a row whose key cell is empty gets a derived
    key (:func:`derive_row_key`) rather than being dropped.

    Raises:
        ManifestError: the file became unreadable or lost a required column since planning.

    Example:
        >>> import io, pyarrow.parquet as pq
        >>> buf = io.BytesIO()
        >>> pq.write_table(pa.table({"id": [7, 8], "image_uri": ["a.png", "b.png"],
        ...                          "mask_uri": ["m.png", "n.png"]}), buf)
        >>> storage.write_bytes("memory://doc/read_shard/m.parquet", buf.getvalue())
        >>> spec = ManifestSpec("memory://doc/read_shard/m.parquet", key_column="id")
        >>> [(r.key, r.values["id"]) for r in read_shard(spec, plan_manifest(spec).shards[0])]
        [('7', 7), ('8', 8)]
    """
    table = read_rows(shard.file, spec.storage_options, shard.row_start, shard.row_stop)
    schema = table.schema
    _check_columns(spec, schema, storage.redact_url(shard.file))
    key_column = spec.key_column
    if key_column is None and DEFAULT_KEY_COLUMN in schema.names:
        key_column = DEFAULT_KEY_COLUMN
    has_dilate = spec.dilate_column in schema.names
    rows: list[ManifestRow] = []
    for offset, values in enumerate(table.to_pylist()):
        index = shard.global_start + offset
        image_uri = _as_uri(values.get(spec.image_column))
        mask_uri = _as_uri(values.get(spec.mask_column))
        key = _as_key(values.get(key_column)) if key_column else None
        dilate = values.get(spec.dilate_column) if has_dilate else None
        if isinstance(dilate, float) and math.isnan(dilate):
            dilate = None  # pandas writes missing integers as NaN
        rows.append(
            ManifestRow(
                index=index,
                key=key if key is not None else derive_row_key(index, image_uri, mask_uri),
                image_uri=image_uri,
                mask_uri=mask_uri,
                dilate_pixels=dilate,
                values=values,
                schema=schema,
            )
        )
    release_unused_memory()  # the decoded batches are gone: give their pages back
    return rows

"""Duplicate row keys: found once per run, before any shard runs, in flat memory.

A row key names the row's task UUID and its output file. Two rows with one key would share
both: the second would be answered with the first one's result (``conflictTaskUUID``) and
write over the first one's image. So the first row with a key (in manifest order) is processed
and every later row with the same key fails with ``duplicateRowKey``, without an API call.

Only the key column is read, in batches. Each key is reduced to a 64-bit hash (8 bytes per
row); only keys whose hash repeats are compared exactly, in a second pass, so a manifest
without duplicates is read once and a hash collision never fails a row.

Example:
    >>> import io, pyarrow as pa, pyarrow.parquet as pq
    >>> from prefect_flux_erase import storage
    >>> from prefect_flux_erase.manifest.plan import ManifestSpec, plan_manifest
    >>> buf = io.BytesIO()
    >>> pq.write_table(pa.table({"image_uri": ["a", "b", "c"], "mask_uri": ["m", "m", "m"],
    ...                          "row_key": ["cat", "dog", "cat"]}), buf)
    >>> storage.write_bytes("memory://doc/keys/m.parquet", buf.getvalue())
    >>> spec = ManifestSpec("memory://doc/keys/m.parquet")
    >>> plan = mark_duplicate_keys(spec, plan_manifest(spec, shard_size=2))
    >>> [s.duplicates for s in plan.shards]
    [(), ((2, 0),)]
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import replace

import numpy as np

from prefect_flux_erase.manifest.plan import ManifestPlan, ManifestSpec, Shard, _as_key
from prefect_flux_erase.manifest.reader import open_parquet

#: Rows of the key column read at a time.
_BATCH_ROWS = 8_192


def _keys(spec: ManifestSpec, plan: ManifestPlan) -> Iterator[tuple[int, str | None]]:
    """(global row index, key or None when the cell is empty) for every row, in order."""
    column = plan.key_column
    assert column is not None
    files = list(dict.fromkeys(s.file for s in plan.shards))
    starts = {s.file: s.global_start - s.row_start for s in plan.shards}
    for file in files:
        index = starts[file]
        with open_parquet(file, spec.storage_options) as parquet:
            for batch in parquet.iter_batches(batch_size=_BATCH_ROWS, columns=[column]):
                for value in batch.column(0).to_pylist():
                    yield index, _as_key(value)
                    index += 1


def _hash(key: str) -> int:
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def mark_duplicate_keys(spec: ManifestSpec, plan: ManifestPlan) -> ManifestPlan:
    """Return ``plan`` with each shard's ``duplicates``: (row, first row with its key) pairs.

    Rows without a key column, or with an empty key cell, get a key derived from their
    position (always unique), so they are never duplicates.

    Example:
        ```python
        plan = mark_duplicate_keys(spec, plan_manifest(spec, shard_size=100))
        ```
    """
    if plan.key_column is None or plan.num_rows == 0:
        return plan
    hashes = np.zeros(plan.num_rows, dtype=np.uint64)
    keyed = np.zeros(plan.num_rows, dtype=bool)
    for index, key in _keys(spec, plan):
        if key is not None:
            hashes[index] = _hash(key)
            keyed[index] = True
    values, counts = np.unique(hashes[keyed], return_counts=True)
    repeated = values[counts > 1]
    if repeated.size == 0:
        return plan
    suspects = keyed & np.isin(hashes, repeated)
    first: dict[str, int] = {}
    found: dict[int, int] = {}
    for index, key in _keys(spec, plan):
        if key is None or not suspects[index]:
            continue
        if key in first:
            found[index] = first[key]
        else:
            first[key] = index
    return replace(plan, shards=[_with_duplicates(s, found) for s in plan.shards])


def _with_duplicates(shard: Shard, found: dict[int, int]) -> Shard:
    mine = tuple(
        (row, found[row])
        for row in range(shard.global_start, shard.global_start + shard.num_rows)
        if row in found
    )
    return replace(shard, duplicates=mine) if mine else shard

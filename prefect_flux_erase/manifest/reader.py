"""Finding a manifest's Parquet files and reading row ranges from them with bounded memory.

Row ranges: a row group that a range covers whole is read whole; a row group the range covers
only in part is streamed in small batches (``iter_batches``) up to the range. Parquet has no
cheap "seek to row N" inside a row group, so reaching rows deep inside a big row group means
decoding the batches before them. Pyarrow writes 1M-row row groups by default, and shards of
100 rows would then decode (and, on S3, download) the row group over and over: O(rows²).

To keep that linear, the reader keeps a few open *cursors* (an open file and a batch iterator
positioned inside one row group) per process, keyed by the file's identity (``fs.ukey``: size,
ETag or mtime, so a rewritten file never serves stale rows). Shard ``k+1`` read after shard
``k`` continues where ``k`` stopped; out-of-order reads start a new cursor. The cache is
bounded (:data:`MAX_CURSORS`, each holding at most one batch of about
:data:`TARGET_BATCH_BYTES`), so memory stays flat; :func:`close_cursors` empties it.

Example:
    >>> import io, pyarrow as pa, pyarrow.parquet as pq
    >>> from prefect_flux_erase import storage
    >>> buf = io.BytesIO(); pq.write_table(pa.table({"x": list(range(10))}), buf)
    >>> storage.write_bytes("memory://doc/reader/x.parquet", buf.getvalue())
    >>> read_rows("memory://doc/reader/x.parquet", None, 3, 6).column("x").to_pylist()
    [3, 4, 5]
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from prefect_flux_erase import storage
from prefect_flux_erase.errors import FluxEraseError

#: Directory names and files the pipeline writes into its output: never manifest data.
EXCLUDED_NAMES = frozenset({"_parts", "images", "report", "results.parquet"})
#: Open cursors kept per process (each: one open file and at most one pending batch).
MAX_CURSORS = 4
#: Aim for batches of about this many decoded bytes when streaming a row group.
TARGET_BATCH_BYTES = 2 * 1024 * 1024
# fsspec read-ahead block: s3fs's 50 MB default would pull 50 MB for every footer read.
_BLOCK_SIZE = 2 * 1024 * 1024
# A row group's size on disk says little about its decoded size (dictionary-encoded strings
# shrink ~100x there), so batches are capped in rows too: 64k-row batches of URIs decoded to
# ~10 MB at once and lifted the peak of a 100k-row run by ~30 MB over a 10k-row one.
_MAX_BATCH_ROWS = 8_192
_BUFFER_SIZE = 1024 * 1024
_GLOB_CHARS = frozenset("*?[")


class ManifestError(FluxEraseError, ValueError):
    """A manifest that cannot be used; ``code`` is stable and the message names the cause.

    Codes: ``manifestNotFound``, ``manifestPermissionDenied``, ``manifestUnreadable``,
    ``manifestColumnMissing``, ``manifestColumnType``, ``manifestSchemaMismatch``,
    ``manifestEmpty``.

    Example:
        >>> ManifestError("no column 'image_uri'", code="manifestColumnMissing").code
        'manifestColumnMissing'
        >>> ManifestError("cannot read manifest m.parquet").code
        'manifestUnreadable'
    """

    default_code = "manifestUnreadable"
    code: str

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message, code=code)


def _manifest_error(exc: BaseException, shown: str) -> ManifestError:
    if isinstance(exc, ManifestError):
        return exc
    detail = storage.redact_url(f"{type(exc).__name__}: {exc}")
    # Why the read failed is decided once, in storage/faults.py; Parquet's own errors are ours.
    fault = storage.read_fault(exc)
    if fault == "denied":
        return ManifestError(
            f"manifest {shown}: access denied ({detail}); check storage_options",
            code="manifestPermissionDenied",
        )
    if fault == "notFound":
        return ManifestError(f"manifest {shown} does not exist", code="manifestNotFound")
    if isinstance(exc, pa.ArrowInvalid):
        return ManifestError(
            f"manifest {shown} is not a readable Parquet file ({detail})" + _convert_hint(shown)
        )
    if fault == "noFilesystem":
        return ManifestError(
            f"manifest {shown}: the filesystem for this URI is not installed ({detail})"
        )
    return ManifestError(f"cannot read manifest {shown} ({detail})")


#: How pyarrow reads a table of each text format (for the conversion hint).
_TEXT_READERS = {
    ".csv": ("csv", "csv.read_csv({!r})"),
    ".tsv": ("csv", "csv.read_csv({!r}, parse_options=csv.ParseOptions(delimiter='\\t'))"),
    ".jsonl": ("json", "json.read_json({!r})"),
}


def _convert_hint(shown: str) -> str:
    """How to turn a CSV/TSV/JSON-lines table into the Parquet manifest a run reads."""
    name = shown.rsplit("?", 1)[0].lower()
    for extension, (module, reader) in _TEXT_READERS.items():
        if name.endswith(extension):
            target = shown[: -len(extension)] + ".parquet"
            table = reader.format(shown)
            return (
                f'; manifests are Parquet: convert it with python -c "import pyarrow.{module} '
                f'as {module}, pyarrow.parquet as pq; pq.write_table({table}, {target!r})" '
                f"and pass {target}"
            )
    return ""


def _is_data_file(relative: str) -> bool:
    parts = relative.split("/")
    if any(part in EXCLUDED_NAMES or part.startswith((".", "_")) for part in parts):
        return False  # pipeline output, hidden/temporary files, Spark's _SUCCESS & co.
    return parts[-1].lower().endswith(".parquet")


def list_manifest_files(uri: str, storage_options: Mapping[str, Any] | None) -> list[str]:
    """The Parquet files of a manifest URI (a file, a dataset directory or a glob), sorted.

    Example:
        >>> storage.write_bytes("memory://doc/listing/part-1.parquet", b"...")
        >>> storage.write_bytes("memory://doc/listing/_parts/shard-00000.parquet", b"...")
        >>> list_manifest_files("memory://doc/listing", None)
        ['memory:///doc/listing/part-1.parquet']
    """
    shown = storage.redact_url(uri)
    try:
        fs, path = storage.resolve(uri, storage_options)
        fs.invalidate_cache()  # listings are cached: another process may have written
        glob = bool(_GLOB_CHARS & set(path)) and not uri.lower().startswith(("http:", "https:"))
        if glob:
            found = [p for p in sorted(fs.glob(path)) if fs.isfile(p)]
            files = [p for p in found if _is_data_file(posixpath.basename(p))]
        elif fs.info(path).get("type") == "directory":
            base = path.rstrip("/")
            files = [p for p in sorted(fs.find(path)) if _is_data_file(p[len(base) :].lstrip("/"))]
        else:
            files = [path]
    except Exception as exc:
        raise _manifest_error(exc, shown) from exc
    if not files:
        raise ManifestError(f"no *.parquet files found at {shown}", code="manifestEmpty")
    return [storage.listed_uri(fs, p, uri) for p in files]


@contextlib.contextmanager
def open_parquet(uri: str, storage_options: Mapping[str, Any] | None) -> Iterator[pq.ParquetFile]:
    """Open one Parquet file on any backend; errors become :class:`ManifestError`.

    Reads are lazy (footer first, then only the columns chunks asked for). An http(s) server
    without Range support gets the whole file read once into memory instead.

    Example:
        >>> import io
        >>> buf = io.BytesIO(); pq.write_table(pa.table({"x": [1, 2]}), buf)
        >>> storage.write_bytes("memory://doc/open/x.parquet", buf.getvalue())
        >>> with open_parquet("memory://doc/open/x.parquet", None) as f:
        ...     f.metadata.num_rows
        2
    """
    shown = storage.redact_url(uri)
    with contextlib.ExitStack() as stack:
        try:
            fs, path = storage.resolve(uri, storage_options)
            parquet = _open(fs, path, stack)
        except Exception as exc:
            raise _manifest_error(exc, shown) from exc
        try:
            yield parquet
        except (OSError, pa.ArrowException) as exc:
            raise _manifest_error(exc, shown) from exc


def _open(fs: fsspec.AbstractFileSystem, path: str, stack: contextlib.ExitStack) -> pq.ParquetFile:
    options: dict[str, Any] = {"pre_buffer": False, "buffer_size": _BUFFER_SIZE}
    if storage.is_local(fs):
        parquet = pq.ParquetFile(path, **options)  # native reads, no Python file in between
        stack.callback(parquet.close)
        return parquet
    handle = stack.enter_context(fs.open(path, "rb", block_size=_BLOCK_SIZE))
    try:
        parquet = pq.ParquetFile(handle, **options)
    except (OSError, ValueError, pa.ArrowException):
        protocols = fs.protocol if isinstance(fs.protocol, tuple | list) else (fs.protocol,)
        if not {"http", "https"} & set(protocols):
            raise
        # A server that refuses Range requests: fall back to one whole-file read.
        parquet = pq.ParquetFile(pa.BufferReader(fs.cat_file(path)), **options)
    stack.callback(parquet.close)
    return parquet


# --------------------------------------------------------------------------- cursors


@dataclass
class _Cursor:
    """An open batch iterator inside one row group; ``position`` = next row it yields."""

    stack: contextlib.ExitStack
    batches: Iterator[pa.RecordBatch]
    position: int = 0
    pending: pa.RecordBatch | None = None
    exhausted: bool = False
    decoded_rows: int = field(default=0)

    def close(self) -> None:
        self.stack.close()


_lock = threading.Lock()
_cursors: OrderedDict[tuple[str, int], list[_Cursor]] = OrderedDict()
_owner_pid = os.getpid()
#: Rows decoded only to skip to a range (a measure of cursor misses; approximate when several
#: threads read at once; used by tests).
skipped_rows = 0


def _forget_after_fork() -> None:
    """In a forked worker, drop the parent's cursors (their connections are not ours)."""
    global _owner_pid
    if os.getpid() != _owner_pid:
        _cursors.clear()  # not closed: closing would touch the parent's sessions
        _owner_pid = os.getpid()


def close_cursors() -> None:
    """Close every cached cursor (for tests, or after a run to release open files).

    Example:
        >>> close_cursors()
    """
    with _lock:
        cursors = [c for group in _cursors.values() for c in group]
        _cursors.clear()
    for cursor in cursors:
        cursor.close()


def _options_token(storage_options: Mapping[str, Any] | None) -> str:
    text = json.dumps(dict(storage_options or {}), sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def _take(key: tuple[str, int], start: int) -> _Cursor | None:
    with _lock:
        _forget_after_fork()
        group = _cursors.get(key, [])
        usable = [c for c in group if c.position <= start]
        if not usable:
            return None
        best = max(usable, key=lambda c: c.position)
        group.remove(best)
        if not group:
            del _cursors[key]
        return best


def _put(key: tuple[str, int], cursor: _Cursor) -> None:
    evicted: list[_Cursor] = []
    with _lock:
        _forget_after_fork()
        _cursors.setdefault(key, []).append(cursor)
        _cursors.move_to_end(key)
        while sum(len(g) for g in _cursors.values()) > MAX_CURSORS:
            oldest_key = next(iter(_cursors))
            evicted.append(_cursors[oldest_key].pop(0))
            if not _cursors[oldest_key]:
                del _cursors[oldest_key]
    for cursor in evicted:
        cursor.close()


def _new_cursor(fs: fsspec.AbstractFileSystem, path: str, group: int) -> _Cursor:
    stack = contextlib.ExitStack()
    try:
        parquet = _open(fs, path, stack)
        meta = parquet.metadata.row_group(group)
        per_row = max(1.0, meta.total_byte_size / max(1, meta.num_rows))
        batch_rows = int(min(_MAX_BATCH_ROWS, max(64, TARGET_BATCH_BYTES / per_row)))
        batches = parquet.iter_batches(batch_size=batch_rows, row_groups=[group], use_threads=False)
    except BaseException:
        stack.close()
        raise
    return _Cursor(stack=stack, batches=iter(batches))


def _stream_slice(cursor: _Cursor, lo: int, hi: int) -> list[pa.RecordBatch]:
    """Advance ``cursor`` to ``lo`` and return the batches covering rows [lo, hi)."""
    global skipped_rows
    out: list[pa.RecordBatch] = []
    while cursor.position < hi:
        batch = cursor.pending
        cursor.pending = None
        if batch is None:
            batch = next(cursor.batches, None)
            if batch is None:
                cursor.exhausted = True
                break
        end = cursor.position + batch.num_rows
        if end <= lo:
            skipped_rows += batch.num_rows
            cursor.position = end
            continue
        take_from = max(lo - cursor.position, 0)
        take_to = min(hi, end) - cursor.position
        if take_from:
            skipped_rows += take_from
        out.append(batch.slice(take_from, take_to - take_from))
        if end > hi:
            # Keep the rest for the next shard; a copy-free slice of the same batch.
            cursor.pending = batch.slice(take_to)
        cursor.position = min(hi, end)
    return out


def read_rows(
    uri: str, storage_options: Mapping[str, Any] | None, start: int, stop: int
) -> pa.Table:
    """Read rows ``[start, stop)`` of one Parquet file, touching only overlapping row groups.

    Raises:
        ManifestError: unreadable file, or fewer rows than asked for.

    Example:
        >>> import io
        >>> buf = io.BytesIO(); pq.write_table(pa.table({"x": list(range(10))}), buf)
        >>> storage.write_bytes("memory://doc/read_rows/x.parquet", buf.getvalue())
        >>> read_rows("memory://doc/read_rows/x.parquet", None, 8, 10).column("x").to_pylist()
        [8, 9]
    """
    shown = storage.redact_url(uri)
    with contextlib.ExitStack() as stack:
        try:
            fs, path = storage.resolve(uri, storage_options)
            fs.invalidate_cache(path)  # a rewritten file must not match an old cursor's key
            identity = f"{uri}\x00{fs.ukey(path)}\x00{_options_token(storage_options)}"
            parquet = _open(fs, path, stack)
            metadata = parquet.metadata
            schema = parquet.schema_arrow
            pieces: list[pa.Table] = []
            first = 0
            for group in range(metadata.num_row_groups):
                count = metadata.row_group(group).num_rows
                group_start, first = first, first + count
                if group_start + count <= start or count == 0:
                    continue
                if group_start >= stop:
                    break
                lo, hi = max(start, group_start) - group_start, min(stop, first) - group_start
                if lo == 0 and hi == count:
                    pieces.append(parquet.read_row_group(group))
                    continue
                key = (identity, group)
                pieces.append(_read_partial(fs, path, key, count, (lo, hi), schema))
        except Exception as exc:
            raise _manifest_error(exc, shown) from exc
    table = pa.concat_tables(pieces) if pieces else schema.empty_table()
    if table.num_rows != stop - start:
        raise ManifestError(
            f"manifest {shown} has {metadata.num_rows} rows; rows [{start}, {stop}) were asked "
            "for (was the file rewritten after planning?)",
            code="manifestUnreadable",
        )
    return table


def _read_partial(
    fs: fsspec.AbstractFileSystem,
    path: str,
    key: tuple[str, int],
    count: int,
    rows: tuple[int, int],
    schema: pa.Schema,
) -> pa.Table:
    lo, hi = rows
    cursor = _take(key, lo) or _new_cursor(fs, path, key[1])
    try:
        batches = _stream_slice(cursor, lo, hi)
    except BaseException:
        cursor.close()
        raise
    if cursor.exhausted or cursor.position >= count:
        cursor.close()  # nothing left in this row group for a later shard
    else:
        _put(key, cursor)
    return pa.Table.from_batches(batches, schema=schema) if batches else schema.empty_table()

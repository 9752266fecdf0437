"""The content scan: every row's content key and image size, read before a run sends anything.

One pass over the rows still to run, a few rows at a time on a thread pool: each input file is
streamed once through a hash (its bytes are never all in memory) and its size is read from its
header with Pillow's lazy open (no pixel is decoded). Inputs the pipeline does not read — a
Runware image UUID, a URL passed through — count by their text; a passed-through URL's size is
read from its first 64 KiB. No API request is made.

The scan keeps five small columns per row (index, 16-byte key, width, height, status: ~33 bytes
a row, 3.3 MB for 100,000 rows) and answers, for the run and for the estimate:

- which rows repeat an earlier row's content (:attr:`ContentScan.leader`): they share its
  erase and its charge;
- which contents the result cache already holds (:attr:`ContentScan.cached`);
- what each row that will be billed costs, at the documented price and at the unsettled
  reference-image price (:meth:`ContentScan.row_cost_micro`).

Example:
    ```python
    scan = scan_contents(job, run.todo)
    scan.distinct, scan.billed_rows()
    ```
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from prefect_flux_erase import storage
from prefect_flux_erase.engine.imageio import MIN_SIDE, ImageInputError, header_size
from prefect_flux_erase.runware.pricing import EXTRA_MP_USD, megapixels, result_cost
from prefect_flux_erase.shards.contents import (
    DIGEST_BYTES,
    content_key,
    digest_reference,
    job_fingerprint,
    new_digest,
)
from prefect_flux_erase.shards.remote_inputs import InputKind, input_kind, read_url_header

if TYPE_CHECKING:
    from prefect_flux_erase.manifest.plan import ManifestRow, Shard
    from prefect_flux_erase.shards.job import ShardJob

#: Row status in the scan.
KNOWN_SIZE, UNKNOWN_SIZE, UNUSABLE = 0, 1, 2
#: Threads reading inputs at once (object stores answer in parallel; local disks do not mind).
SCAN_THREADS = 16
#: A header not found in this many leading bytes is not an image header.
MAX_HEADER_BYTES = 4 << 20
#: Price of one result whose input size is unknown (a Runware image UUID): from the smallest
#: (1 MP) to the largest (4 MP, plus the input as a reference image), in micro-dollars.
UNKNOWN_LOW_MICRO = round(result_cost(1024, 1024) * 1e6)
UNKNOWN_HIGH_MICRO = round((result_cost(2048, 2048) + 4 * EXTRA_MP_USD) * 1e6)


@dataclass(frozen=True)
class InputFacts:
    """What the scan learnt about one input: its digest, its size (if readable) and whether
    the run could use it.

    Example:
        >>> InputFacts(b"d" * 16, (640, 480), True).size
        (640, 480)
    """

    digest: bytes
    size: tuple[int, int] | None
    usable: bool


def inspect_input(
    value: str, kind: InputKind, storage_options: Mapping[str, Any] | None, parameter: str
) -> InputFacts:
    """Digest and size of one input, streaming (files) or by reference (UUIDs, URLs).

    An input that cannot be read or has no image header is not usable (the run fails its row
    locally, for nothing); its digest is then of its text.

    Example:
        >>> import io
        >>> from PIL import Image
        >>> buf = io.BytesIO(); Image.new("RGB", (640, 480)).save(buf, "PNG")
        >>> storage.write_bytes("memory://doc/scan/a.png", buf.getvalue())
        >>> inspect_input("memory://doc/scan/a.png", "file", None, "inputs.image").size
        (640, 480)
    """
    if kind == "uuid":
        return InputFacts(digest_reference("uuid", value), None, True)
    if kind == "url":
        try:
            found = header_size(read_url_header(value), parameter=parameter)
        except (OSError, ImageInputError):
            return InputFacts(digest_reference("url", value), None, True)  # the API decides
        return InputFacts(digest_reference("url", value), found, True)
    digest = new_digest()
    prefix = bytearray()
    size: tuple[int, int] | None = None
    try:
        for chunk in storage.iter_bytes(value, storage_options):
            digest.update(chunk)
            if size is None and len(prefix) < MAX_HEADER_BYTES:
                prefix += chunk
                try:
                    size = header_size(bytes(prefix), parameter=parameter)
                except ImageInputError:
                    continue
                prefix = bytearray()
    except storage.InputReadError:
        return InputFacts(digest_reference("file", value), None, False)
    return InputFacts(digest.digest(), size, size is not None)


@dataclass
class _RowFacts:
    index: int
    key: bytes
    width: int
    height: int
    status: int
    sample: tuple[str, str, InputKind, InputKind, int, str | None] | None = None


def _scan_row(row: ManifestRow, job: ShardJob, fingerprint: str, duplicate: bool) -> _RowFacts:
    from prefect_flux_erase.shards.rows import check_row_key, row_dilate_pixels, ticket_for

    unusable = _RowFacts(row.index, bytes(DIGEST_BYTES), 0, 0, UNUSABLE)
    ticket = ticket_for(row, job)
    if duplicate or check_row_key(ticket.row_key) is not None:
        return unusable
    image, mask = ticket.image_uri, ticket.mask_uri
    if not isinstance(image, str) or not image or not isinstance(mask, str) or not mask:
        return unusable
    try:
        dilate = row_dilate_pixels(ticket.dilate_pixels)
    except ValueError:
        return unusable
    if dilate is None:
        dilate = job.options.dilate_pixels
    if not 0 <= dilate <= 50:
        return unusable
    spec = job.manifest
    image_kind = input_kind(image, spec.image_column, job)
    mask_kind = input_kind(mask, spec.mask_column, job)
    options = job.input_storage_options
    facts = inspect_input(image, image_kind, options, "inputs.image")
    mask_facts = inspect_input(mask, mask_kind, options, "inputs.mask")
    key = bytes.fromhex(
        content_key(
            facts.digest,
            mask_facts.digest,
            dilate=dilate,
            fingerprint=fingerprint,
            upload_url=ticket.upload_url,
        )
    )
    if not (facts.usable and mask_facts.usable):
        return unusable
    size = facts.size
    if size is not None:
        min_side = MIN_SIDE if job.backend == "runware" else 0
        if min(size) < min_side:
            return unusable
        if mask_facts.size is not None and mask_facts.size != size:
            return unusable
    if size is None:
        return _RowFacts(row.index, key, 0, 0, UNKNOWN_SIZE)
    sample = (image, mask, image_kind, mask_kind, dilate, ticket.upload_url)
    return _RowFacts(row.index, key, size[0], size[1], KNOWN_SIZE, sample)


@dataclass
class ContentScan:
    """The scan of a run's rows (see the module docstring); arrays in row order.

    Example:
        ```python
        scan = scan_contents(job, shards)
        scan.rows, scan.distinct, scan.shared_rows
        ```
    """

    index: NDArray[np.int64]
    keys: NDArray[np.uint8]
    width: NDArray[np.int32]
    height: NDArray[np.int32]
    status: NDArray[np.uint8]
    number_results: int
    #: Row index of the row whose erase each row uses (itself for the first row with its
    #: content, -1 for unusable rows).
    leader: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    #: Whether each row's content is in the result cache.
    cached: NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, np.bool_))
    #: One readable row per image size (for a dry-run check of the price of each size).
    samples: dict[tuple[int, int], tuple[str, str, InputKind, InputKind, int, str | None]] = field(
        default_factory=dict
    )

    @property
    def rows(self) -> int:
        """Rows scanned."""
        return len(self.index)

    @property
    def usable(self) -> NDArray[np.bool_]:
        """Rows the run can send (the others fail locally, free)."""
        usable: NDArray[np.bool_] = self.status != UNUSABLE
        return usable

    @property
    def distinct(self) -> int:
        """Distinct contents among the usable rows."""
        return int(np.count_nonzero(self.is_leader))

    @property
    def is_leader(self) -> NDArray[np.bool_]:
        """Rows that are the first with their content (the one erased, and billed)."""
        first: NDArray[np.bool_] = self.leader == self.index
        return first

    @property
    def shared_rows(self) -> int:
        """Usable rows that repeat an earlier row's content."""
        return int(np.count_nonzero(self.usable & ~self.is_leader))

    @property
    def billed(self) -> NDArray[np.bool_]:
        """Rows that will be billed: first with their content, not in the cache."""
        return self.is_leader & ~self.cached

    def billed_rows(self) -> int:
        """How many rows will be billed."""
        return int(np.count_nonzero(self.billed))

    def row_cost_micro(self, position: int) -> tuple[int, int]:
        """(low, high) micro-dollars for the row at ``position`` (all its results): low
        without, high with the input billed as a reference image (unsettled, RUNWARE_API §11
        #16).

        Example:
            ```python
            low, high = scan.row_cost_micro(0)     # (30000, 34000) for 1024x1024
            ```
        """
        n = self.number_results
        if self.status[position] == UNKNOWN_SIZE:
            return n * UNKNOWN_LOW_MICRO, n * UNKNOWN_HIGH_MICRO
        return _price_micro(int(self.width[position]), int(self.height[position]), n)

    def output_megapixels(self) -> int:
        """Billable output megapixels of the billed rows of known size (all their results)."""
        total = 0
        for pos in np.flatnonzero(self.billed & (self.status == KNOWN_SIZE)):
            total += megapixels(int(self.width[pos]), int(self.height[pos]))
        return total * self.number_results

    def positions(self, rows: Iterable[int]) -> NDArray[np.int64]:
        """Positions in the arrays of the given row indexes (rows not scanned are dropped)."""
        wanted = np.asarray(list(rows), dtype=np.int64)
        pos = np.searchsorted(self.index, wanted)
        pos = np.clip(pos, 0, max(0, len(self.index) - 1))
        found = self.index[pos] == wanted if len(self.index) else np.zeros(len(wanted), bool)
        kept: NDArray[np.int64] = pos[found]
        return kept


_PRICES: dict[tuple[int, int], tuple[int, int]] = {}


def _price_micro(width: int, height: int, n: int) -> tuple[int, int]:
    cached = _PRICES.get((width, height))
    if cached is None:
        low = round(result_cost(width, height) * 1e6)
        high = low + round(EXTRA_MP_USD * megapixels(width, height) * 1e6)
        cached = _PRICES.setdefault((width, height), (low, high))
    return n * cached[0], n * cached[1]


def _rows_of(job: ShardJob, shards: Sequence[Shard]) -> Iterator[tuple[Shard, list[ManifestRow]]]:
    from prefect_flux_erase.manifest.plan import read_shard

    for shard in shards:
        yield shard, read_shard(job.manifest, shard)


def _find_leaders(scan: ContentScan, dedupe: bool) -> None:
    leader = np.full(scan.rows, -1, np.int64)
    usable = np.flatnonzero(scan.usable)
    if not dedupe:
        leader[usable] = scan.index[usable]  # every row its own erase
    elif len(usable):
        keys = np.ascontiguousarray(scan.keys[usable]).view(np.dtype((np.void, DIGEST_BYTES)))
        _, first, inverse = np.unique(keys.ravel(), return_index=True, return_inverse=True)
        # np.unique's first occurrences: positions are in row order, so the first is earliest.
        leader[usable] = scan.index[usable[first[inverse.ravel()]]]
    scan.leader = leader


def _find_cached(scan: ContentScan, cache: str | None, options: Mapping[str, Any] | None) -> None:
    cached = np.zeros(scan.rows, np.bool_)
    if cache is not None and scan.rows:
        from prefect_flux_erase.results.cache import ResultCache

        store = ResultCache(cache, options)
        leaders = np.flatnonzero(scan.is_leader)
        with ThreadPoolExecutor(max_workers=SCAN_THREADS) as pool:
            hits = list(pool.map(lambda p: store.has(bytes(scan.keys[p]).hex()), leaders))
        hit_rows = {int(scan.index[p]) for p, hit in zip(leaders, hits, strict=True) if hit}
        if hit_rows:
            cached = np.isin(scan.leader, np.fromiter(hit_rows, np.int64))
    scan.cached = cached


def scan_contents(
    job: ShardJob, shards: Sequence[Shard], *, threads: int = SCAN_THREADS
) -> ContentScan:
    """Scan the rows of ``shards``: content keys, sizes, shared contents and cache hits.

    Reads every input once (streamed; headers parsed, never decoded); makes no API request.

    Example:
        ```python
        scan = scan_contents(build_job(spec), plan_run(spec).todo)
        ```
    """
    fingerprint = job_fingerprint(job)
    total = sum(s.num_rows for s in shards)
    index = np.zeros(total, np.int64)
    keys = np.zeros((total, DIGEST_BYTES), np.uint8)
    width = np.zeros(total, np.int32)
    height = np.zeros(total, np.int32)
    status = np.full(total, UNUSABLE, np.uint8)
    samples: dict[tuple[int, int], Any] = {}
    at = 0
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for shard, rows in _rows_of(job, shards):
            repeated = {row for row, _ in shard.duplicates}
            flags = [r.index in repeated for r in rows]
            facts = pool.map(_scan_row, rows, [job] * len(rows), [fingerprint] * len(rows), flags)
            for fact in facts:
                index[at] = fact.index
                keys[at] = np.frombuffer(fact.key, np.uint8)
                width[at], height[at], status[at] = fact.width, fact.height, fact.status
                if fact.sample is not None:
                    samples.setdefault((fact.width, fact.height), fact.sample)
                at += 1
    order = np.argsort(index[:at], kind="stable")
    scan = ContentScan(
        index=index[:at][order],
        keys=keys[:at][order],
        width=width[:at][order],
        height=height[:at][order],
        status=status[:at][order],
        number_results=job.options.number_results,
        samples=samples,
    )
    _find_leaders(scan, job.dedupe)
    _find_cached(scan, job.cache, job.cache_options)
    return scan

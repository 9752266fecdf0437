"""`ResultsSummary`: what happened to a run's rows, tallied while the results are streamed.

Everything here is computed one table at a time in flat memory, including latency quantiles
(a log-bucket histogram instead of a list of every latency).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: How many failures a summary lists (the results file has them all).
MAX_LISTED_FAILURES = 50


class _LatencyHistogram:
    """Latency quantiles in flat memory: log-spaced buckets 1 % wide (≤ 0.5 % error)."""

    _STEP = float(np.log(1.01))

    def __init__(self) -> None:
        self.buckets: Counter[int] = Counter()
        self.count = 0

    def add(self, values: np.ndarray[Any, np.dtype[np.float64]]) -> None:
        values = values[np.isfinite(values)]
        values = np.maximum(values, 1e-6)  # zero latency: the smallest bucket
        index = np.floor(np.log(values) / self._STEP).astype(np.int64)
        keys, counts = np.unique(index, return_counts=True)
        self.buckets.update(dict(zip(keys.tolist(), counts.tolist(), strict=True)))
        self.count += int(values.size)

    def quantile(self, q: float) -> float | None:
        if not self.count:
            return None
        rank = q * (self.count - 1)
        seen = 0
        for key in sorted(self.buckets):
            seen += self.buckets[key]
            if seen > rank:
                return round(float(np.exp((key + 0.5) * self._STEP)), 4)
        return None  # pragma: no cover - rank < count always hits a bucket


@dataclass
class ResultsSummary:
    """What happened to a run's rows, computed while ``results.parquet`` was written.

    ``failures`` lists the first :data:`MAX_LISTED_FAILURES` failed rows as dicts with
    ``row_index``, ``row_key``, ``error_code`` and ``error_message``; ``error_counts`` counts
    every failed row by code. Latency quantiles are within 0.5 % (None without latencies).

    Example:
        >>> ResultsSummary(results_uri="s3://b/out/results.parquet", rows=2, succeeded=1,
        ...                failed=1).as_dict()["failed"]
        1
    """

    results_uri: str
    rows: int = 0
    succeeded: int = 0
    failed: int = 0
    resumed: int = 0
    total_cost: float = 0.0
    p50_latency_s: float | None = None
    p95_latency_s: float | None = None
    failures: list[dict[str, Any]] = field(default_factory=list)
    error_counts: dict[str, int] = field(default_factory=dict)
    run_key: str | None = None
    #: Rows served from the result cache, and rows that used another row's erase.
    cached: int = 0
    shared: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The summary as plain JSON-ready data."""
        return asdict(self)


class SummaryTally:
    """Accumulates a :class:`ResultsSummary` one results table at a time.

    Example:
        >>> tally = SummaryTally("memory://out/results.parquet")
        >>> tally.add(pa.table({"status": ["succeeded", "failed"], "resumed": [False, True],
        ...     "cost": [0.01, None], "latency_s": [1.0, 3.0], "row_index": [0, 1],
        ...     "row_key": ["a", "b"], "error_code": [None, "inputNotFound"],
        ...     "error_message": [None, "b.png does not exist"]}))
        >>> s = tally.finish(); s.succeeded, s.failed, s.resumed, s.error_counts
        (1, 1, 1, {'inputNotFound': 1})
    """

    def __init__(self, results_uri: str) -> None:
        self.summary = ResultsSummary(results_uri=results_uri)
        self.latency = _LatencyHistogram()
        self.errors: Counter[str] = Counter()
        self.cost = 0.0

    def add(self, table: pa.Table) -> None:
        summary = self.summary
        status = table.column("status")
        ok = pc.fill_null(pc.equal(status, "succeeded"), False)
        succeeded = int(pc.sum(ok).as_py() or 0)
        summary.rows += table.num_rows
        summary.succeeded += succeeded
        summary.failed += table.num_rows - succeeded
        summary.resumed += int(pc.sum(pc.fill_null(table.column("resumed"), False)).as_py() or 0)
        self.cost += float(pc.sum(table.column("cost")).as_py() or 0.0)
        if "cached" in table.column_names:
            summary.cached += int(pc.sum(pc.fill_null(table.column("cached"), False)).as_py() or 0)
        if "shared_with" in table.column_names:
            summary.shared += table.num_rows - table.column("shared_with").null_count
        latencies = table.column("latency_s").drop_null().to_numpy()
        if latencies.size:
            self.latency.add(np.asarray(latencies, dtype=np.float64))
        if succeeded == table.num_rows:
            return
        failed = table.filter(pc.invert(ok)).select(
            ["row_index", "row_key", "error_code", "error_message"]
        )
        codes = failed.column("error_code").to_pylist()
        self.errors.update(code or "unknown" for code in codes)
        room = MAX_LISTED_FAILURES - len(summary.failures)
        if room > 0:
            summary.failures.extend(failed.slice(0, room).to_pylist())

    def finish(self) -> ResultsSummary:
        summary = self.summary
        summary.total_cost = round(self.cost, 6)
        summary.p50_latency_s = self.latency.quantile(0.50)
        summary.p95_latency_s = self.latency.quantile(0.95)
        summary.error_counts = dict(self.errors.most_common())
        return summary

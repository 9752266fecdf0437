"""`EraseSummary`: what a run returns — counts, spend, speed and where everything is.

Orchestrator-neutral: the core's front door returns it, the Prefect flow publishes it as
artifacts (:mod:`prefect_flux_erase.flows.artifacts`), the Airflow face pushes ``as_dict()``
to XCom. :func:`summary_table` and :func:`failures_table` are its two tabular views.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: Failed rows listed in the failures table (the results dataset has all of them).
MAX_LISTED_FAILURES = 50


@dataclass(frozen=True)
class EraseSummary:
    """The outcome of an erase run: counts, spend, speed and where everything is.

    Example:
        >>> s = EraseSummary(rows=10, succeeded=9, failed=1, results_uri="out/results.parquet")
        >>> s.failed_fraction, s.ok(0.1), s.ok(0.0)
        (0.1, True, False)
    """

    rows: int
    succeeded: int
    failed: int
    results_uri: str
    resumed: int = 0
    total_cost: float = 0.0
    p50_latency_s: float | None = None
    p95_latency_s: float | None = None
    elapsed_s: float = 0.0
    report_uri: str | None = None
    run_key: str = ""
    backend: str = ""
    output: str = ""
    shards: int = 0
    shards_skipped: int = 0
    error_counts: dict[str, int] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed_fraction(self) -> float:
        """Failed rows / rows (0 for an empty manifest)."""
        return self.failed / self.rows if self.rows else 0.0

    @property
    def rows_per_s(self) -> float:
        """Rows finished per second of this run's wall time."""
        return self.rows / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def ok(self, max_failed_fraction: float) -> bool:
        """Whether the run meets the threshold: failed / rows ≤ ``max_failed_fraction``."""
        return self.failed_fraction <= max_failed_fraction + 1e-12

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (with the derived ``rows_per_s``)."""
        return {**asdict(self), "rows_per_s": round(self.rows_per_s, 3)}

    def describe(self) -> str:
        """One line: counts, spend and the results location.

        Example:
            >>> EraseSummary(rows=4, succeeded=3, failed=1, results_uri="r.parquet").describe()
            '3 of 4 rows succeeded, 1 failed, $0.0000 spent; results: r.parquet'
        """
        return (
            f"{self.succeeded} of {self.rows} rows succeeded, {self.failed} failed, "
            f"${self.total_cost:.4f} spent; results: {self.results_uri}"
        )


def _fmt(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value:.3f}{unit}"


def summary_table(summary: EraseSummary) -> list[dict[str, Any]]:
    """The summary artifact's rows (metric, value).

    Example:
        >>> rows = summary_table(EraseSummary(rows=2, succeeded=2, failed=0, results_uri="r"))
        >>> rows[0]
        {'metric': 'rows', 'value': '2'}
    """
    pairs = [
        ("rows", str(summary.rows)),
        ("succeeded", str(summary.succeeded)),
        ("failed", str(summary.failed)),
        ("resumed", str(summary.resumed)),
        ("total cost (USD)", f"{summary.total_cost:.4f}"),
        ("p50 latency (s)", _fmt(summary.p50_latency_s)),
        ("p95 latency (s)", _fmt(summary.p95_latency_s)),
        ("rows/s", f"{summary.rows_per_s:.2f}"),
        ("shards (skipped as already committed)", f"{summary.shards} ({summary.shards_skipped})"),
        ("backend", summary.backend),
        ("results", summary.results_uri),
    ]
    return [{"metric": k, "value": v} for k, v in pairs]


def failures_table(failures: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The failures artifact's rows: row key, code and message of the first failed rows.

    Example:
        >>> rows = failures_table([{"row_key": "a", "error_code": "inputNotFound",
        ...                         "error_message": "a.png does not exist", "row_index": 0}])
        >>> rows[0]["error_code"]
        'inputNotFound'
    """
    return [
        {
            "row_index": f.get("row_index"),
            "row_key": f.get("row_key"),
            "error_code": f.get("error_code"),
            "error_message": f.get("error_message"),
        }
        for f in failures[:MAX_LISTED_FAILURES]
    ]

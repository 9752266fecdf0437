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
    #: The cost estimate made before the run (:class:`~prefect_flux_erase.costs.estimate.
    #: CostEstimate` as a dict; ``None`` for the local backend or when nothing was left).
    estimate: dict[str, Any] | None = None
    #: The run's cost cap, and the rows it left unsent (``budgetExhausted``).
    max_cost_usd: float | None = None
    budget_exhausted: int = 0
    #: Rows served from the result cache, and rows that shared another row's erase.
    cached: int = 0
    shared: int = 0

    @property
    def cap_reached(self) -> bool:
        """Whether the cost cap kept rows from being sent (a rerun with a higher cap continues).

        Example:
            >>> EraseSummary(rows=2, succeeded=1, failed=1, results_uri="r",
            ...              budget_exhausted=1).cap_reached
            True
        """
        return self.budget_exhausted > 0

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
        spent = f"${self.total_cost:.4f} spent"
        if self.estimate is not None:
            spent += f" (estimated ${float(self.estimate.get('low_usd', 0.0)):.4f})"
        if self.cap_reached:
            spent += (
                f", cost cap ${self.max_cost_usd or 0.0:.4f} reached: {self.budget_exhausted} "
                "rows not sent"
            )
        return (
            f"{self.succeeded} of {self.rows} rows succeeded, {self.failed} failed, "
            f"{spent}; results: {self.results_uri}"
        )


def _fmt(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value:.3f}{unit}"


def estimate_text(estimate: dict[str, Any] | None) -> str:
    """The estimate as a cost range for tables and the report: ``"3.0000"`` when settled,
    ``"3.0000 - 3.4000"`` when the unsettled reference-image price (or an unknown size)
    leaves a range, ``"-"`` without an estimate.

    Example:
        >>> estimate_text({"low_usd": 0.03, "high_usd": 0.034})
        '0.0300 - 0.0340'
    """
    if not estimate:
        return "-"
    low, high = float(estimate.get("low_usd", 0.0)), float(estimate.get("high_usd", 0.0))
    return f"{low:.4f}" if high <= low + 1e-9 else f"{low:.4f} - {high:.4f}"


def _money_rows(summary: EraseSummary) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    if summary.estimate is not None:
        rows.append(("estimated cost (USD)", estimate_text(summary.estimate)))
        verified = summary.estimate.get("verified_usd")
        if verified is not None:
            rows.append(("dry-run price (USD)", f"{float(verified):.4f}"))
    if summary.max_cost_usd is not None:
        rows.append(("cost cap (USD)", f"{summary.max_cost_usd:.4f}"))
        rows.append(("rows left by the cap (budgetExhausted)", str(summary.budget_exhausted)))
    if summary.shared:
        rows.append(("rows sharing an identical row's erase", str(summary.shared)))
    if summary.cached:
        rows.append(("rows served from the result cache", str(summary.cached)))
    return rows


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
        *_money_rows(summary),
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

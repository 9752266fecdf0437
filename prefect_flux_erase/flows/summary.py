"""`EraseSummary` (what a run returns) and the artifacts that show it in the Prefect UI."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any
from uuid import UUID

from prefect.artifacts import (
    create_link_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

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


def _artifact_key(run_key: str, what: str) -> str:
    # Artifact keys allow lowercase letters, digits and dashes only.
    return f"flux-erase-{what}-{run_key[:12].lower()}"


class ProgressArtifact:
    """The run's progress artifact, created at start and updated as shards commit.

    Updates are sent at most every ``min_interval`` seconds (each is an API call and a
    database write, made from the flow's driver loop): a run of a thousand small shards would
    otherwise spend more on its progress bar than on some of its shards. The last update
    (every row finished) always goes out, and :meth:`flush` sends one held back.

    Example:
        ```python
        progress = ProgressArtifact(run_key, total_rows=5000, done_rows=0)
        progress.update(done_rows=1200, failed_rows=3)
        progress.flush()
        ```
    """

    def __init__(
        self, run_key: str, *, total_rows: int, done_rows: int, min_interval: float = 1.0
    ) -> None:
        self.total_rows = total_rows
        self.min_interval = min_interval
        self.sent = 0  # updates sent (creation aside)
        self._held: tuple[int, int] | None = None
        self._last = time.monotonic()
        self._id: UUID = create_progress_artifact(  # type: ignore[assignment]
            progress=self._percent(done_rows),
            key=_artifact_key(run_key, "progress"),
            description=f"FLUX Erase: rows finished of {total_rows}",
        )

    def _percent(self, done_rows: int) -> float:
        return 100.0 if not self.total_rows else round(100.0 * done_rows / self.total_rows, 2)

    def update(self, *, done_rows: int, failed_rows: int = 0) -> None:
        """Set the progress to ``done_rows`` of the total (sent now, or held for a moment)."""
        self._held = (done_rows, failed_rows)
        finished = done_rows >= self.total_rows
        if finished or time.monotonic() - self._last >= self.min_interval:
            self.flush()

    def flush(self) -> None:
        """Send the update held back, if any."""
        if self._held is None:
            return
        done_rows, failed_rows = self._held
        self._held = None
        self._last = time.monotonic()
        self.sent += 1
        update_progress_artifact(
            artifact_id=self._id,
            progress=self._percent(done_rows),
            description=f"FLUX Erase: {done_rows} of {self.total_rows} rows finished "
            f"({failed_rows} failed)",
        )


def publish_summary(summary: EraseSummary) -> None:
    """Create the summary table, the failures table and the report link artifacts.

    Example:
        ```python
        publish_summary(summary)    # inside a flow run
        ```
    """
    create_table_artifact(
        table=summary_table(summary),
        key=_artifact_key(summary.run_key, "summary"),
        description=f"FLUX Erase summary: {summary.describe()}",
    )
    if summary.failures:
        create_table_artifact(
            table=failures_table(summary.failures),
            key=_artifact_key(summary.run_key, "failures"),
            description=(
                f"First {min(len(summary.failures), MAX_LISTED_FAILURES)} failed rows of "
                f"{summary.failed}; every row is in {summary.results_uri}"
            ),
        )
    if summary.report_uri:
        create_link_artifact(
            link=summary.report_uri,
            link_text="FLUX Erase report (before/after)",
            key=_artifact_key(summary.run_key, "report"),
            description="HTML report of this run",
        )

"""The artifacts that show a run in the Prefect UI: progress, summary, failures, report link."""

from __future__ import annotations

import time
from uuid import UUID

from prefect.artifacts import (
    create_link_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from prefect_flux_erase.results.summary import (
    MAX_LISTED_FAILURES,
    EraseSummary,
    failures_table,
    summary_table,
)

__all__ = ["EraseSummary", "ProgressArtifact", "publish_summary"]


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

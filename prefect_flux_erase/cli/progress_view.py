"""What `flux-erase` shows while a run goes and when it ends: a progress view and the summary.

On a terminal the progress is a live bar; in a pipe or a log file, one plain line per change.
Both go to stderr, so stdout carries only the summary (for scripts).

Example:
    ```python
    with ProgressView("erasing") as view, listen(view):
        summary = run_manifest(...)
    print_summary(summary)
    ```
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


class ProgressView:
    """A rich progress bar on a terminal; plain lines otherwise. Always on stderr.

    Example:
        >>> from prefect_flux_erase.run.progress import Progress
        >>> with ProgressView("erasing") as view:  # stderr is not a terminal here
        ...     view(Progress(done_rows=2, total_rows=4, failed_rows=1))
    """

    def __init__(self, label: str, on_first: Callable[[], None] | None = None) -> None:
        self.label = label
        #: Called once, at the first report (it comes from the flow's own thread).
        self.on_first = on_first
        self.tty = sys.stderr.isatty()
        self._bar: Any = None
        self._task: Any = None
        self._last = -1

    def __enter__(self) -> ProgressView:
        if self.tty:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

            self._bar = Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
            )
            self._bar.start()
            # Until the run's first report (after Prefect's start and the plan).
            self._task = self._bar.add_task(f"{self.label}: starting", total=None)
        return self

    def __call__(self, progress: Any) -> None:
        first = self.on_first
        if first is not None:
            self.on_first = None
            first()
        if progress.message:  # what the run will cost, said before the first row moves
            if self._bar is not None:
                self._bar.console.print(f"flux-erase: {progress.message}", markup=False)
            else:
                print(f"flux-erase: {progress.message}", file=sys.stderr, flush=True)
        if self._bar is not None:
            self._bar.update(
                self._task,
                total=progress.total_rows,
                completed=progress.done_rows,
                description=f"{self.label} ({progress.failed_rows} failed)",
            )
        elif progress.done_rows != self._last:
            self._last = progress.done_rows
            print(
                f"{self.label}: {progress.done_rows}/{progress.total_rows} rows "
                f"({progress.failed_rows} failed)",
                file=sys.stderr,
                flush=True,
            )

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


def print_summary(summary: Any) -> None:
    """Print a run's summary on stdout: counts, where the results and the report are, codes.

    Example:
        >>> from prefect_flux_erase.results.summary import EraseSummary
        >>> print_summary(EraseSummary(rows=2, succeeded=1, failed=1, results_uri="r.parquet",
        ...                            error_counts={"emptyMask": 1}))  # doctest: +ELLIPSIS
        1 of 2 rows succeeded, 1 failed, ...
          1 x emptyMask
    """
    if summary is None or isinstance(summary, BaseException):
        return
    print(summary.describe())
    if summary.report_uri:
        print(f"report: {summary.report_uri}")
    for code, count in sorted(summary.error_counts.items()):
        print(f"  {count} x {code}")

"""The run report, opened in a real headless Chromium over loopback HTTP, shows what it claims.

The page is checked as a person would see it: every thumbnail decodes in the browser, and the
failed rows are listed with their error codes. A second test breaks one image path in a copy
of the report and proves that the check notices.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from tests.browser.report_check import ReportCheck, check_report, serve_directory
from tests.browser.sample_run import BAD_ROWS, SAMPLES, run_sample
from tests.fixtures.chromium import require_chromium

pytestmark = pytest.mark.usefixtures("prefect_harness")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def report_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One sample run (echo engine: this checks the report, not the engine) per module."""
    require_chromium()  # skip (or fail in CI) before paying for the run
    return run_sample(tmp_path_factory.mktemp("report-run"), local_engine="echo")


def _check(directory: Path, page: str, *, screenshot: bool = False) -> ReportCheck:
    with serve_directory(directory) as base_url:
        return asyncio.run(check_report(f"{base_url}/{page}", screenshot=screenshot))


def test_every_thumbnail_decodes_and_failed_rows_are_listed_with_codes(
    report_output: Path, tmp_path: Path
) -> None:
    check = _check(report_output, "report.html", screenshot=True)

    assert check.title == "FLUX Erase run"
    # before, mask and after for each good row; before and mask for the wrong-size row (the
    # missing photo has only its mask).
    assert len(check.images) == 3 * len(SAMPLES) + 2 + 1
    assert check.broken_images == []
    assert check.failed_codes == BAD_ROWS
    assert {i["alt"] for i in check.images} == {"before", "mask", "after"}
    assert check.screenshot is not None
    assert check.screenshot.startswith(PNG_MAGIC)
    assert len(check.screenshot) > 20_000  # a rendered page, not a blank one
    (tmp_path / "report.png").write_bytes(check.screenshot)  # kept for a person to look at


def test_the_check_reports_a_broken_thumbnail(report_output: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(report_output, copy)
    page = (copy / "report.html").read_text(encoding="utf-8")
    first = page.index('src="report/') + len('src="')
    broken_src = "report/no-such-thumbnail.jpg"
    end = page.index('"', first)
    (copy / "broken.html").write_text(page[:first] + broken_src + page[end:], encoding="utf-8")

    check = _check(copy, "broken.html")

    assert check.broken_images == [broken_src]
    assert check.failed_codes == BAD_ROWS

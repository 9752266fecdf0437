"""The one table of row error codes: final or retryable, and what a rerun does with each."""

from __future__ import annotations

import pytest

from prefect_flux_erase.results.outcome_codes import (
    FINAL_CODES,
    REFETCH_CODES,
    RESUME_CODES,
    is_final,
    needs_rerun,
    rerun_action,
    retry_codes,
)
from tests.ecosystem.test_docs import code_error_codes


def test_the_three_sets_do_not_overlap() -> None:
    assert not FINAL_CODES & REFETCH_CODES
    assert not FINAL_CODES & RESUME_CODES
    assert not REFETCH_CODES & RESUME_CODES


@pytest.mark.parametrize(
    ("code", "final"),
    [
        ("invalidMaskDimensions", True),
        ("providerContentPolicyViolation", True),
        ("uploadFailed", True),
        ("timeoutProvider", False),  # an API code not listed: classified as transient
        ("serviceUnavailable", False),
        ("inferenceError", False),
        ("connectionError", False),
        ("downloadFailed", False),
        ("notAttempted", False),
        ("budgetExhausted", False),  # the spending cap: the next run may go on
        ("someNewCodeFromTheApi", True),  # unknown and not transient: left alone
        (None, False),
    ],
)
def test_final_or_retryable(code: str | None, final: bool) -> None:
    assert is_final(code) is final


def test_paid_results_are_fetched_again_except_on_the_local_backend() -> None:
    for code in REFETCH_CODES:
        assert rerun_action(code) == "refetch"
        assert rerun_action(code, backend="local") == "resume"
    assert rerun_action("pollTimeout") == "resume"
    assert rerun_action("emptyMask") == "keep"


def test_every_row_code_the_package_produces_is_classified_on_purpose() -> None:
    """A new row code must be put in one of the sets, not left to the API classifier."""
    # Where row codes come from: the row's stages, the wire client, storage and the engine.
    # (The manifest, the run, the faces and the CLI raise run-level codes of their own.)
    row_sources = ("shards/", "runware/", "storage/", "engine/", "results/")
    run_level = {
        "missingApiKey",
        "invalidApiKey",
        "insufficientCredits",
        "apiUnreachable",
        "interrupted",
        "cancelled",
        "missingParts",
        "partMismatch",
        "outcomeMismatch",
        "thumbnailFailed",  # report placeholders, not row codes
        "signedUrl",
        "uploaded",
    }
    classified = FINAL_CODES | REFETCH_CODES | RESUME_CODES
    produced = {
        code
        for code, where in code_error_codes().items()
        if where.startswith(tuple(f"prefect_flux_erase/{s}" for s in row_sources))
    }
    unclassified = produced - classified - run_level
    assert "emptyMask" in produced  # the scan reached the row sources
    assert not unclassified, f"row codes missing from outcome_codes.py: {sorted(unclassified)}"


def test_retry_failed_spellings() -> None:
    assert retry_codes(True) == retry_codes([]) == frozenset({"*"})
    assert retry_codes("emptyMask") == frozenset({"emptyMask"})
    assert needs_rerun({"emptyMask": 1}, retry_codes(True))
    assert not needs_rerun({"emptyMask": 1}, retry_codes(["uploadFailed"]))
    assert needs_rerun({"emptyMask": 1, "downloadFailed": 2})


def test_the_error_code_page_says_what_the_table_says() -> None:
    from pathlib import Path

    page = Path(__file__).resolve().parents[2] / "docs" / "concepts" / "error-codes.md"
    said: dict[str, str] = {}
    for line in page.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or cells[-1] not in ("final", "retryable", "retryable: fetched"):
            continue
        for code in cells[0].replace("`", "").split(","):
            said[code.strip()] = cells[-1]
    assert len(said) > 30
    for code, rerun in said.items():
        assert is_final(code) is (rerun == "final"), (code, rerun)
        assert (code in REFETCH_CODES) is (rerun == "retryable: fetched"), (code, rerun)
    undocumented = (FINAL_CODES | REFETCH_CODES | RESUME_CODES) - set(said) - {"budgetExhausted"}
    assert not undocumented, f"codes without a rerun column on the page: {sorted(undocumented)}"

"""The estimate (headers only, no API request) against the emulator's ledger, and the cost cap:
the ledger never passes the cap, rows left say why, and a higher cap finishes them once."""

from __future__ import annotations

from pathlib import Path

import pytest

from prefect_flux_erase.costs import BudgetExhausted
from prefect_flux_erase.emulator import EmulatorServer
from prefect_flux_erase.run import EraseOptions, RunConfigError, estimate_cost
from tests.costs.common import config_for, erase, manifest_of, results, write_rows

#: Mixed sizes: square, non-square, just over 1 MP, exactly 4 MP and over 4 MP (resized).
SIZES = [(1024, 1024), (1500, 900), (300, 1200), (1025, 1024), (2048, 2048), (2600, 1800)]
#: The documented price of each size above ($0.03 + $0.004 per further MP, rounded up).
PRICES = [0.03, 0.034, 0.03, 0.034, 0.042, 0.042]


@pytest.fixture
def mixed(tmp_path: Path) -> str:
    return manifest_of(tmp_path, write_rows(tmp_path, range(len(SIZES)), SIZES))


@pytest.mark.parametrize("reference_billed", [False, True])
def test_the_estimate_brackets_the_bill_and_each_end_is_exact_for_one_setting(
    mixed: str, tmp_path: Path, emu: EmulatorServer, reference_billed: bool
) -> None:
    options = EraseOptions(include_cost=True, number_results=2)

    estimate = estimate_cost(mixed, runware=config_for(emu), options=options)

    assert emu.stats()["requests_total"] == 0  # headers only: no request to the API
    assert estimate.rows == estimate.distinct == estimate.billed_rows == len(SIZES)
    assert estimate.results_billed == 2 * len(SIZES)
    assert estimate.low_usd == pytest.approx(2 * sum(PRICES))
    assert estimate.high_usd > estimate.low_usd  # the input as a reference image: unsettled
    emu.configure(charge_reference_image=reference_billed)

    summary = erase(mixed, f"{tmp_path}/out", emu, options=options)

    ledger = emu.stats()["total_usd"]
    assert ledger == pytest.approx(estimate.high_usd if reference_billed else estimate.low_usd)
    assert summary.total_cost == pytest.approx(ledger)
    assert summary.estimate["low_usd"] == estimate.low_usd  # recorded next to the actual cost
    assert summary.estimate["high_usd"] == estimate.high_usd


def test_rows_that_would_fail_locally_or_repeat_cost_nothing_in_the_estimate(
    tmp_path: Path,
) -> None:
    rows = write_rows(tmp_path, [0, 1, 0, 1, 2])
    rows.append({"row_key": "gone", "image_uri": f"{tmp_path}/nope.jpg", "mask_uri": "x.png"})
    small = write_rows(tmp_path / "small", [9], [(128, 128)] * 10)
    rows += [{**small[0], "row_key": "small"}]

    estimate = estimate_cost(manifest_of(tmp_path, rows), key_column="row_key")

    assert (estimate.rows, estimate.distinct, estimate.shared_rows) == (7, 3, 2)
    assert estimate.unusable_rows == 2  # missing and under the 256 px minimum
    assert estimate.low_usd == pytest.approx(0.09)


def test_a_cap_below_the_estimate_is_never_passed_and_a_higher_cap_finishes_the_rest(
    mixed: str, tmp_path: Path, emu: EmulatorServer
) -> None:
    estimate = estimate_cost(mixed, runware=config_for(emu))
    cap = round(0.5 * estimate.low_usd, 4)
    output = f"{tmp_path}/out"

    with pytest.raises(BudgetExhausted) as stopped:
        erase(mixed, output, emu, max_cost_usd=cap)

    spent = emu.stats()["total_usd"]
    assert 0 < spent <= cap
    summary = stopped.value.summary
    assert summary.cap_reached
    assert summary.budget_exhausted > 0
    left = [r for r in results(output) if r["error_code"] == "budgetExhausted"]
    assert len(left) == summary.budget_exhausted
    assert all(r["status"] == "failed" for r in left)
    assert "max_cost_usd" in left[0]["error_message"]

    erase(mixed, output, emu, max_cost_usd=estimate.high_usd)

    stats = emu.stats()
    assert stats["results_billed"] == len(SIZES)  # every row billed exactly once in all
    assert {entry["count"] for entry in stats["billed"].values()} == {1}
    assert stats["total_usd"] == pytest.approx(estimate.low_usd)
    assert {r["status"] for r in results(output)} == {"succeeded"}


def test_the_cap_applies_to_the_runware_backend_only(tmp_path: Path, mixed: str) -> None:
    with pytest.raises(RunConfigError, match="max_cost_usd applies to the runware backend"):
        erase(mixed, f"{tmp_path}/out", None, backend="local", runware=None, max_cost_usd=1.0)
    with pytest.raises(RunConfigError, match="max_cost_usd must be a positive amount"):
        estimate_cost(mixed, max_cost_usd=-1)


def test_verify_estimate_asks_the_dry_run_once_per_size_and_runs_nothing(
    mixed: str, emu: EmulatorServer
) -> None:
    estimate = estimate_cost(mixed, runware=config_for(emu), verify_estimate=True)

    stats = emu.stats()
    assert stats["dry_runs"] == len(set(SIZES))
    assert stats["results_billed"] == 0
    assert estimate.verified_usd == pytest.approx(estimate.low_usd)

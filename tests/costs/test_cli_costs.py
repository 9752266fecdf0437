"""`flux-erase estimate` (no API request, no key) and the money flags of `flux-erase run`:
the estimate printed first, exit code 3 at the cost cap, flag names in error messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prefect_flux_erase.cli import main
from prefect_flux_erase.emulator import EmulatorServer
from tests.costs.common import manifest_of, results, write_rows
from tests.fixtures.jobs import TEST_KEY


@pytest.fixture
def manifest(tmp_path: Path) -> str:
    # Four rows, three contents: one row shares the first row's erase.
    return manifest_of(tmp_path, write_rows(tmp_path, [0, 1, 0, 2]))


def test_estimate_prints_the_cost_without_a_key_or_a_request(
    manifest: str,
    emu: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("RUNWARE_API_KEY", raising=False)

    code = main(["estimate", manifest, "--base-url", emu.url, "--number-results", "2"])

    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.startswith("4 rows, 3 distinct contents (1 share another row's erase)")
    assert "6 results billed, $0.1800 (up to $0.2040" in out
    assert emu.stats()["requests_total"] == 0
    assert main(["estimate", manifest, "--json", "--max-cost", "0.05"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["low_usd"], data["distinct"], data["rows_over_cap"]) == (0.09, 3, 2)


def test_estimate_names_the_flag_of_a_bad_value(
    manifest: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["estimate", manifest, "--max-cost", "-1"]) == 2
    assert "--max-cost must be a positive amount" in capsys.readouterr().err
    assert main(["estimate", manifest, "--pass-urls", "photo"]) == 2
    assert "--pass-urls names ['photo']" in capsys.readouterr().err


@pytest.mark.usefixtures("prefect_harness")
def test_run_prints_the_estimate_first_and_exits_3_at_the_cap(
    manifest: str,
    tmp_path: Path,
    emu: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("RUNWARE_API_KEY", TEST_KEY)
    run = ["run", manifest, "--output", f"{tmp_path}/out", "--backend", "runware"]
    run += ["--base-url", emu.url, "--key-column", "row_key", "--no-report"]

    code = main([*run, "--max-cost", "0.05"])

    _, err = capsys.readouterr()
    assert code == 3, err
    assert "estimate: 4 rows, 3 distinct contents" in err
    assert err.index("estimate:") < err.index("rows (")  # before the progress lines
    assert "cost cap of $0.0500 was reached" in err
    assert emu.stats()["total_usd"] <= 0.05
    codes = [r["error_code"] for r in results(f"{tmp_path}/out")]
    # $0.034 at most per row (1 MP, the input billed as a reference image): one fits, so
    # only the first content is sent (its repeat rides along); the other two wait.
    assert codes.count("budgetExhausted") == 2

    assert main([*run, "--max-cost", "1"]) == 0
    assert "4 of 4 rows succeeded" in capsys.readouterr().out
    assert emu.stats()["results_billed"] == 3

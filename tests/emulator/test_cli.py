"""``flux-erase emulator`` starts in a subprocess, prints its URL and serves until signalled."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import httpx
import pytest

from prefect_flux_erase.emulator.command import config_from_args, main, parser

PING = [{"taskType": "ping"}]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_cli_prints_its_url_serves_and_stops_on_signal(stop: signal.Signals) -> None:
    cmd = [
        sys.executable,
        "-m",
        "prefect_flux_erase.cli",
        "emulator",
        "--port",
        "0",
        "--seed",
        "3",
        "--latency",
        "0",
        "--fault",
        "http_429=0.0",
        "--api-key",
        "k1",
        "--api-key",
        "k2",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.fullmatch(r"Runware emulator serving (http://127\.0\.0\.1:\d+/v1)\n", line)
        assert match, line
        url = match.group(1)
        with httpx.Client(timeout=30, trust_env=False) as http:
            ok = http.post(url, json=PING, headers={"Authorization": "Bearer k2"})
            bad = http.post(url, json=PING, headers={"Authorization": "Bearer k3"})
        assert (ok.status_code, bad.status_code) == (200, 401)
        proc.send_signal(stop)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_arguments_build_the_config() -> None:
    args = parser().parse_args(
        ["--engine", "echo", "--latency", "0.1,0.3", "--fault", "reset_after=0.2", "--seed", "9"]
    )
    config = config_from_args(args)
    assert config.latency == (0.1, 0.3)
    assert config.faults == {"reset_after": 0.2}
    assert config.seed == 9
    assert config.api_keys is None
    assert (config.charge_reference_image, config.dry_run_supported) == (False, True)


def test_the_unsettled_billing_points_are_switches_on_the_command_line() -> None:
    config = config_from_args(parser().parse_args(["--charge-reference-image", "--no-dry-run"]))
    assert (config.charge_reference_image, config.dry_run_supported) == (True, False)


def test_bad_fault_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--fault", "meteor=0.1"])
    assert exc.value.code == 2
    assert "KIND=RATE" in capsys.readouterr().err


def test_rates_above_one_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--fault", "http_500=0.7", "--fault", "http_503=0.7"]) == 2
    assert "sum to at most 1" in capsys.readouterr().err

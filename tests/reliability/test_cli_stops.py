"""The `flux-erase` command stopped for real: Ctrl-C, a wrong endpoint, a rejected key.

Each test runs the installed command in a process of its own, as a user would (a temporary
Prefect server included), against the emulator over HTTP, and checks what happened: the exit
code, what was printed, the results, the emulator's ledger — and, for the bounds the issue
itself states, that the command was gone within 10 s.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from prefect_flux_erase.emulator import EmulatorServer
from tests.fixtures.corpus import (
    assert_each_result_charged_once,
    cycled_rows,
    results,
    shared_pairs,
    write_manifest,
)

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
KEY = "rk-cli-stops-0123456789"
#: What a Prefect server going away under a running flow prints (the flood of issue 13).
PREFECT_FLOOD = ("Unable to connect", "EventsWorker", "Error logging to API", "Traceback")


def _command() -> list[str]:
    script = Path(sys.executable).with_name("flux-erase")
    return [str(script)] if script.exists() else [sys.executable, "-m", "prefect_flux_erase.cli"]


class Cli:
    """``flux-erase`` in its own session (so that a signal can go to its whole group, as a
    terminal's Ctrl-C does), its stderr read line by line as it comes."""

    def __init__(self, args: list[str], *, api_key: str = KEY) -> None:
        env = {**os.environ, "RUNWARE_API_KEY": api_key, "PYTHONUNBUFFERED": "1"}
        env.pop("PREFECT_API_URL", None)  # as a user runs it: a temporary Prefect server
        env["PYTHONPATH"] = str(REPO)
        self.proc = subprocess.Popen(
            [*_command(), *args],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.lines: list[tuple[float, str]] = []
        self._out: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._out_reader = threading.Thread(target=self._read_out, daemon=True)
        self._out_reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        self._out.extend(self.proc.stdout)

    @property
    def stdout(self) -> str:
        return "".join(self._out)

    def first(self, text: str, timeout: float = 300) -> float:
        """When the first stderr line containing ``text`` came (waits for it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for when, line in list(self.lines):
                if text in line:
                    return when
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.02)
        raise AssertionError(f"no line with {text!r}:\n{self.stderr[-3000:]}")

    def wait(self, timeout: float = 600) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(10)
        self._out_reader.join(10)
        return code

    def killpg(self, sig: int) -> None:
        os.killpg(self.proc.pid, sig)

    @property
    def stderr(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def resume_command(self) -> list[str]:
        (line,) = [line for _, line in self.lines if line.startswith("resume with: ")]
        return shlex.split(line.removeprefix("resume with: "))


def _run_args(manifest: str, output: str, url: str, *extra: str) -> list[str]:
    return [
        "run",
        manifest,
        "--output",
        output,
        "--backend",
        "runware",
        "--base-url",
        url,
        "--no-report",
        "--key-column",
        "row_key",
        *extra,
    ]


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def _failed_codes(output: str) -> set[str]:
    codes: set[str] = set()
    for part in Path(output, "_parts").glob("shard-*.parquet"):
        codes |= {c for c in pq.read_table(part).column("error_code").to_pylist() if c}
    return codes


def test_ctrl_c_at_half_of_2000_rows_exits_within_10_s_and_the_printed_command_resumes(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    rows = 2000
    root = str(tmp_path)
    manifest = write_manifest(f"{root}/m.parquet", cycled_rows(shared_pairs(root), rows))
    output = f"{root}/out"
    emu.configure(latency=0.05)
    # Rows cycle over a few photos: --no-dedupe, so that every row is a task of its own.
    args = ["--shard-size", "50", "--concurrency", "25", "--no-dedupe"]
    cli = Cli(_run_args(manifest, output, emu.url, *args))

    deadline = time.monotonic() + 300
    while emu.stats()["results_billed"] < rows // 2:
        assert cli.proc.poll() is None, f"the run ended first:\n{cli.stderr[-3000:]}"
        assert time.monotonic() < deadline, "half the rows never got charged"
        time.sleep(0.02)
    cli.killpg(signal.SIGINT)  # as Ctrl-C in a terminal: the whole foreground group
    sent = time.monotonic()
    code = cli.wait(timeout=120)
    took = time.monotonic() - sent

    assert code == 130, cli.stderr[-3000:]
    assert took < 10, f"exited {took:.1f} s after Ctrl-C"
    assert "rows are done and committed" in cli.stderr
    for noise in PREFECT_FLOOD:
        assert noise not in cli.stderr, cli.stderr[-3000:]
    assert not Path(output, "results.parquet").exists()
    emu.wait_idle()
    billed_at_stop = emu.stats()["results_billed"]
    assert billed_at_stop < rows

    again = Cli(cli.resume_command()[1:])  # the command printed, as printed
    assert again.wait() == 0, again.stderr[-3000:]

    got = results(output)
    assert [r["row_index"] for r in got] == list(range(rows))
    assert {r["status"] for r in got} == {"succeeded"}
    emu.wait_idle()
    assert_each_result_charged_once(emu.stats()["billed"], got)


@pytest.mark.parametrize("fault", ["closed-port", "rejected-key"])
def test_a_run_level_fault_exits_3_within_10_s_of_the_api_phase_and_a_fixed_rerun_completes(
    tmp_path: Path, emu: EmulatorServer, fault: str
) -> None:
    root = str(tmp_path)
    manifest = write_manifest(f"{root}/m.parquet", cycled_rows(shared_pairs(root), 40))
    output = f"{root}/out"
    url, key, advice = emu.url, KEY, "check the API key"
    if fault == "closed-port":
        url, advice = _closed_port_url(), "check the base URL"
    else:
        emu.configure(api_keys=frozenset({KEY}))
        key = KEY + "-revoked"
    cli = Cli(_run_args(manifest, output, url, "--shard-size", "10", "--no-dedupe"), api_key=key)

    api_phase = cli.first("erasing: 0/40 rows")  # planned: the first request goes out now
    code = cli.wait()
    took = time.monotonic() - api_phase

    assert code == 3, cli.stderr[-3000:]
    assert took < 10, f"the command took {took:.1f} s after the API phase started"
    assert advice in cli.stderr
    assert "resume with: flux-erase run" in cli.stderr
    assert key not in cli.stderr + cli.stdout
    assert not Path(output, "results.parquet").exists()
    assert not _failed_codes(output) - {"notAttempted", "notFinished"}

    fixed = Cli(_run_args(manifest, output, emu.url, "--shard-size", "10", "--no-dedupe"))
    assert fixed.wait() == 0, fixed.stderr[-3000:]

    got = results(output)
    assert [r["status"] for r in got] == ["succeeded"] * 40
    emu.wait_idle()
    assert_each_result_charged_once(emu.stats()["billed"], got)

"""Nothing lost, nothing stuck: what a rerun with the same run key recovers, in plain Python.

Every test runs the core's front door (:func:`~prefect_flux_erase.run.run_manifest`, on its
own asyncio executor) against the emulator over HTTP, with real faults: the emulator's fault
injection, a closed port, a rejected key, an output folder that cannot be written, a mask fixed
in place, a PUT target that refuses uploads. Each checks what the rerun did — the emulator's
request counts and ledger, the results — rather than how long anything took.
"""

from __future__ import annotations

import http.server
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from prefect_flux_erase.emulator import EmulatorServer
from prefect_flux_erase.run import (
    RunStopped,
    RunwareConfig,
    clear_interrupt,
    interrupt_runs,
    run_manifest,
)
from prefect_flux_erase.runware.options import EraseOptions
from tests.fixtures.builders import mask_bytes, write_inputs, write_manifest
from tests.fixtures.corpus import assert_each_result_charged_once, results
from tests.fixtures.jobs import FAST_POLL, FAST_RETRY, TEST_KEY


def _run(manifest: str, output: str, url: str, **options: Any) -> Any:
    options.setdefault("runware", RunwareConfig(api_key=TEST_KEY, base_url=url))
    options.setdefault("poll_policy", FAST_POLL)
    options.setdefault("retry_policy", FAST_RETRY)
    options.setdefault("options", EraseOptions(include_cost=True))
    return run_manifest(
        manifest,
        output,
        backend="runware",
        key_column="row_key",
        report=False,
        max_failed_fraction=1.0,
        **options,
    )


def _inference_requests(emu: EmulatorServer) -> int:
    return int(emu.stats()["requests_by_task_type"].get("imageInference", 0))


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def _by_key(output: str) -> dict[str, dict[str, Any]]:
    return {r["row_key"]: r for r in results(output)}


def test_download_failures_are_fetched_again_with_no_new_task_or_charge(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    root = str(tmp_path)
    manifest = write_manifest(f"{root}/m.parquet", write_inputs(root, 4))
    output = f"{root}/out"
    emu.configure(fault_targets=frozenset({"download"}), faults={"http_503": 1.0})
    # A manifest run takes its results inline unless asked for URLs: a ttl asks for them, so
    # each result is a download (the one that fails).
    urls = EraseOptions(include_cost=True, ttl=3600)

    first = _run(manifest, output, emu.url, shard_size=2, options=urls)

    assert first.failed == 4
    assert set(first.error_counts) == {"downloadFailed"}
    emu.wait_idle()
    before = emu.stats()
    assert before["results_billed"] == 4
    emu.configure(faults={})

    second = _run(manifest, output, emu.url, shard_size=2, options=urls)

    assert (second.succeeded, second.failed) == (4, 0)
    emu.wait_idle()
    after = emu.stats()
    assert _inference_requests(emu) == before["requests_by_task_type"]["imageInference"]
    assert after["results_billed"] == 4
    rows = results(output)
    assert_each_result_charged_once(after["billed"], rows)
    for row in rows:
        assert Path(row["output_uri"][0]).read_bytes()[:3] == b"\xff\xd8\xff"  # a JPEG


def test_output_write_failures_are_fetched_again_with_no_new_task_or_charge(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    root = str(tmp_path)
    manifest = write_manifest(f"{root}/m.parquet", write_inputs(root, 3))
    output = f"{root}/out"
    blocker = Path(output) / "images"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where the images folder should be")  # every write fails

    first = _run(manifest, output, emu.url)

    assert first.error_counts == {"outputWriteFailed": 3}
    emu.wait_idle()
    sent = _inference_requests(emu)
    blocker.unlink()

    second = _run(manifest, output, emu.url)

    assert (second.succeeded, second.failed) == (3, 0)
    emu.wait_idle()
    assert _inference_requests(emu) == sent
    assert_each_result_charged_once(emu.stats()["billed"], results(output))
    assert all(Path(r["output_uri"][0]).exists() for r in results(output))


def test_inline_output_write_failures_are_fetched_again_without_a_new_task(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    root = str(tmp_path)
    manifest = write_manifest(f"{root}/m.parquet", write_inputs(root, 2))
    output = f"{root}/out"
    blocker = Path(output) / "images"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("not a folder")
    options = EraseOptions(include_cost=True, output_type="base64Data")

    first = _run(manifest, output, emu.url, options=options)

    assert first.error_counts == {"outputWriteFailed": 2}
    emu.wait_idle()
    sent = _inference_requests(emu)
    blocker.unlink()

    second = _run(manifest, output, emu.url, options=options)

    assert (second.succeeded, second.failed) == (2, 0)
    assert _inference_requests(emu) == sent
    assert_each_result_charged_once(emu.stats()["billed"], results(output))


def test_a_mask_fixed_in_place_reruns_that_row_only(tmp_path: Path, emu: EmulatorServer) -> None:
    root = str(tmp_path)
    rows = write_inputs(root, 4)
    wrong = Path(rows[2]["mask_uri"]).with_name("img002-wrong-mask.png")
    wrong.write_bytes(mask_bytes((128, 128)))
    rows[2]["mask_uri"] = str(wrong)
    manifest = write_manifest(f"{root}/m.parquet", rows)
    output = f"{root}/out"

    first = _run(manifest, output, emu.url, shard_size=2)
    assert first.error_counts == {"invalidMaskDimensions": 1}
    emu.wait_idle()
    sent = _inference_requests(emu)

    unchanged = _run(manifest, output, emu.url, shard_size=2)  # nothing was fixed
    assert unchanged.error_counts == {"invalidMaskDimensions": 1}
    assert _inference_requests(emu) == sent

    time.sleep(0.01)  # a file system with coarse timestamps still sees a new mtime
    wrong.write_bytes(mask_bytes())  # the fix, in place: same URI
    fixed = _run(manifest, output, emu.url, shard_size=2)

    assert (fixed.succeeded, fixed.failed) == (4, 0)
    emu.wait_idle()
    assert _inference_requests(emu) == sent + 1
    got = _by_key(output)
    assert got["img002"]["status"] == "succeeded"
    assert_each_result_charged_once(emu.stats()["billed"], results(output))


def test_a_closed_port_stops_the_run_fast_and_the_rerun_completes(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    root = str(tmp_path)
    manifest = write_manifest(f"{root}/m.parquet", write_inputs(root, 6))
    output = f"{root}/out"
    wrong = RunwareConfig(api_key=TEST_KEY, base_url=_closed_port_url())

    started = time.monotonic()
    with pytest.raises(RunStopped) as caught:
        # The client's own retry policy: the guard must not depend on short test backoffs.
        _run(manifest, output, emu.url, runware=wrong, retry_policy=None, shard_size=2)
    elapsed = time.monotonic() - started

    assert caught.value.code == "apiUnreachable", repr(caught.value)
    assert "base URL" in str(caught.value)
    assert elapsed < 10, f"the run took {elapsed:.0f} s to stop"
    assert not (Path(output) / "results.parquet").exists()
    _assert_no_row_failed_with(output, {"connectionError", "apiUnreachable", "unanswered"})

    done = _run(manifest, output, emu.url, shard_size=2)

    assert (done.succeeded, done.failed) == (6, 0)
    emu.wait_idle()
    assert_each_result_charged_once(emu.stats()["billed"], results(output))


def test_a_rejected_key_stops_the_run_and_the_rerun_with_the_right_key_completes(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    root = str(tmp_path)
    manifest = write_manifest(f"{root}/m.parquet", write_inputs(root, 5))
    output = f"{root}/out"
    emu.configure(api_keys=frozenset({TEST_KEY}))
    revoked = RunwareConfig(api_key=TEST_KEY + "-revoked", base_url=emu.url)

    with pytest.raises(RunStopped) as caught:
        _run(manifest, output, emu.url, runware=revoked, shard_size=2)

    assert caught.value.code == "invalidApiKey", repr(caught.value)
    assert "check the API key" in str(caught.value)
    assert TEST_KEY not in str(caught.value)
    _assert_no_row_failed_with(output, {"invalidApiKey"})

    done = _run(manifest, output, emu.url, shard_size=2)

    assert (done.succeeded, done.failed) == (5, 0)
    emu.wait_idle()
    assert emu.stats()["results_billed"] == 5
    assert_each_result_charged_once(emu.stats()["billed"], results(output))


def test_a_transient_outage_mid_run_loses_no_row_and_charges_none_twice(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    root = str(tmp_path)
    manifest = write_manifest(f"{root}/m.parquet", write_inputs(root, 60))
    output = f"{root}/out"
    emu.configure(latency=0.02)
    outage = _OutageAfter(emu, rows=20, seconds=2.0)

    stopped: RunStopped | None = None
    try:
        first = _run(manifest, output, emu.url, shard_size=10, on_progress=outage.watch)
    except RunStopped as exc:  # a run-level stop is a valid way through an outage
        stopped = exc
    else:
        assert first.rows == 60
    assert stopped is None or stopped.code == "apiUnreachable", repr(stopped)
    outage.join()
    assert outage.started, "the outage never started"

    done = _run(manifest, output, emu.url, shard_size=10)

    assert (done.succeeded, done.failed) == (60, 0)
    emu.wait_idle()
    assert emu.stats()["results_billed"] == 60
    assert_each_result_charged_once(emu.stats()["billed"], results(output))


class _OutageAfter:
    """Once ``rows`` rows are done, every connection to the emulator is reset for ``seconds``."""

    def __init__(self, emu: EmulatorServer, *, rows: int, seconds: float) -> None:
        self.emu, self.rows, self.seconds = emu, rows, seconds
        self.started = False
        self._thread: threading.Thread | None = None

    def watch(self, progress: Any) -> None:
        if self.started or progress.done_rows < self.rows:
            return
        self.started = True
        self.emu.configure(
            faults={"reset_before": 1.0}, fault_targets=frozenset({"submit", "getResponse"})
        )
        self._thread = threading.Thread(target=self._end, daemon=True)
        self._thread.start()

    def _end(self) -> None:
        time.sleep(self.seconds)
        self.emu.configure(faults={})

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join(30)


def _assert_no_row_failed_with(output: str, codes: set[str]) -> None:
    import pyarrow.parquet as pq

    for part in sorted(Path(output, "_parts").glob("shard-*.parquet")):
        table: pa.Table = pq.read_table(part, columns=["status", "error_code"])
        found = {c for c in table.column("error_code").to_pylist() if c} & codes
        assert not found, f"{part.name} holds rows failed with {found}"


class _PutTarget(http.server.BaseHTTPRequestHandler):
    refuse = True
    received: dict[str, bytes] = {}  # noqa: RUF012 - one target per test, reset there

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if type(self).refuse:
            self.send_response(403)
            self.end_headers()
            return
        type(self).received[self.path] = body
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def put_target() -> Iterator[str]:
    _PutTarget.refuse, _PutTarget.received = True, {}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PutTarget)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_retry_failed_reattempts_final_rows_of_the_codes_given(
    tmp_path: Path, emu: EmulatorServer, put_target: str
) -> None:
    root = str(tmp_path)
    rows = write_inputs(root, 3)
    uploads = [
        f"{put_target}/up/{r['row_key']}.jpg" if i == 1 else None for i, r in enumerate(rows)
    ]
    manifest = write_manifest(f"{root}/m.parquet", rows, upload_url=pa.array(uploads, pa.string()))
    output = f"{root}/out"

    first = _run(manifest, output, emu.url)
    assert first.error_counts == {"uploadFailed": 1}
    again = _run(manifest, output, emu.url)  # a final code: a plain rerun leaves it alone
    assert again.error_counts == {"uploadFailed": 1}
    emu.wait_idle()
    sent = _inference_requests(emu)
    _PutTarget.refuse = False  # the target accepts uploads now: nothing a rule could see

    retried = _run(manifest, output, emu.url, retry_failed=["uploadFailed"])

    assert (retried.succeeded, retried.failed) == (3, 0)
    emu.wait_idle()
    assert _inference_requests(emu) == sent + 1
    assert list(_PutTarget.received) == ["/up/img001.jpg"]
    got = _by_key(output)
    assert got["img001"]["attempts"] == 2  # a new attempt, a new task UUID
    assert os.path.basename(got["img001"]["output_uri"][0]) == "img001.jpg"


def test_an_interrupted_run_commits_what_is_done_and_the_rerun_sends_only_the_rest(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    rows = 400
    root = str(tmp_path)
    manifest = write_manifest(f"{root}/m.parquet", _rows(root, rows))
    output = f"{root}/out"
    emu.configure(latency=0.05)
    outcome: dict[str, Any] = {}

    def first_run() -> None:
        try:
            _run(manifest, output, emu.url, shard_size=25, concurrency=10, dedupe=False)
        except RunStopped as exc:
            outcome["stopped"] = exc

    thread = threading.Thread(target=first_run)
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while emu.stats()["results_billed"] < rows // 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        interrupt_runs()  # what the CLI's Ctrl-C handler calls
        stopped_at = time.monotonic()
        thread.join(60)
        took = time.monotonic() - stopped_at
    finally:
        clear_interrupt()

    stopped = outcome.get("stopped")
    assert isinstance(stopped, RunStopped), outcome
    assert stopped.code == "interrupted"
    assert not stopped.is_fault
    assert took < 10, f"the run took {took:.1f} s to stop"
    assert 0 < stopped.done_rows < rows
    assert f"{stopped.done_rows} of {rows} rows are done" in str(stopped)
    done = _part_rows(output)
    assert {r["error_code"] for r in done if r["status"] != "succeeded"} <= {
        "notAttempted",
        "notFinished",
    }
    succeeded = sum(r["status"] == "succeeded" for r in done)
    assert succeeded == stopped.done_rows
    emu.wait_idle()
    sent = _inference_requests(emu)

    again = _run(manifest, output, emu.url, shard_size=25, concurrency=10, dedupe=False)

    assert (again.succeeded, again.failed) == (rows, 0)
    emu.wait_idle()
    # Done rows were kept: one request for every other row (a conflict for those in flight).
    assert _inference_requests(emu) - sent == rows - succeeded
    assert emu.stats()["results_billed"] == rows
    assert_each_result_charged_once(emu.stats()["billed"], results(output))


def _rows(root: str, n: int) -> list[dict[str, Any]]:
    """``n`` rows over 4 photos (runs over them pass ``dedupe=False``: one task per row)."""
    pairs = write_inputs(root, 4)
    return [{**pairs[i % 4], "row_key": f"row-{i:05d}"} for i in range(n)]


def _part_rows(output: str) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    found: list[dict[str, Any]] = []
    for part in sorted(Path(output, "_parts").glob("shard-*.parquet")):
        found += pq.read_table(part, columns=["status", "error_code"]).to_pylist()
    return found

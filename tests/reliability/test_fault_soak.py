"""Fault soak: 2,000 rows with every emulator fault kind injected (10 % of requests in total).

Submissions and polls (the polls carry the results inline, the pipeline's default) each
meet 429s (with Retry-After), 500/502/503/504, resets before and after the server did the
work, answers slower than the client's timeout, truncated JSON and ``timeoutProvider`` task
failures. Every row must still succeed, each result must be
charged exactly once (the emulator's ledger, keyed by task and image), and the results must
hold every row exactly once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from prefect_flux_erase.blocks import RunwareCredentials
from prefect_flux_erase.emulator import EmulatorServer
from prefect_flux_erase.emulator.config import FAULT_KINDS
from prefect_flux_erase.flows import erase_manifest
from prefect_flux_erase.runware.polling import PollPolicy
from prefect_flux_erase.runware.retry_policy import RetryPolicy
from tests.fixtures.corpus import (
    assert_each_result_charged_once,
    cycled_rows,
    results,
    shared_pairs,
    write_manifest,
)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

ROWS = 2000
#: Short waits: the test proves the retries happen, not how long they take.
RETRY = RetryPolicy(base=0.002, cap=0.05, jitter=0.5, max_retries=8, max_retry_after=0.05)
POLL = PollPolicy(initial_delay=0.0, interval=0.02, multiplier=1.5, max_interval=0.2)


def test_every_row_succeeds_and_is_charged_once_through_every_fault_kind(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    root = str(tmp_path)
    manifest = write_manifest(f"{root}/m.parquet", cycled_rows(shared_pairs(root), ROWS))
    emu.configure(
        faults=dict.fromkeys(FAULT_KINDS, 0.10 / len(FAULT_KINDS)),
        fault_targets=frozenset({"submit", "getResponse", "download"}),
        retry_after=0.01,
        slow_delay=1.5,  # longer than the client's 1 s timeout: a timed-out request
        seed=20240611,
    )
    # Random draws alone may skip the rare kinds (a ``timeoutProvider`` needs one of the ~70
    # submissions): each kind also fires once, in order, on the first requests it applies to.
    emu.script_faults(FAULT_KINDS)

    state = erase_manifest(
        manifest,
        f"{root}/out",
        backend="runware",
        # A 1 s timeout, so that "slow" answers are timeouts the client must recover from.
        credentials=RunwareCredentials(api_key="rk-soak", base_url=emu.url, timeout=1.0),
        shard_size=100,
        concurrency=32,
        max_shards_in_flight=4,
        poll_policy=POLL,
        retry_policy=RETRY,
        report=False,
        dedupe=False,  # the rows cycle over a few photos: one task per row, each faulted
        return_state=True,
    )

    assert state.is_completed(), state.message
    rows = results(f"{root}/out")
    assert [r["row_index"] for r in rows] == list(range(ROWS))
    assert len({r["row_key"] for r in rows}) == ROWS
    assert {r["status"] for r in rows} == {"succeeded"}, {
        r["error_code"] for r in rows if r["status"] != "succeeded"
    }
    for r in rows[:: ROWS // 20]:
        assert Path(r["output_uri"][0]).read_bytes()[:3] == b"\xff\xd8\xff"
    emu.wait_idle()
    stats = emu.stats()
    injected = stats["faults"]
    assert set(injected) == set(FAULT_KINDS), f"not every kind fired: {injected}"
    # ~10 % of the requests were faulted (inline results: no download per row, so a few
    # hundred requests in all); half of that leaves room for the draws' spread.
    assert sum(injected.values()) >= stats["requests_total"] * 0.05
    assert_each_result_charged_once(stats["billed"], rows)
    assert stats["results_billed"] == ROWS
    # timeoutProvider failures were retried under new task UUIDs: some rows needed attempt 2+.
    assert max(r["attempts"] for r in rows) >= 2

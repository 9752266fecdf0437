"""The billing ledger: every result charged exactly once, whatever faults happen around it."""

from __future__ import annotations

import httpx

from prefect_flux_erase.emulator import EmulatorServer
from tests.fixtures.emulator_requests import TaskFactory, poll


def _submit_until_accepted(client: httpx.Client, url: str, task: dict[str, object]) -> str:
    """Resubmit the same task until it is accepted or known; return how it ended."""
    for _ in range(50):
        try:
            reply = client.post(url, json=[task])
        except httpx.TransportError:
            continue
        if reply.status_code == 200:
            try:
                reply.json()
            except ValueError:
                continue  # malformed: the task may exist; the next try will tell
            return "accepted"
        if reply.status_code == 400 and reply.json()["errors"][0]["code"] == "conflictTaskUUID":
            return "conflict"
    raise AssertionError("never accepted")


def _poll_until_final(client: httpx.Client, url: str, task_uuid: str) -> dict[str, object]:
    for _ in range(50):
        try:
            reply = poll(client, url, task_uuid)
            items = reply.json()["data"]
        except (httpx.TransportError, ValueError, KeyError):
            continue
        if items and items[0].get("status") == "success":
            return dict(items[0])
    raise AssertionError("never finished")


def test_every_task_is_billed_exactly_once_under_random_faults(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    emu.configure(
        seed=11,
        faults={
            "http_429": 0.1,
            "http_503": 0.1,
            "reset_before": 0.1,
            "reset_after": 0.15,
            "malformed_json": 0.1,
        },
        retry_after=0,
    )
    tasks = [make_task(deliveryMethod="async", includeCost=True) for _ in range(20)]
    endings = [_submit_until_accepted(client, emu.url, t) for t in tasks]
    emu.configure(faults={})
    emu.wait_idle()
    for task in tasks:
        assert _poll_until_final(client, emu.url, str(task["taskUUID"]))["cost"] == 0.03
    stats = emu.stats()
    assert "conflict" in endings  # some replies were lost after the task was accepted
    assert sum(stats["faults"].values()) > 0
    assert stats["tasks_accepted"] == 20
    assert stats["billed"] == {t["taskUUID"]: {"count": 1, "usd": 0.03} for t in tasks}
    assert stats["results_billed"] == 20
    assert stats["total_usd"] == 0.6


def test_polling_a_finished_task_many_times_never_bills_again(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    task = make_task(deliveryMethod="async", numberResults=2)
    client.post(emu.url, json=[task])
    emu.wait_idle()
    for _ in range(5):
        poll(client, emu.url, task["taskUUID"])
    assert emu.stats()["billed"][task["taskUUID"]] == {"count": 2, "usd": 0.06}


def test_reset_clears_the_ledger_and_the_tasks(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    task = make_task()
    client.post(emu.url, json=[task])
    assert emu.stats()["total_usd"] == 0.03
    emu.reset()
    stats = emu.stats()
    assert (stats["total_usd"], stats["tasks_known"], stats["billed"]) == (0, 0, {})
    assert poll(client, emu.url, task["taskUUID"]).json()["errors"][0]["code"] == (
        "taskFailedOrNotFound"
    )

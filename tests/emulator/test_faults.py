"""Every fault kind, seen from the client side and counted in the emulator's stats."""

from __future__ import annotations

import json

import httpx
import pytest

from prefect_flux_erase.emulator import EmulatorServer
from tests.fixtures.emulator_requests import TaskFactory, poll


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("http_429", 429, "rateLimitExceeded"),
        ("http_500", 500, "internalServerError"),
        ("http_503", 503, "serviceUnavailable"),
        ("http_504", 504, "gatewayTimeout"),
    ],
)
def test_status_faults_answer_json_errors_and_process_nothing(
    emu: EmulatorServer,
    client: httpx.Client,
    make_task: TaskFactory,
    kind: str,
    status: int,
    code: str,
) -> None:
    emu.script_faults([kind])
    reply = client.post(emu.url, json=[make_task()])
    assert reply.status_code == status
    assert reply.json()["errors"][0]["code"] == code
    stats = emu.stats()
    assert stats["faults"] == {kind: 1}
    assert stats["requests_by_status"] == {str(status): 1}
    assert stats["tasks_accepted"] == 0


def test_502_is_a_proxy_html_page(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    emu.script_faults(["http_502"])
    reply = client.post(emu.url, json=[make_task()])
    assert reply.status_code == 502
    assert reply.headers["content-type"].startswith("text/html")
    assert emu.stats()["faults"] == {"http_502": 1}


@pytest.mark.parametrize(("seconds", "header"), [(1, "1"), (2.0, "2"), (0.1, "0.1")])
def test_429_carries_retry_after_whole_or_fractional(
    emu: EmulatorServer,
    client: httpx.Client,
    make_task: TaskFactory,
    seconds: float,
    header: str,
) -> None:
    emu.configure(retry_after=seconds)
    emu.script_faults(["http_429"])
    assert client.post(emu.url, json=[make_task()]).headers["retry-after"] == header


def test_reset_before_raises_a_transport_error_and_processes_nothing(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    emu.script_faults(["reset_before"])
    task = make_task()
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        client.post(emu.url, json=[task])
    stats = emu.stats()
    assert stats["faults"] == {"reset_before": 1}
    assert stats["requests_by_status"] == {"reset": 1}
    assert stats["tasks_accepted"] == 0
    assert client.post(emu.url, json=[task]).status_code == 200  # no conflict: never accepted


def test_reset_after_processes_bills_once_and_the_client_recovers_by_polling(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    emu.script_faults(["reset_after"])
    task = make_task(includeCost=True)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        client.post(emu.url, json=[task])
    retry = client.post(emu.url, json=[task])
    assert retry.status_code == 400
    assert retry.json()["errors"][0]["code"] == "conflictTaskUUID"
    emu.wait_idle()
    (item,) = poll(client, emu.url, task["taskUUID"]).json()["data"]
    assert item["status"] == "success"
    assert item["cost"] == 0.03
    stats = emu.stats()
    assert stats["billed"] == {task["taskUUID"]: {"count": 1, "usd": 0.03}}
    assert stats["faults"] == {"reset_after": 1}
    assert stats["conflicts"] == 1


def test_slow_reply_outlasts_the_client_timeout_but_the_task_is_accepted(
    emu: EmulatorServer, make_task: TaskFactory
) -> None:
    emu.configure(slow_delay=1.0)
    emu.script_faults(["slow"])
    task = make_task(deliveryMethod="async")
    with (
        httpx.Client(headers={"Authorization": "Bearer k"}, timeout=0.2, trust_env=False) as fast,
        pytest.raises(httpx.ReadTimeout),
    ):
        fast.post(emu.url, json=[task])
    assert emu.stats()["faults"] == {"slow": 1}
    assert emu.stats()["tasks_accepted"] == 1


def test_malformed_json_reply_after_the_task_was_accepted(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    emu.script_faults(["malformed_json"])
    task = make_task(deliveryMethod="async")
    reply = client.post(emu.url, json=[task])
    assert reply.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        reply.json()
    assert emu.stats()["tasks_accepted"] == 1
    assert emu.stats()["faults"] == {"malformed_json": 1}


@pytest.mark.parametrize("form", ["A", "B"])
def test_timeout_provider_ends_the_task_in_error_unbilled_in_both_forms(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory, form: str
) -> None:
    emu.configure(failure_form=form)
    emu.script_faults(["timeout_provider"])
    task = make_task(deliveryMethod="async")
    assert client.post(emu.url, json=[task]).status_code == 200
    emu.wait_idle()
    reply = poll(client, emu.url, task["taskUUID"])
    assert reply.status_code == 200
    body = reply.json()
    if form == "A":
        assert body["data"] == []
        (error,) = body["errors"]
        assert error["code"] == "timeoutProvider"
        assert error["status"] == "error"
        assert error["taskUUID"] == task["taskUUID"]
        assert error["taskType"] == "imageInference"
        assert error["documentation"].startswith("https://runware.ai/docs/")
    else:
        assert "errors" not in body
        (item,) = body["data"]
        assert item["status"] == "error"
        assert item["taskUUID"] == task["taskUUID"]
        assert item["error"]["code"] == "timeoutProvider"
    stats = emu.stats()
    assert stats["total_usd"] == 0
    assert stats["results_failed"] == 1
    assert stats["faults"] == {"timeout_provider": 1}


def test_timeout_provider_in_a_sync_reply(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    emu.script_faults(["timeout_provider"])
    body = client.post(emu.url, json=[make_task()]).json()
    assert body["errors"][0]["code"] == "timeoutProvider"
    assert emu.stats()["total_usd"] == 0


def test_scripted_faults_wait_for_requests_they_apply_to(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    task = make_task(deliveryMethod="async")
    emu.script_faults(["none", "timeout_provider"])
    assert client.post(emu.url, json=[make_task()]).status_code == 200  # "none"
    poll(client, emu.url, task["taskUUID"])  # a poll cannot time out a provider: skipped
    assert emu.stats()["scripted_faults_pending"] == ["timeout_provider"]
    client.post(emu.url, json=[task])
    assert emu.stats()["faults"] == {"timeout_provider": 1}


def test_fault_targets_choose_which_requests_can_fail(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    emu.configure(fault_targets=["getResponse"])
    emu.script_faults(["http_503"])
    task = make_task(deliveryMethod="async")
    assert client.post(emu.url, json=[task]).status_code == 200  # submit is not a target
    assert poll(client, emu.url, task["taskUUID"]).status_code == 503


def test_image_downloads_can_fail_when_targeted(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    (item,) = client.post(emu.url, json=[make_task()]).json()["data"]
    emu.configure(fault_targets=["download"])
    emu.script_faults(["http_503", "reset_after"])
    assert client.get(item["imageURL"]).status_code == 503
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        client.get(item["imageURL"])
    assert client.get(item["imageURL"]).status_code == 200
    assert emu.stats()["faults"] == {"http_503": 1, "reset_after": 1}


def test_random_faults_are_seeded_and_counted(emu: EmulatorServer, client: httpx.Client) -> None:
    def run() -> list[int]:
        emu.reset()
        emu.configure(faults={"http_503": 0.5})
        return [client.post(emu.url, json=[{"taskType": "ping"}]).status_code for _ in range(40)]

    first, second = run(), run()
    assert first == second
    failures = first.count(503)
    assert 5 < failures < 35
    assert emu.stats()["faults"] == {"http_503": failures}
    assert emu.stats()["requests_by_status"] == {"503": failures, "200": 40 - failures}


def test_faults_and_config_can_be_set_over_http(emu: EmulatorServer, client: httpx.Client) -> None:
    root = emu.root
    assert client.post(f"{root}/_emulator/faults", json={"script": ["http_500"]}).is_success
    assert client.post(emu.url, json=[{"taskType": "ping"}]).status_code == 500
    bad = client.post(f"{root}/_emulator/config", json={"faults": {"http_999": 0.1}})
    assert bad.status_code == 400
    ok = client.post(f"{root}/_emulator/config", json={"latency": [0.1, 0.2], "seed": 3})
    assert ok.json()["latency"] == [0.1, 0.2]
    assert client.get(f"{root}/_emulator/stats").json()["faults"] == {"http_500": 1}
    assert client.post(f"{root}/_emulator/reset").is_success
    assert client.get(f"{root}/_emulator/stats").json()["faults"] == {}
    assert client.get(f"{root}/_emulator/config").json()["latency"] == 0.0

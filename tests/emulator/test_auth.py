"""Authentication: Bearer header and payload forms, missing and invalid keys, precedence."""

from __future__ import annotations

import json

import httpx
import pytest

from prefect_flux_erase.emulator import EmulatorServer
from tests.fixtures.emulator_requests import API_KEY, TaskFactory

PING = {"taskType": "ping"}


@pytest.fixture
def anon(emu: EmulatorServer) -> httpx.Client:
    return httpx.Client(timeout=30, trust_env=False)


def test_bearer_key_is_accepted(emu: EmulatorServer, anon: httpx.Client) -> None:
    reply = anon.post(emu.url, json=[PING], headers={"Authorization": "Bearer k"})
    assert reply.status_code == 200
    assert reply.json() == {"data": [{"taskType": "ping", "pong": True}]}


def test_payload_authentication_task_is_accepted(
    emu: EmulatorServer, anon: httpx.Client, make_task: TaskFactory
) -> None:
    task = make_task()
    reply = anon.post(emu.url, json=[{"taskType": "authentication", "apiKey": "k"}, task])
    assert reply.status_code == 200
    assert [i["taskUUID"] for i in reply.json()["data"]] == [task["taskUUID"]]


def test_a_lone_authentication_task_opens_a_session(
    emu: EmulatorServer, anon: httpx.Client
) -> None:
    reply = anon.post(emu.url, json=[{"taskType": "authentication", "apiKey": "k"}])
    (item,) = reply.json()["data"]
    assert item["taskType"] == "authentication"
    assert len(item["connectionSessionUUID"]) == 36


def test_missing_key_is_401_missing_api_key(emu: EmulatorServer, anon: httpx.Client) -> None:
    reply = anon.post(emu.url, json=[PING])
    assert reply.status_code == 401
    (error,) = reply.json()["errors"]
    assert error["code"] == "missingApiKey"
    assert error["parameter"] == "apiKey"
    assert error["taskType"] == "authentication"


def test_empty_payload_key_is_missing(emu: EmulatorServer, anon: httpx.Client) -> None:
    reply = anon.post(emu.url, json=[{"taskType": "authentication", "apiKey": ""}, PING])
    assert reply.status_code == 401
    assert reply.json()["errors"][0]["code"] == "missingApiKey"


def test_unknown_key_is_401_invalid_api_key_and_never_echoed(
    emu: EmulatorServer, anon: httpx.Client
) -> None:
    emu.configure(api_keys={API_KEY})
    secret = "sk-wrong-key-should-not-echo"
    for reply in (
        anon.post(emu.url, json=[PING], headers={"Authorization": f"Bearer {secret}"}),
        anon.post(emu.url, json=[{"taskType": "authentication", "apiKey": secret}, PING]),
    ):
        assert reply.status_code == 401
        assert reply.json()["errors"][0]["code"] == "invalidApiKey"
        assert secret not in reply.text
    ok = anon.post(emu.url, json=[PING], headers={"Authorization": f"Bearer {API_KEY}"})
    assert ok.status_code == 200
    assert API_KEY not in str(emu.stats())
    assert API_KEY not in anon.get(f"{emu.root}/_emulator/config").text


def test_bearer_wins_over_the_payload_key_by_default(
    emu: EmulatorServer, anon: httpx.Client
) -> None:
    emu.configure(api_keys={API_KEY})
    body = [{"taskType": "authentication", "apiKey": API_KEY}, PING]
    wrong_bearer = anon.post(emu.url, json=body, headers={"Authorization": "Bearer nope"})
    assert wrong_bearer.status_code == 401
    emu.configure(auth_precedence="payload")
    assert anon.post(emu.url, json=body, headers={"Authorization": "Bearer nope"}).is_success


def test_auth_failure_can_come_as_a_proxy_html_page(
    emu: EmulatorServer, anon: httpx.Client
) -> None:
    emu.configure(auth_error_body="html")
    reply = anon.post(emu.url, json=[PING])
    assert reply.status_code == 401
    assert reply.headers["content-type"].startswith("text/html")
    with pytest.raises(json.JSONDecodeError):
        reply.json()


def test_auth_failures_are_counted_by_status(emu: EmulatorServer, anon: httpx.Client) -> None:
    anon.post(emu.url, json=[PING])
    anon.post(emu.url, json=[PING], headers={"Authorization": "Bearer k"})
    stats = emu.stats()
    assert stats["requests_by_status"] == {"401": 1, "200": 1}
    assert stats["requests_by_task_type"]["authentication"] == 1

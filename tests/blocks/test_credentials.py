"""`RunwareCredentials`: environment fallback, hidden key, clear errors, a working client."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from pydantic import ValidationError

from prefect_flux_erase.blocks import FluxEraseSettings, RunwareCredentials
from prefect_flux_erase.blocks.credentials import API_KEY_ENV, BASE_URL_ENV, DEFAULT_BASE_URL
from prefect_flux_erase.emulator import EmulatorServer
from prefect_flux_erase.runware.client import RunwareClient
from prefect_flux_erase.runware.errors import AuthenticationError
from prefect_flux_erase.runware.ids import task_uuid
from prefect_flux_erase.runware.media import to_data_uri

CANARY = "rk-canary-7f3a9c1e5b"


def test_environment_supplies_key_and_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(API_KEY_ENV, CANARY)
    monkeypatch.setenv(BASE_URL_ENV, "http://127.0.0.1:9/v1/")
    creds = RunwareCredentials()
    assert creds.api_key is not None
    assert creds.api_key.get_secret_value() == CANARY
    assert creds.base_url == "http://127.0.0.1:9/v1"


def test_explicit_values_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(API_KEY_ENV, "from-env-key")
    monkeypatch.setenv(BASE_URL_ENV, "http://127.0.0.1:9/v1")
    creds = RunwareCredentials(api_key=CANARY, base_url="https://api.example.test/v1")
    assert creds.api_key is not None
    assert creds.api_key.get_secret_value() == CANARY
    assert creds.base_url == "https://api.example.test/v1"


def test_without_environment_the_public_endpoint_is_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    monkeypatch.delenv(BASE_URL_ENV, raising=False)
    creds = RunwareCredentials()
    assert creds.api_key is None
    assert creds.base_url == DEFAULT_BASE_URL == "https://api.runware.ai/v1"


def test_key_is_hidden_from_repr_str_and_serialisation() -> None:
    creds = RunwareCredentials(api_key=CANARY)
    for text in (repr(creds), str(creds), creds.model_dump_json(), str(creds.model_dump())):
        assert CANARY not in text
        assert "**********" in text


def test_client_repr_hides_the_key() -> None:
    client = RunwareCredentials(api_key=CANARY, base_url="http://127.0.0.1:9/v1").get_client()
    assert isinstance(client, RunwareClient)
    assert CANARY not in repr(client)
    assert CANARY not in str(vars(client))


def test_missing_key_is_a_clear_authentication_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    with pytest.raises(AuthenticationError) as info:
        RunwareCredentials().get_client()
    assert info.value.code == "missingApiKey"
    assert API_KEY_ENV in str(info.value)


def test_empty_key_is_a_clear_authentication_error() -> None:
    with pytest.raises(AuthenticationError, match=API_KEY_ENV):
        RunwareCredentials(api_key="").get_client()


def test_get_client_passes_timeouts_and_retries_through() -> None:
    creds = RunwareCredentials(
        api_key=CANARY, base_url="http://127.0.0.1:9/v1", timeout=7.5, max_retries=2
    )
    client = creds.get_client(max_connections=8)
    assert client.base_url == "http://127.0.0.1:9/v1"
    assert client.retry_policy.max_retries == 2
    assert client.limiter.limit == 8


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("base_url", "api.runware.ai/v1"),
        ("timeout", 0),
        ("connect_timeout", -1),
        ("max_retries", 21),
    ],
)
def test_invalid_connection_settings_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as info:
        RunwareCredentials(api_key=CANARY, **{field: value})
    assert field in str(info.value)


async def test_get_client_runs_a_task_against_the_emulator(emu: EmulatorServer) -> None:
    emu.configure(api_keys=frozenset({CANARY}))
    buf = io.BytesIO()
    Image.new("RGB", (300, 280), "navy").save(buf, "PNG")
    mask = io.BytesIO()
    Image.new("L", (300, 280), 255).save(mask, "PNG")
    task = FluxEraseSettings(output_format="PNG").to_task(
        task_uuid("tests/blocks", "get-client"),
        image=to_data_uri(buf.getvalue()),
        mask=to_data_uri(mask.getvalue()),
    )
    creds = RunwareCredentials(api_key=CANARY, base_url=emu.url, max_retries=1)
    async with creds.get_client() as client:
        (item,) = await client.run(task)
        data = await client.fetch_output(item)
    assert Image.open(io.BytesIO(data)).size == (300, 280)
    assert emu.stats()["billed"][task.task_uuid]["count"] == 1

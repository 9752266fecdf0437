"""`FluxEraseHook`: a ``flux_erase`` connection becomes the core's RunwareConfig and a working
client; the key stays secret."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from airflow.sdk import Connection

from prefect_flux_erase.airflow.hooks import FluxEraseHook, config_from_connection
from prefect_flux_erase.runware.config import DEFAULT_BASE_URL
from prefect_flux_erase.runware.errors import AuthenticationError
from prefect_flux_erase.runware.ids import task_uuid
from prefect_flux_erase.runware.media import to_data_uri
from prefect_flux_erase.runware.options import EraseOptions
from tests.airflow.conftest import CANARY_KEY
from tests.fixtures.builders import mask_bytes, photo_bytes


def _conn(**fields: Any) -> Connection:
    return Connection(conn_id="c1", conn_type="flux_erase", **fields)


def test_a_full_url_host_is_the_base_url_and_extras_become_client_settings() -> None:
    extra = json.dumps({"timeout": "45", "connect_timeout": 3, "max_retries": 0})
    config = config_from_connection(
        _conn(host="http://127.0.0.1:8080/v1/", password=CANARY_KEY, extra=extra)
    )
    assert config.base_url == "http://127.0.0.1:8080/v1"
    assert (config.timeout, config.connect_timeout, config.max_retries) == (45.0, 3.0, 0)
    assert config.api_key is not None
    assert config.api_key.get_secret_value() == CANARY_KEY
    assert CANARY_KEY not in repr(config) + str(config)


def test_a_uri_style_connection_builds_the_url_and_the_ui_prefixed_extras_are_read() -> None:
    extra = json.dumps({"scheme": "http", "extra__flux_erase__timeout": 7})
    config = config_from_connection(
        _conn(host="emulator.local", port=8080, schema="v1", password="k", extra=extra)
    )
    assert (config.base_url, config.timeout) == ("http://emulator.local:8080/v1", 7.0)
    assert config_from_connection(_conn(host="api.example.com")).base_url == (
        "https://api.example.com"
    )


def test_an_empty_host_is_the_runware_api_and_no_password_means_no_key() -> None:
    config = config_from_connection(_conn())
    assert config.base_url == DEFAULT_BASE_URL
    assert not config.has_key
    with pytest.raises(AuthenticationError) as raised:
        config.open_client()
    assert raised.value.code == "missingApiKey"


def test_a_bad_extra_names_the_connection_and_the_field() -> None:
    bad = _conn(host="http://h/v1", extra=json.dumps({"max_retries": 99, "timeout": "soon"}))
    with pytest.raises(ValueError, match=r"connection 'c1' \(flux_erase\) is not valid") as raised:
        config_from_connection(bad)
    assert "max_retries" in str(raised.value)
    assert "timeout" in str(raised.value)


def test_the_hook_builds_a_working_client_from_an_environment_connection(
    emu: Any, flux_conn: str, caplog: pytest.LogCaptureFixture
) -> None:
    hook = FluxEraseHook(flux_conn)
    task = EraseOptions().to_task(
        task_uuid("hook-test", "row"),
        image=to_data_uri(photo_bytes(1)),
        mask=to_data_uri(mask_bytes()),
    )

    async def erase() -> bytes:
        async with hook.get_client() as client:
            items = await client.run(task)
            return await client.fetch_output(items[0])

    with caplog.at_level(logging.DEBUG):
        image = asyncio.run(erase())
        config = asyncio.run(hook.aget_conn())

    assert image[:3] == b"\xff\xd8\xff"  # a JPEG came back through the emulator
    assert emu.stats()["results_billed"] == 1
    assert config.base_url == emu.url
    assert config.max_retries == 3
    assert CANARY_KEY not in caplog.text + repr(hook) + repr(config)

"""The blocks register with a real Prefect API and round-trip through it with the secret intact."""

from __future__ import annotations

import uuid

import pytest

from prefect_flux_erase.blocks import FluxEraseSettings, RunwareCredentials
from tests.fixtures.prefect import register_blocks

CANARY = "rk-canary-register-51d0"


@pytest.fixture(scope="module")
def registered(prefect_harness: None) -> str:
    """Run `prefect block register -m prefect_flux_erase` against the harness's API server."""
    from prefect.settings import PREFECT_API_URL

    api_url = PREFECT_API_URL.value()
    assert api_url, "the Prefect test harness should expose an API URL"
    return register_blocks(str(api_url))


def test_cli_registers_both_block_types(registered: str) -> None:
    from prefect.client.orchestration import get_client

    assert "Successfully registered 2 blocks" in registered
    with get_client(sync_client=True) as client:
        types = [
            client.read_block_type_by_slug(slug)
            for slug in ("runware-credentials", "flux-erase-settings")
        ]
    assert {t.slug for t in types} == {"runware-credentials", "flux-erase-settings"}
    # The UI links each block type to the model page that documents its options.
    assert {str(t.documentation_url) for t in types} == {
        "https://runware.ai/docs/models/bfl-flux-erase"
    }


def test_saved_credentials_load_back_with_the_secret(registered: str) -> None:
    name = f"creds-{uuid.uuid4().hex[:8]}"
    RunwareCredentials(api_key=CANARY, base_url="http://127.0.0.1:9/v1", max_retries=3).save(name)
    loaded = RunwareCredentials.load(name)
    assert loaded.api_key is not None
    assert loaded.api_key.get_secret_value() == CANARY
    assert (loaded.base_url, loaded.max_retries) == ("http://127.0.0.1:9/v1", 3)
    assert CANARY not in repr(loaded)


def test_saved_settings_load_back_equal(registered: str) -> None:
    name = f"settings-{uuid.uuid4().hex[:8]}"
    original = FluxEraseSettings(dilate_pixels=18, output_format="PNG", number_results=2)
    original.save(name)
    loaded = FluxEraseSettings.load(name)
    assert loaded.wire_options() == original.wire_options()
    assert loaded.wire_options()["settings"] == {"dilatePixels": 18}

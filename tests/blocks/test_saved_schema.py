"""Blocks saved before the core's plain models existed still load, unchanged.

`FluxEraseSettings` and `RunwareCredentials` became thin wrappers over `EraseOptions` and
`RunwareConfig`. A block document saved by 0.1.0 holds these field values under a schema with
these checksums (captured from 0.1.0's classes); Prefect loads a document through the schema
registered for its type, so the checksums must not move and the old values must load.
"""

from __future__ import annotations

import uuid

import pytest
from prefect.blocks.core import Block
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import BlockDocumentCreate

from prefect_flux_erase.blocks import FluxEraseSettings, RunwareCredentials
from prefect_flux_erase.runware.config import RunwareConfig
from prefect_flux_erase.runware.options import EraseOptions

#: The block schema checksums of prefect-flux-erase 0.1.0 (before the plain models).
CHECKSUMS_0_1 = {
    FluxEraseSettings: "sha256:be5a001fa802fb0303b0d2f70726a382db5c354107b0395596f46f6c034d559e",
    RunwareCredentials: "sha256:24e795caa3ecb202117aa1c80be0ff23be7ead521c4b7430a300add526493132",
}

#: Documents as 0.1.0 saved them: every field, by its 0.1.0 name.
SAVED_0_1 = {
    FluxEraseSettings: {
        "dilate_pixels": 18,
        "output_type": "URL",
        "output_format": "PNG",
        "output_quality": 90,
        "number_results": 2,
        "delivery_method": "async",
        "include_cost": True,
        "ttl": 3600,
        "check_content": True,
        "safety_mode": "fast",
        "webhook_url": None,
        "upload_endpoint": None,
    },
    RunwareCredentials: {
        "api_key": "rk-saved-by-0.1",
        "base_url": "http://127.0.0.1:9/v1",
        "timeout": 30.0,
        "connect_timeout": 5.0,
        "max_retries": 2,
    },
}


@pytest.mark.parametrize("block", [FluxEraseSettings, RunwareCredentials])
def test_block_schema_checksum_is_unchanged_since_0_1(block: type[Block]) -> None:
    schema = block._to_block_schema(block_type_id=uuid.uuid4())
    assert schema.checksum == CHECKSUMS_0_1[block]


@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.parametrize("block", [FluxEraseSettings, RunwareCredentials])
def test_a_document_saved_with_0_1_fields_loads_as_the_block_and_its_plain_model(
    block: type[Block],
) -> None:
    block.register_type_and_schema()
    name = f"saved-by-0-1-{uuid.uuid4().hex[:8]}"
    with get_client(sync_client=True) as client:
        block_type = client.read_block_type_by_slug(block.get_block_type_slug())
        schema = client.get_most_recent_block_schema_for_block_type(block_type.id)
        assert schema is not None
        assert schema.checksum == CHECKSUMS_0_1[block]
        client.create_block_document(
            BlockDocumentCreate(
                name=name,
                data=SAVED_0_1[block],
                block_schema_id=schema.id,
                block_type_id=block_type.id,
            )
        )

    loaded = block.load(name)

    if isinstance(loaded, FluxEraseSettings):
        options = loaded.to_options()
        assert type(options) is EraseOptions
        assert options.model_dump() == SAVED_0_1[FluxEraseSettings]
    else:
        assert isinstance(loaded, RunwareCredentials)
        config = loaded.to_config()
        assert type(config) is RunwareConfig
        assert config.api_key is not None
        assert config.api_key.get_secret_value() == "rk-saved-by-0.1"
        assert (config.base_url, config.timeout, config.max_retries) == (
            "http://127.0.0.1:9/v1",
            30.0,
            2,
        )

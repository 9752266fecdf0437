"""`FluxEraseSettings`: the seed page's defaults, and invalid values named by field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from prefect_flux_erase.blocks import FluxEraseSettings
from prefect_flux_erase.runware.models import SEED_DEFAULTS

UUID = "3f9a3c3e-2b7e-4a51-9d1b-6d6f0a2f8e11"


def test_defaults_equal_the_seed_pages_defaults() -> None:
    s = FluxEraseSettings()
    block_defaults = {
        "outputType": s.output_type,
        "outputFormat": s.output_format,
        "outputQuality": s.output_quality,
        "deliveryMethod": s.delivery_method or "sync",
        "includeCost": s.include_cost,
        "numberResults": s.number_results,
        "settings.dilatePixels": s.dilate_pixels,
        "safety.checkContent": s.check_content,
        "safety.mode": s.safety_mode or "none",
    }
    assert block_defaults == SEED_DEFAULTS
    assert SEED_DEFAULTS["settings.dilatePixels"] == 10
    assert SEED_DEFAULTS["outputQuality"] == 95


def test_default_settings_send_no_options_so_the_server_defaults_apply() -> None:
    wire = FluxEraseSettings().to_task(UUID, image="https://x/a.png", mask="https://x/m.png")
    assert wire.to_wire() == {
        "taskType": "imageInference",
        "taskUUID": UUID,
        "model": "bfl:flux@erase",
        "inputs": {"image": "https://x/a.png", "mask": "https://x/m.png"},
    }


def test_every_option_reaches_the_wire_task() -> None:
    s = FluxEraseSettings(
        dilate_pixels=20,
        output_type="URL",  # ttl applies to URLs only
        output_format="WEBP",
        output_quality=80,
        number_results=1,  # one upload URL takes one result
        delivery_method="async",
        include_cost=True,
        ttl=120,
        check_content=True,
        safety_mode="fast",
        webhook_url="https://hooks.example.test/flux?token=t",
        upload_endpoint="https://b.s3.amazonaws.com/o?X-Amz-Signature=s",
    )
    wire = s.to_task(UUID, image="a", mask="b").to_wire()
    assert wire["settings"] == {"dilatePixels": 20}
    assert wire["safety"] == {"checkContent": True, "mode": "fast"}
    assert {k: wire[k] for k in ("outputFormat", "outputQuality")} == {
        "outputFormat": "WEBP",
        "outputQuality": 80,
    }
    assert "outputType" not in wire  # URL: the API's default is not sent
    assert (wire["deliveryMethod"], wire["includeCost"], wire["ttl"]) == ("async", True, 120)
    assert "numberResults" not in wire  # 1: the API's default
    assert wire["webhookURL"].endswith("token=t")
    assert wire["uploadEndpoint"].endswith("X-Amz-Signature=s")


@pytest.mark.parametrize(
    ("options", "field", "shown"),
    [
        ({"dilate_pixels": 51}, "settings.dilatePixels", "51"),
        ({"dilate_pixels": -1}, "settings.dilatePixels", "-1"),
        ({"output_quality": 19}, "outputQuality", "19"),
        ({"output_quality": 100}, "outputQuality", "100"),
        ({"number_results": 0}, "numberResults", "0"),
        ({"number_results": 21}, "numberResults", "21"),
        ({"ttl": 59}, "ttl", "59"),
        ({"ttl": 3600, "output_type": "base64Data"}, "ttl", "base64Data"),
        ({"upload_endpoint": "https://b/o", "number_results": 2}, "uploadEndpoint", "is 2"),
        ({"webhook_url": "ftp://hooks.example.test"}, "webhookURL", "ftp://hooks.example.test"),
        ({"upload_endpoint": "not a url"}, "uploadEndpoint", "not a url"),
        ({"output_format": "GIF"}, "output_format", "GIF"),
        ({"output_type": "bytes"}, "output_type", "bytes"),
        ({"delivery_method": "later"}, "delivery_method", "later"),
        ({"safety_mode": "full"}, "safety_mode", "full"),
    ],
)
def test_invalid_values_fail_naming_field_and_value(
    options: dict[str, Any], field: str, shown: str
) -> None:
    with pytest.raises(ValidationError) as info:
        FluxEraseSettings(**options)
    text = str(info.value)
    assert field in text
    assert shown in text


def test_range_errors_state_the_allowed_range() -> None:
    with pytest.raises(ValidationError, match=r"from 0 to 50"):
        FluxEraseSettings(dilate_pixels=99)

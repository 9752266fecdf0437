"""Wire models: every seed option round-trips, every invalid value is named before sending."""

from __future__ import annotations

from typing import Any

import pytest

from prefect_flux_erase.runware.errors import InvalidOptionError
from prefect_flux_erase.runware.models import SEED_DEFAULTS, build_task

UUID = "3f9a3c3e-2b7e-4a51-9d1b-6d6f0a2f8e11"
BASE: dict[str, Any] = {"taskUUID": UUID, "inputs": {"image": "https://x/a.png", "mask": "m"}}

EVERY_OPTION: dict[str, Any] = {
    **BASE,
    "outputType": "URL",  # ttl applies to URLs only
    "outputFormat": "WEBP",
    "outputQuality": 20,
    "webhookURL": "http://127.0.0.1:9/hook?token=t",
    "deliveryMethod": "async",
    "uploadEndpoint": "http://127.0.0.1:9/put?X-Amz-Signature=abc",
    "safety": {"checkContent": True, "mode": "fast"},
    "ttl": 60,
    "includeCost": True,
    "numberResults": 1,  # one upload URL takes one result
    "settings": {"dilatePixels": 50},
}


def test_every_seed_option_round_trips_through_the_wire_form() -> None:
    wire = build_task(EVERY_OPTION).to_wire()
    assert wire == {"taskType": "imageInference", "model": "bfl:flux@erase", **EVERY_OPTION}


def test_unset_options_are_omitted_so_the_server_applies_its_defaults() -> None:
    wire = build_task(BASE).to_wire()
    assert set(wire) == {"taskType", "taskUUID", "model", "inputs"}


def test_effective_defaults_match_the_seed_page() -> None:
    task = build_task(BASE)
    assert task.effective_output_type == SEED_DEFAULTS["outputType"] == "URL"
    assert task.effective_output_format == SEED_DEFAULTS["outputFormat"] == "JPG"
    assert task.effective_number_results == SEED_DEFAULTS["numberResults"] == 1


@pytest.mark.parametrize(
    ("path", "value", "allowed"),
    [
        ("outputQuality", 19, "20 to 99"),
        ("outputQuality", 100, "20 to 99"),
        ("outputQuality", "95", "20 to 99"),
        ("outputQuality", 95.0, "20 to 99"),
        ("numberResults", 0, "1 to 20"),
        ("numberResults", 21, "1 to 20"),
        ("ttl", 59, ">= 60"),
        ("outputType", "url", "'URL', 'base64Data', 'dataURI'"),
        ("outputFormat", "TIFF", "'JPG', 'PNG', 'WEBP'"),
        ("deliveryMethod", "stream", "'sync', 'async'"),
        ("includeCost", "yes", "true or false"),
        ("includeCost", 1, "true or false"),
        ("webhookURL", "ftp://x", "http(s) URL"),
        ("uploadEndpoint", "/tmp/x", "http(s) URL"),
        ("settings.dilatePixels", -1, "0 to 50"),
        ("settings.dilatePixels", 51, "0 to 50"),
        ("settings.dilatePixels", True, "0 to 50"),
        ("safety.mode", "full", "'none', 'fast'"),
        ("safety.checkContent", "true", "true or false"),
        ("taskUUID", "not-a-uuid", "UUID v4"),
        ("model", "bfl:flux@fill", "bfl:flux@erase"),
    ],
)
def test_invalid_value_names_field_range_and_value(path: str, value: Any, allowed: str) -> None:
    options: dict[str, Any] = {**BASE}
    if "." in path:
        outer, inner = path.split(".")
        options[outer] = {inner: value}
    else:
        options[path] = value
    with pytest.raises(InvalidOptionError) as info:
        build_task(options)
    message = str(info.value)
    assert info.value.parameter == path
    assert message.startswith(f"{path}: must be")
    assert allowed in message
    assert repr(value) in message


@pytest.mark.parametrize("name", ["positivePrompt", "seed", "width", "CFGScale", "maskImage"])
def test_undeclared_parameters_are_rejected_by_name(name: str) -> None:
    with pytest.raises(InvalidOptionError) as info:
        build_task({**BASE, name: 1})
    assert info.value.parameter == name
    assert "unsupported parameter" in str(info.value)


def test_missing_inputs_are_named() -> None:
    with pytest.raises(InvalidOptionError) as info:
        build_task({"taskUUID": UUID, "inputs": {"image": "a"}})
    assert info.value.parameter == "inputs.mask"


def test_several_bad_fields_are_all_reported() -> None:
    with pytest.raises(InvalidOptionError) as info:
        build_task({**BASE, "outputQuality": 5, "numberResults": 99})
    assert info.value.parameters == ["outputQuality", "numberResults"]


@pytest.mark.parametrize(
    ("options", "parameter", "advice"),
    [
        ({"ttl": 3600, "outputType": "base64Data"}, "ttl", "Drop ttl, or use outputType 'URL'"),
        ({"ttl": 3600, "outputType": "dataURI"}, "ttl", "only applies with outputType 'URL'"),
        (
            {
                "uploadEndpoint": "https://b.s3.amazonaws.com/o?X-Amz-Signature=s",
                "numberResults": 2,
            },
            "uploadEndpoint",
            "Use numberResults 1 with an upload URL",
        ),
    ],
)
def test_options_that_make_no_sense_together_are_rejected_with_what_to_change(
    options: dict[str, Any], parameter: str, advice: str
) -> None:
    with pytest.raises(InvalidOptionError) as info:
        build_task({**BASE, **options})
    assert info.value.parameter == parameter
    assert advice in str(info.value)


def test_ttl_with_url_output_and_an_upload_url_with_one_result_are_fine() -> None:
    assert build_task({**BASE, "ttl": 3600}).ttl == 3600
    upload = build_task({**BASE, "uploadEndpoint": "https://b/o", "numberResults": 1})
    assert upload.upload_endpoint == "https://b/o"

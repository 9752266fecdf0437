"""Every validation error: HTTP 400, the API code, the parameter and its documentation anchor."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from prefect_flux_erase.emulator import EmulatorServer
from tests.fixtures.emulator_requests import TaskFactory

DOCS = "https://runware.ai/docs/models/bfl-flux-erase"

CASES: list[tuple[dict[str, Any], str, str]] = [
    ({"positivePrompt": "a cat"}, "unsupportedParameter", "positivePrompt"),
    ({"seed": 3}, "unsupportedParameter", "seed"),
    ({"width": 512}, "unsupportedParameter", "width"),
    ({"settings": {"strength": 0.5}}, "unsupportedParameter", "settings.strength"),
    ({"outputQuality": 5}, "invalidOutputQuality", "outputQuality"),
    ({"outputQuality": 100}, "invalidOutputQuality", "outputQuality"),
    ({"outputQuality": "95"}, "invalidOutputQuality", "outputQuality"),
    ({"settings": {"dilatePixels": 51}}, "invalidDilatePixels", "settings.dilatePixels"),
    ({"settings": {"dilatePixels": -1}}, "invalidDilatePixels", "settings.dilatePixels"),
    ({"numberResults": 0}, "invalidNumberResults", "numberResults"),
    ({"numberResults": 21}, "invalidNumberResults", "numberResults"),
    ({"outputType": "PNG"}, "invalidOutputType", "outputType"),
    ({"outputFormat": "GIF"}, "invalidOutputFormat", "outputFormat"),
    ({"deliveryMethod": "later"}, "invalidDeliveryMethod", "deliveryMethod"),
    ({"ttl": 30}, "invalidTtl", "ttl"),
    ({"includeCost": "yes"}, "invalidIncludeCost", "includeCost"),
    ({"webhookURL": "ftp://x/y"}, "invalidWebhookURL", "webhookURL"),
    ({"uploadEndpoint": "not a url"}, "invalidUploadEndpoint", "uploadEndpoint"),
    ({"safety": {"mode": "full"}}, "invalidSafetyMode", "safety.mode"),
    ({"safety": {"checkContent": "on"}}, "invalidSafetyCheckContent", "safety.checkContent"),
    ({"taskUUID": "not-a-uuid"}, "invalidTaskUUID", "taskUUID"),
    ({"model": "bfl:flux@fill"}, "invalidModel", "model"),
]


@pytest.mark.parametrize(("overrides", "code", "parameter"), CASES)
def test_invalid_option_is_400_with_code_and_parameter(
    emu: EmulatorServer,
    client: httpx.Client,
    make_task: TaskFactory,
    overrides: dict[str, Any],
    code: str,
    parameter: str,
) -> None:
    task = make_task(**overrides)
    reply = client.post(emu.url, json=[task])
    assert reply.status_code == 400
    body = reply.json()
    assert body["data"] == []
    (error,) = body["errors"]
    assert error["code"] == code
    assert error["parameter"] == parameter
    assert error["taskUUID"] == task["taskUUID"]
    assert error["taskType"] == "imageInference"
    anchor = parameter.lower().replace(".", "-")
    assert error["documentation"] == f"{DOCS}#request-{anchor}"
    assert parameter in error["message"]
    assert emu.stats()["tasks_accepted"] == 0


def test_enum_errors_list_the_allowed_values(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    error = client.post(emu.url, json=[make_task(outputType="file")]).json()["errors"][0]
    assert error["allowedValues"] == ["URL", "base64Data", "dataURI"]


@pytest.mark.parametrize(
    ("inputs", "code", "parameter"),
    [
        ({"mask": "AAAA"}, "missingInputsImage", "inputs.image"),
        ({"image": "AAAA"}, "missingInputsMask", "inputs.mask"),
        (
            {"image": "AAAA", "mask": "AAAA", "seedImage": "x"},
            "unsupportedParameter",
            "inputs.seedImage",
        ),
    ],
)
def test_missing_or_undeclared_inputs(
    emu: EmulatorServer,
    client: httpx.Client,
    make_task: TaskFactory,
    inputs: dict[str, str],
    code: str,
    parameter: str,
) -> None:
    reply = client.post(emu.url, json=[make_task(inputs=inputs)])
    assert reply.status_code == 400
    error = reply.json()["errors"][0]
    assert (error["code"], error["parameter"]) == (code, parameter)


def test_missing_inputs_object_and_task_uuid(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    task = make_task()
    del task["inputs"]
    assert client.post(emu.url, json=[task]).json()["errors"][0]["code"] == "missingInputs"
    task = make_task()
    del task["taskUUID"]
    error = client.post(emu.url, json=[task]).json()["errors"][0]
    assert (error["code"], error["parameter"]) == ("missingTaskUUID", "taskUUID")
    assert "taskUUID" not in error


def test_undeclared_keys_can_be_ignored_instead(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    emu.configure(unsupported_parameters="ignore")
    reply = client.post(emu.url, json=[make_task(positivePrompt="x", settings={"cfg": 1})])
    assert reply.status_code == 200
    assert "imageURL" in reply.json()["data"][0]


def test_routing_and_advanced_features_are_accepted_and_ignored(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    task = make_task(routing={"region": "eu"}, advancedFeatures={"x": 1})
    assert client.post(emu.url, json=[task]).status_code == 200


def test_unknown_task_type_and_non_object_tasks_are_rejected(
    emu: EmulatorServer, client: httpx.Client
) -> None:
    reply = client.post(emu.url, json=[{"taskType": "videoInference", "taskUUID": "x"}, 7])
    assert reply.status_code == 400
    codes = [e["code"] for e in reply.json()["errors"]]
    assert codes == ["unsupportedTaskType", "invalidTask"]


def test_a_body_that_is_not_json_is_400(emu: EmulatorServer, client: httpx.Client) -> None:
    reply = client.post(emu.url, content=b"[{not json")
    assert reply.status_code == 400
    assert reply.json()["errors"][0]["code"] == "invalidJSON"


def test_get_response_with_extra_keys_is_rejected(
    emu: EmulatorServer, client: httpx.Client
) -> None:
    poll = {"taskType": "getResponse", "taskUUID": "u", "deliveryMethod": "async"}
    error = client.post(emu.url, json=[poll]).json()["errors"][0]
    assert (error["code"], error["parameter"]) == ("unsupportedParameter", "deliveryMethod")


def test_whole_batch_rejection_accepts_nothing_of_the_array(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    emu.configure(batch_rejection="whole")
    good, bad = make_task(), make_task(outputQuality=5)
    reply = client.post(emu.url, json=[good, bad])
    assert reply.status_code == 400
    body = reply.json()
    assert body["data"] == []
    assert [e["taskUUID"] for e in body["errors"]] == [bad["taskUUID"]]
    stats = emu.stats()
    assert stats["tasks_accepted"] == 0
    assert stats["total_usd"] == 0
    # The good task left no trace: resending it alone is accepted, not a conflict.
    assert client.post(emu.url, json=[good]).status_code == 200


def test_unscoped_errors_omit_the_task_uuid(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    emu.configure(scoped_errors=False)
    error = client.post(emu.url, json=[make_task(outputQuality=5)]).json()["errors"][0]
    assert error["code"] == "invalidOutputQuality"
    assert "taskUUID" not in error


def test_error_envelope_switches(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    emu.configure(error_key="error", error_envelope_data=False)
    body = client.post(emu.url, json=[make_task(outputQuality=5)]).json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == "invalidOutputQuality"

"""Every invalid option value fails client-side (field, allowed range, value given) before any
request, and the emulator rejects the very same raw value with a 400 naming the same field."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from prefect_flux_erase.emulator import EmulatorServer
from prefect_flux_erase.runware.client import RunwareClient
from prefect_flux_erase.runware.errors import InvalidOptionError, PermanentError
from prefect_flux_erase.runware.ids import task_uuid
from prefect_flux_erase.runware.models import ALLOWED, ImageInferenceTask, build_task
from tests.fixtures.runware_client import Photo

MakeTask = Callable[..., ImageInferenceTask]
NewClient = Callable[..., RunwareClient]
_MISSING = object()

# (wire path, invalid value): every documented option, out of range and of the wrong type.
INVALID: list[tuple[str, Any]] = [
    ("outputType", "PNG"),
    ("outputType", "url"),
    ("outputFormat", "GIF"),
    ("outputFormat", "jpg"),
    ("outputQuality", 19),
    ("outputQuality", 100),
    ("outputQuality", 50.5),
    ("outputQuality", "95"),
    ("numberResults", 0),
    ("numberResults", 21),
    ("numberResults", True),
    ("settings.dilatePixels", -1),
    ("settings.dilatePixels", 51),
    ("settings.dilatePixels", 2.5),
    ("ttl", 59),
    ("ttl", "3600"),
    ("deliveryMethod", "later"),
    ("safety.mode", "full"),
    ("safety.checkContent", "yes"),
    ("includeCost", "true"),
    ("webhookURL", "ftp://hooks.example.test/x"),
    ("uploadEndpoint", "not a url"),
    ("taskUUID", "not-a-uuid"),
    ("taskUUID", "6fa459ea-ee8a-3ca4-894e-db77e160355e"),  # a version 3 UUID
    ("model", "bfl:flux@fill"),
    ("inputs.image", ""),
]


def _set(wire: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(wire)
    node = out
    *parents, leaf = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    if value is _MISSING:
        del node[leaf]
    else:
        node[leaf] = value
    return out


@pytest.fixture
def valid_wire(photo: Photo, request: pytest.FixtureRequest) -> dict[str, Any]:
    """A complete valid task (real images), so the value under test is the only fault."""
    return build_task(
        {
            "taskUUID": task_uuid("tests/validation", request.node.nodeid),
            "inputs": {"image": photo.image_uri, "mask": photo.mask_uri},
        }
    ).to_wire()


def _post_raw(emu: EmulatorServer, wire: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        emu.url, json=[wire], headers={"Authorization": "Bearer rk-test-key"}, timeout=10
    )


@pytest.mark.parametrize(("path", "value"), INVALID)
def test_invalid_value_fails_client_side_naming_field_range_and_value(
    valid_wire: dict[str, Any], path: str, value: Any
) -> None:
    with pytest.raises(InvalidOptionError) as info:
        build_task(_set(valid_wire, path, value))
    err = info.value
    assert err.parameter == path
    assert ALLOWED[path] in err.message
    assert repr(value) in err.message
    assert isinstance(err, PermanentError)
    assert isinstance(err, ValueError)


@pytest.mark.parametrize(("path", "value"), INVALID)
def test_the_emulator_rejects_the_same_value_with_400_and_the_parameter(
    emu: EmulatorServer, valid_wire: dict[str, Any], path: str, value: Any
) -> None:
    assert _post_raw(emu, valid_wire).status_code == 200  # the unaltered task is accepted
    emu.reset()
    wire = _set(valid_wire, path, value)
    response = _post_raw(emu, wire)
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["parameter"] == path
    assert error["code"].startswith(("invalid", "missing"))
    assert emu.stats()["tasks_accepted"] == 0


@pytest.mark.parametrize(
    ("path", "value", "code"),
    [
        ("positivePrompt", "a cat", "unsupportedParameter"),
        ("seed", 7, "unsupportedParameter"),
        ("inputs.maskImage", "x", "unsupportedParameter"),
        ("inputs.mask", _MISSING, "missingInputsMask"),
        ("inputs", _MISSING, "missingInputs"),
    ],
)
def test_undeclared_and_missing_fields_fail_on_both_sides(
    emu: EmulatorServer, valid_wire: dict[str, Any], path: str, value: Any, code: str
) -> None:
    wire = _set(valid_wire, path, value)
    with pytest.raises(InvalidOptionError) as info:
        build_task(wire)
    assert info.value.parameter == path
    expected = "required" if value is _MISSING else repr(value)
    assert expected in info.value.message
    response = _post_raw(emu, wire)
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert (error["parameter"], error["code"]) == (path, code)


async def test_an_invalid_task_never_reaches_the_network(
    emu: EmulatorServer, new_client: NewClient, make_task: MakeTask
) -> None:
    async with new_client() as client:
        with pytest.raises(InvalidOptionError):
            await client.run(make_task(outputQuality=150))
        task = make_task()
        with pytest.raises(InvalidOptionError, match="taskUUID"):
            await client.submit([task, task])
    assert emu.stats()["requests_total"] == 0

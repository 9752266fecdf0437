"""Input forms (URL, data URI, raw base64, stored UUIDs) and every input rejection."""

from __future__ import annotations

import base64
import socket
import uuid

import httpx
import numpy as np

from prefect_flux_erase.emulator import EmulatorServer
from prefect_flux_erase.runware.media import to_data_uri
from tests.fixtures.emulator_requests import Receiver, TaskFactory, photo, png_bytes, square_mask


def _error(reply: httpx.Response) -> dict[str, str]:
    assert reply.status_code == 400, reply.text
    error: dict[str, str] = reply.json()["errors"][0]
    return error


def test_urls_are_fetched_over_http(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory, receiver: Receiver
) -> None:
    receiver.files["/in/photo.png"] = png_bytes(photo())
    receiver.files["/in/mask.png"] = png_bytes(square_mask())
    inputs = {"image": f"{receiver.url}/in/photo.png", "mask": f"{receiver.url}/in/mask.png"}
    reply = client.post(emu.url, json=[make_task(inputs=inputs)])
    assert reply.status_code == 200
    assert "imageURL" in reply.json()["data"][0]


def test_raw_base64_inputs_are_accepted(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    inputs = {
        "image": base64.b64encode(png_bytes(photo())).decode(),
        "mask": base64.b64encode(png_bytes(square_mask())).decode(),
    }
    assert client.post(emu.url, json=[make_task(inputs=inputs)]).status_code == 200


def test_mask_of_another_size_is_invalid_mask_dimensions(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory, image_uri: str
) -> None:
    mask = to_data_uri(png_bytes(square_mask(300)))
    error = _error(
        client.post(emu.url, json=[make_task(inputs={"image": image_uri, "mask": mask})])
    )
    assert (error["code"], error["parameter"]) == ("invalidMaskDimensions", "inputs.mask")
    assert "300x300" in error["message"]


def test_undecodable_image_names_its_parameter(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory, mask_uri: str
) -> None:
    garbage = to_data_uri(b"this is not an image at all", "image/png")
    error = _error(
        client.post(emu.url, json=[make_task(inputs={"image": garbage, "mask": mask_uri})])
    )
    assert (error["code"], error["parameter"]) == ("invalidImage", "inputs.image")


def test_a_string_that_is_no_input_form_is_invalid(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory, image_uri: str
) -> None:
    error = _error(
        client.post(emu.url, json=[make_task(inputs={"image": image_uri, "mask": "%%%"})])
    )
    assert (error["code"], error["parameter"]) == ("invalidInputsMask", "inputs.mask")


def test_images_below_256_are_rejected_unless_switched_off(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory
) -> None:
    small = {
        "image": to_data_uri(png_bytes(photo(128)[:128, :128])),
        "mask": to_data_uri(png_bytes(np.zeros((128, 128), np.uint8))),
    }
    error = _error(client.post(emu.url, json=[make_task(inputs=small)]))
    assert (error["code"], error["parameter"]) == ("imageTooSmall", "inputs.image")
    emu.configure(min_side=0)
    assert client.post(emu.url, json=[make_task(inputs=small)]).status_code == 200


def test_unreachable_url_is_400_naming_the_parameter(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory, image_uri: str
) -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inputs = {"image": image_uri, "mask": f"http://127.0.0.1:{port}/mask.png?sig=SECRET"}
    error = _error(client.post(emu.url, json=[make_task(inputs=inputs)]))
    assert (error["code"], error["parameter"]) == ("invalidInputsMask", "inputs.mask")
    assert "SECRET" not in error["message"]


def test_url_answering_404_is_400_naming_the_parameter(
    emu: EmulatorServer,
    client: httpx.Client,
    make_task: TaskFactory,
    mask_uri: str,
    receiver: Receiver,
) -> None:
    inputs = {"image": f"{receiver.url}/missing.png", "mask": mask_uri}
    error = _error(client.post(emu.url, json=[make_task(inputs=inputs)]))
    assert (error["code"], error["parameter"]) == ("invalidInputsImage", "inputs.image")
    assert "404" in error["message"]


def test_uploaded_image_uuid_and_url_are_reusable_as_inputs(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory, image_uri: str, mask_uri: str
) -> None:
    uploads = [
        {"taskType": "imageUpload", "taskUUID": str(uuid.uuid4()), "image": image_uri},
        {"taskType": "imageUpload", "taskUUID": str(uuid.uuid4()), "image": mask_uri},
    ]
    reply = client.post(emu.url, json=uploads)
    assert reply.status_code == 200
    image_item, mask_item = reply.json()["data"]
    assert image_item["taskType"] == "imageUpload"
    assert image_item["imageURL"].endswith(f"/image/{image_item['imageUUID']}.png")
    assert client.get(image_item["imageURL"]).content == png_bytes(photo())

    by_uuid = make_task(inputs={"image": image_item["imageUUID"], "mask": mask_item["imageUUID"]})
    by_url = make_task(inputs={"image": image_item["imageURL"], "mask": mask_item["imageURL"]})
    reply = client.post(emu.url, json=[by_uuid, by_url])
    assert reply.status_code == 200
    assert len(reply.json()["data"]) == 2
    assert emu.stats()["uploads"]["image_upload"] == 2


def test_generated_image_uuid_is_reusable_as_an_input(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory, mask_uri: str
) -> None:
    first = client.post(emu.url, json=[make_task(outputFormat="PNG")]).json()["data"][0]
    second = make_task(inputs={"image": first["imageUUID"], "mask": mask_uri})
    assert client.post(emu.url, json=[second]).status_code == 200


def test_unknown_uuid_input_is_rejected(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory, mask_uri: str
) -> None:
    inputs = {"image": str(uuid.uuid4()), "mask": mask_uri}
    error = _error(client.post(emu.url, json=[make_task(inputs=inputs)]))
    assert (error["code"], error["parameter"]) == ("invalidInputsImage", "inputs.image")


def test_media_storage_upload_uuid_and_url_work_as_inputs_then_delete(
    emu: EmulatorServer, client: httpx.Client, make_task: TaskFactory, image_uri: str, mask_uri: str
) -> None:
    upload = {
        "taskType": "mediaStorage",
        "taskUUID": str(uuid.uuid4()),
        "operation": "upload",
        "media": image_uri,
    }
    (media,) = client.post(emu.url, json=[upload]).json()["data"]
    assert media["operation"] == "upload"
    assert media["mediaURL"].endswith(f"/media/{media['mediaUUID']}.png")
    for image in (media["mediaUUID"], media["mediaURL"]):
        task = make_task(inputs={"image": image, "mask": mask_uri})
        assert client.post(emu.url, json=[task]).status_code == 200

    emu.configure(accept_media_uuid=False)
    task = make_task(inputs={"image": media["mediaUUID"], "mask": mask_uri})
    assert _error(client.post(emu.url, json=[task]))["parameter"] == "inputs.image"

    delete = {
        "taskType": "mediaStorage",
        "taskUUID": str(uuid.uuid4()),
        "operation": "delete",
        "media": media["mediaUUID"],
    }
    assert client.post(emu.url, json=[delete]).json()["data"][0]["mediaUUID"] == media["mediaUUID"]
    assert client.get(media["mediaURL"]).status_code == 404
    assert emu.stats()["uploads"]["media_storage"] == 1


def test_image_upload_of_a_non_image_is_rejected(emu: EmulatorServer, client: httpx.Client) -> None:
    upload = {"taskType": "imageUpload", "taskUUID": str(uuid.uuid4()), "image": "bm9wZQ=="}
    error = _error(client.post(emu.url, json=[upload]))
    assert (error["code"], error["parameter"]) == ("invalidImage", "image")

"""The client against the emulator over loopback HTTP: delivery methods, outputs and options."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from prefect_flux_erase.emulator import EmulatorServer
from prefect_flux_erase.engine.imageio import decode_image
from prefect_flux_erase.runware.client import RunwareClient, run_sync
from prefect_flux_erase.runware.errors import PermanentError
from prefect_flux_erase.runware.media import sniff_mime
from prefect_flux_erase.runware.models import ImageInferenceTask
from prefect_flux_erase.runware.responses import parse_reply
from tests.fixtures.emulator import record_dilation
from tests.fixtures.runware_client import FAST_POLL, PHOTO_SIZE, Photo, Receiver

MakeTask = Callable[..., ImageInferenceTask]
NewClient = Callable[..., RunwareClient]
MIME = {"JPG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


async def test_sync_delivery_returns_results_in_one_request(
    emu: EmulatorServer, new_client: NewClient, make_task: MakeTask
) -> None:
    task = make_task(deliveryMethod="sync")
    async with new_client() as client:
        outcomes = await client.submit([task])
    outcome = outcomes[task.task_uuid]
    assert (outcome.state, len(outcome.results), outcome.requests) == ("done", 1, 1)
    assert outcome.results[0].task_uuid == task.task_uuid
    assert emu.stats()["requests_total"] == 1


async def test_async_delivery_is_acknowledged_then_collected_by_polling(
    emu: EmulatorServer, new_client: NewClient, make_task: MakeTask
) -> None:
    task = make_task(deliveryMethod="async", numberResults=2)
    async with new_client() as client:
        submitted = await client.submit([task])
        assert (submitted[task.task_uuid].state, submitted[task.task_uuid].results) == (
            "accepted",
            [],
        )
        polled = await client.poll({task.task_uuid: 2})
    outcome = polled[task.task_uuid]
    assert outcome.state == "done"
    assert len({r.image_uuid for r in outcome.results}) == 2
    assert emu.stats()["requests_by_task_type"]["getResponse"] >= 1


@pytest.mark.parametrize("output_format", ["JPG", "PNG", "WEBP"])
@pytest.mark.parametrize("output_type", ["URL", "base64Data", "dataURI"])
async def test_every_output_type_and_format_decodes_to_the_input_size(
    new_client: NewClient, make_task: MakeTask, output_type: str, output_format: str
) -> None:
    task = make_task(outputType=output_type, outputFormat=output_format)
    async with new_client() as client:
        (item,) = await client.run(task)
        data = await client.fetch_output(item)
    fields = {
        "URL": item.image_url,
        "base64Data": item.image_base64_data,
        "dataURI": item.image_data_uri,
    }
    assert [k for k, v in fields.items() if v] == [output_type]
    assert sniff_mime(data) == MIME[output_format]
    decoded = decode_image(data)
    assert decoded.size == PHOTO_SIZE
    assert decoded.source_format == output_format


async def test_every_seed_option_at_once_round_trips_through_the_emulator(
    emu: EmulatorServer, new_client: NewClient, make_task: MakeTask, receiver: Receiver
) -> None:
    # Every option of the seed page, each set, in one task over loopback (ttl only makes sense
    # with URL output, and one upload URL takes one result: those two stay compatible).
    task = make_task(
        outputType="URL",
        outputFormat="WEBP",
        outputQuality=20,
        webhookURL=f"{receiver.url}/hook?token=wh-all",
        deliveryMethod="async",
        uploadEndpoint=f"{receiver.url}/put/out.webp?X-Amz-Signature=s",
        safety={"checkContent": True, "mode": "fast"},
        ttl=60,
        includeCost=True,
        numberResults=1,
        settings={"dilatePixels": 50},
    )
    sent = task.to_wire()
    assert set(sent) == {
        "taskType", "taskUUID", "model", "inputs", "settings", "outputType", "outputFormat",
        "outputQuality", "webhookURL", "deliveryMethod", "uploadEndpoint", "safety", "ttl",
        "includeCost", "numberResults",
    }  # fmt: skip
    emu.configure(keep_task_specs=True)  # done tasks drop their spec unless asked
    async with new_client() as client:
        items = await client.run(task)
    emu.wait_idle()
    # The emulator parsed exactly what the client meant, through its own code path.
    record = emu.backend.tasks[task.task_uuid]
    assert record.spec == task
    assert record.spec is not None
    assert record.spec.to_wire() == sent
    # And every option had its effect on what came back.
    (item,) = items
    assert item.image_url is not None
    assert item.image_url.endswith(".webp")
    assert (item.cost, item.nsfw_content) == (0.03, False)
    posts = [r for r in receiver.received if r.method == "POST"]
    puts = [r for r in receiver.received if r.method == "PUT"]
    assert [p.path for p in posts] == ["/hook?token=wh-all"]
    assert [p.path for p in puts] == ["/put/out.webp?X-Amz-Signature=s"]
    assert all(sniff_mime(p.body) == "image/webp" for p in puts)
    # ttl: the result URL lives 60 s.
    assert emu.backend.get_image(item.image_uuid) is not None
    emu.advance_clock(61)
    assert emu.backend.get_image(item.image_uuid) is None
    assert emu.stats()["billed"][task.task_uuid]["count"] == 1


async def test_number_results_and_include_cost_bill_once_per_result(
    emu: EmulatorServer, new_client: NewClient, make_task: MakeTask
) -> None:
    task = make_task(numberResults=3, includeCost=True)
    async with new_client() as client:
        items = await client.run(task)
    assert len({i.image_uuid for i in items}) == 3
    assert [i.cost for i in items] == [0.03, 0.03, 0.03]
    billed = emu.stats()["billed"][task.task_uuid]
    assert billed["count"] == 3
    assert billed["usd"] == pytest.approx(0.09)


async def test_cost_is_absent_unless_requested(new_client: NewClient, make_task: MakeTask) -> None:
    async with new_client() as client:
        (item,) = await client.run(make_task())
    assert item.cost is None


async def test_output_quality_reaches_the_encoder(
    new_client: NewClient, make_task: MakeTask
) -> None:
    sizes = {}
    async with new_client() as client:
        for quality in (20, 99):
            (item,) = await client.run(make_task(outputFormat="JPG", outputQuality=quality))
            sizes[quality] = len(await client.fetch_output(item))
    assert sizes[20] < sizes[99] / 2


async def test_dilate_pixels_reaches_the_engine(
    emu: EmulatorServer, new_client: NewClient, make_task: MakeTask
) -> None:
    seen = record_dilation(emu)
    async with new_client() as client:
        await client.run(make_task(settings={"dilatePixels": 37}))
        await client.run(make_task())
    assert seen == [37, 10]  # the explicit value, then the server's default


async def test_ttl_limits_the_result_url_lifetime(
    emu: EmulatorServer, new_client: NewClient, make_task: MakeTask
) -> None:
    async with new_client() as client:
        (item,) = await client.run(make_task(outputType="URL", ttl=60))
        assert await client.fetch_output(item)
        emu.advance_clock(61)
        with pytest.raises(PermanentError) as info:
            await client.fetch_output(item)
        assert info.value.http_status == 404
        assert client.stats.retries == 0


@pytest.mark.parametrize(
    ("safety", "flag"),
    [(None, None), ({"checkContent": True}, False), ({"mode": "fast"}, False)],
)
async def test_safety_options_enable_content_checking(
    new_client: NewClient, make_task: MakeTask, safety: dict[str, Any] | None, flag: bool | None
) -> None:
    options = {"safety": safety} if safety else {}
    async with new_client() as client:
        (item,) = await client.run(make_task(**options))
    assert item.nsfw_content is flag


async def test_webhook_url_receives_one_post_per_result(
    emu: EmulatorServer, new_client: NewClient, make_task: MakeTask, receiver: Receiver
) -> None:
    task = make_task(
        deliveryMethod="async", numberResults=2, webhookURL=f"{receiver.url}/hook?token=wh-1"
    )
    async with new_client() as client:
        outcome = (await client.submit([task]))[task.task_uuid]
        assert outcome.state == "accepted"
        await client.poll({task.task_uuid: 2})
    emu.wait_idle()
    posts = [r for r in receiver.received if r.method == "POST"]
    assert len(posts) == 2
    items = [parse_reply(json.loads(p.body)).items[0] for p in posts]
    assert {i.task_uuid for i in items} == {task.task_uuid}
    assert len({i.image_uuid for i in items}) == 2
    assert all(p.path == "/hook?token=wh-1" for p in posts)


async def test_upload_endpoint_puts_the_output_to_a_presigned_s3_url(
    emu: EmulatorServer,
    new_client: NewClient,
    make_task: MakeTask,
    s3_options: dict[str, Any],
) -> None:
    import boto3
    import s3fs
    from botocore.config import Config

    endpoint = s3_options["client_kwargs"]["endpoint_url"]
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
        config=Config(signature_version="s3v4"),
    )
    # boto3, not s3fs.mkdir: s3fs sends a us-east-1 LocationConstraint, which S3 refuses.
    s3_bucket = f"erase-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=s3_bucket)
    presigned = s3.generate_presigned_url(
        "put_object", Params={"Bucket": s3_bucket, "Key": "out/erased.png"}, ExpiresIn=600
    )
    assert "X-Amz-Signature=" in presigned
    async with new_client() as client:
        (item,) = await client.run(make_task(outputFormat="PNG", uploadEndpoint=presigned))
        direct = await client.fetch_output(item)
    emu.wait_idle()
    stored = s3fs.S3FileSystem(**s3_options).cat(f"{s3_bucket}/out/erased.png")
    assert stored == direct
    assert decode_image(stored).size == PHOTO_SIZE
    assert emu.stats()["uploads"]["endpoint_put"] == 1


async def test_uploaded_images_are_reusable_as_inputs(
    emu: EmulatorServer, new_client: NewClient, make_task: MakeTask, photo: Photo
) -> None:
    async with new_client() as client:
        image_uuid = await client.upload_image(photo.image)
        mask_uuid = await client.upload_image(photo.mask_uri)
        assert image_uuid != mask_uuid
        uuid.UUID(image_uuid)
        (item,) = await client.run(make_task(inputs={"image": image_uuid, "mask": mask_uuid}))
        data = await client.fetch_output(item)
    assert decode_image(data).size == PHOTO_SIZE
    assert emu.stats()["uploads"]["image_upload"] == 2


async def test_tasks_are_batched_per_request_and_matched_by_uuid(
    emu: EmulatorServer, new_client: NewClient, make_task: MakeTask
) -> None:
    # Different numberResults per task: a reply matched by position would mix them up.
    tasks = [make_task(numberResults=n) for n in (3, 1, 2, 1, 2)]
    async with new_client(max_tasks_per_request=2) as client:
        outcomes = await client.submit(tasks)
    assert [len(outcomes[t.task_uuid].results) for t in tasks] == [3, 1, 2, 1, 2]
    for task in tasks:
        assert {r.task_uuid for r in outcomes[task.task_uuid].results} == {task.task_uuid}
    stats = emu.stats()
    assert stats["requests_total"] == 3
    assert stats["requests_by_task_type"]["imageInference"] == 5


async def test_polls_carry_several_tasks_per_request(
    emu: EmulatorServer, new_client: NewClient, make_task: MakeTask
) -> None:
    tasks = [make_task(deliveryMethod="async") for _ in range(6)]
    async with new_client(max_tasks_per_request=3) as client:
        await client.submit(tasks)
        emu.wait_idle()
        before = emu.stats()["requests_total"]
        polled = await client.poll({t.task_uuid: 1 for t in tasks})
    assert {o.state for o in polled.values()} == {"done"}
    stats = emu.stats()
    assert stats["requests_total"] - before == 2  # one round, two POSTs of three
    assert stats["requests_by_task_type"]["getResponse"] == 6
    assert all(o.requests == 1 for o in polled.values())


async def test_a_submission_of_nothing_sends_nothing(
    emu: EmulatorServer, new_client: NewClient
) -> None:
    async with new_client() as client:
        assert await client.submit([]) == {}
        assert await client.poll({}) == {}
    assert emu.stats()["requests_total"] == 0


def test_run_sync_wraps_the_async_client(emu: EmulatorServer, make_task: MakeTask) -> None:
    task = make_task(numberResults=2)
    items = run_sync(task, "rk-test-key", base_url=emu.url, poll_policy=FAST_POLL)
    assert {i.task_uuid for i in items} == {task.task_uuid}
    assert len(items) == 2


class CountingTransport(httpx.AsyncHTTPTransport):
    """A real HTTP transport that counts what it sends (to prove the client uses it)."""

    sent = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        return await super().handle_async_request(request)


async def test_an_injected_httpx_transport_carries_every_request(
    emu: EmulatorServer, new_client: NewClient, make_task: MakeTask
) -> None:
    transport = CountingTransport()
    async with new_client(transport=transport) as client:
        (item,) = await client.run(make_task(deliveryMethod="async"))
        await client.fetch_output(item)
    # submit, one or more polls (the task may still be processing at the first), one download
    assert transport.sent == emu.stats()["requests_total"] >= 3
    assert transport.sent == client.stats.requests
    assert emu.stats()["requests_by_task_type"].get("imageInference") == 1

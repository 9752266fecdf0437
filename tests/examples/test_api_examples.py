"""The API examples against the emulator over loopback HTTP: the Runware key from a block or the
environment, uploadEndpoint with presigned S3 URLs on moto's server, and the webhook receiver."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pyarrow.parquet as pq
import pytest
import uvicorn
from botocore.config import Config

from prefect_flux_erase import FluxEraseSettings, RunwareCredentials, erase_images
from prefect_flux_erase.emulator import EmulatorServer
from tests.fixtures.examples import load_example

pytestmark = pytest.mark.usefixtures("prefect_harness")
PNG = b"\x89PNG"
JPEG = b"\xff\xd8\xff"


def test_runware_example_takes_the_key_and_base_url_from_the_environment(
    tmp_path: Path, emu: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    example = load_example("runware_api")
    monkeypatch.setenv("RUNWARE_API_KEY", "env-key-for-example")
    monkeypatch.setenv("RUNWARE_BASE_URL", emu.url)

    credentials = example.load_credentials()
    summary = example.erase_with_prefect(example.sample_pairs(), str(tmp_path), credentials)

    assert credentials.base_url == emu.url
    assert (summary.rows, summary.succeeded) == (4, 4)
    outputs = pq.read_table(summary.results_uri, columns=["output_uri"]).column("output_uri")
    for uris in outputs.to_pylist():
        assert Path(uris[0]).read_bytes()[:4] == PNG
    stats = emu.stats()
    assert stats["results_billed"] == 4
    assert summary.total_cost == pytest.approx(stats["total_usd"])


def test_runware_example_loads_a_saved_block_and_the_bare_client_erases(
    emu: EmulatorServer,
) -> None:
    example = load_example("runware_api")
    name = f"runware-{uuid.uuid4().hex[:8]}"
    RunwareCredentials(api_key="block-key-for-example", base_url=emu.url).save(name)
    image, mask = (Path(p).read_bytes() for p in example.sample_pairs()[2])

    credentials = example.load_credentials(name)
    png = asyncio.run(example.erase_with_client(image, mask, credentials))

    assert credentials.api_key.get_secret_value() == "block-key-for-example"
    assert png[:4] == PNG
    assert emu.stats()["results_billed"] == 1


def test_presigned_uploads_land_in_the_bucket_and_only_redacted_urls_are_shown(
    tmp_path: Path, emu: EmulatorServer, s3_server: str, run_logs: list[str]
) -> None:
    example = load_example("upload_endpoint_presigned")
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_server,
        aws_access_key_id="k",
        aws_secret_access_key="s",
        region_name="us-east-1",
        config=Config(signature_version="s3v4"),
    )
    bucket = f"uploads-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    credentials = RunwareCredentials(api_key="upload-key", base_url=emu.url)

    summary = example.main(s3, bucket, "erased", tmp_path, credentials)

    assert (summary.rows, summary.succeeded) == (4, 4)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="erased/")["Contents"]
    assert sorted(o["Key"] for o in listed) == [f"erased/{n}.jpg" for n in example.SAMPLES]
    body = s3.get_object(Bucket=bucket, Key="erased/coffee.jpg")["Body"].read()
    assert body[:3] == JPEG
    uploads = emu.stats()["uploads"]
    assert (uploads["endpoint_put"], uploads["endpoint_put_failed"]) == (4, 0)
    signatures = [
        url.split("X-Amz-Signature=")[1].split("&")[0]
        for url in pq.read_table(tmp_path / "manifest.parquet").column("upload_url").to_pylist()
    ]
    shown = pq.read_table(summary.results_uri).column("upload_url").to_pylist()
    assert all("X-Amz-Signature=REDACTED" in url for url in shown)
    report = Path(summary.report_uri).read_text(encoding="utf-8")
    visible = "\n".join([*run_logs, *shown, report, summary.describe()])
    assert run_logs  # the logs were captured, so their check below means something
    assert not [s for s in signatures if s in visible]


@pytest.fixture
def receiver() -> Iterator[tuple[str, Any]]:
    """The example's webhook receiver on 127.0.0.1 (a free port); yields (URL, its results)."""
    example = load_example("webhook_receiver")
    app = example.create_app("hook-token")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the receiver did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/runware?token=hook-token", app.state.results
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.mark.parametrize("body_shape", ["flat", "wrapped"])
def test_webhook_receiver_gets_every_result_once_in_either_body_shape(
    tmp_path: Path, emu: EmulatorServer, receiver: tuple[str, Any], body_shape: str
) -> None:
    url, received = receiver
    emu.configure(webhook_body=body_shape)
    example = load_example("runware_api")

    state = erase_images(
        example.sample_pairs(),
        str(tmp_path),
        backend="runware",
        credentials=RunwareCredentials(api_key="hook-key", base_url=emu.url),
        settings=FluxEraseSettings(webhook_url=url, include_cost=True),
        return_state=True,
    )
    emu.wait_idle()

    summary = state.result()
    rows = pq.read_table(summary.results_uri, columns=["task_uuid", "image_uuid"]).to_pylist()
    expected = {(r["task_uuid"], r["image_uuid"][0]) for r in rows}
    assert len(expected) == 4
    assert set(received.results) == expected
    assert received.deliveries == 4


def test_webhook_receiver_dedupes_redeliveries_and_rejects_a_wrong_token(
    receiver: tuple[str, Any],
) -> None:
    url, received = receiver
    item = {"taskType": "imageInference", "taskUUID": "t-1", "imageUUID": "i-1", "cost": 0.03}
    second = {**item, "imageUUID": "i-2"}  # a second result of the same task

    with httpx.Client() as client:
        answers = [
            client.post(url, json=item).json(),
            client.post(url, json={"data": [item, second]}).json(),
            client.post(url, json=[second]).json(),
        ]
        wrong = client.post(url.replace("hook-token", "guess"), json=item)

    assert answers == [
        {"received": 1, "new": 1},
        {"received": 2, "new": 1},
        {"received": 1, "new": 0},
    ]
    assert set(received.results) == {("t-1", "i-1"), ("t-1", "i-2")}
    assert received.duplicates == 2
    assert wrong.status_code == 403

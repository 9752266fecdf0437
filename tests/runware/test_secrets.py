"""A canary API key and a canary URL signature, through successes and failures with DEBUG
logging on every logger, must appear in no log record, exception text, repr or result."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest

from prefect_flux_erase.emulator import EmulatorServer
from prefect_flux_erase.runware.client import RunwareClient
from prefect_flux_erase.runware.errors import RunwareError
from prefect_flux_erase.runware.models import ImageInferenceTask
from prefect_flux_erase.runware.responses import ResultItem
from prefect_flux_erase.runware.retry_policy import RetryPolicy
from prefect_flux_erase.runware.task_outcome import TaskOutcome
from tests.fixtures.runware_client import Received, Receiver

MakeTask = Callable[..., ImageInferenceTask]
NewClient = Callable[..., RunwareClient]
CANARY = "rk-CANARY-4c1d2e9f7a"
SIGNATURE = "SIGCANARY9b8a7f"


class Evidence:
    """Everything a user could see: texts of errors, reprs, outcomes and results."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def error(self, exc: BaseException) -> None:
        chain: BaseException | None = exc
        while chain is not None:  # the cause/context chain is printed in tracebacks
            self.texts += [str(chain), repr(chain)]
            chain = chain.__cause__ or chain.__context__
        if isinstance(exc, RunwareError):
            self.texts += [str(exc.documentation), str(exc.parameters)]

    def outcome(self, outcome: TaskOutcome) -> None:
        self.texts.append(repr(outcome))
        for item in outcome.results:
            self.item(item)
        if outcome.error is not None:
            self.error(outcome.error)

    def item(self, item: ResultItem) -> None:
        self.texts += [repr(item), item.model_dump_json()]


@pytest.fixture
def debug_everywhere(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """DEBUG on the root logger and on every logger that exists (httpx, httpcore, ...)."""
    caplog.set_level(logging.DEBUG)
    for name in ["httpx", "httpcore", *logging.root.manager.loggerDict]:
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def _records_text(caplog: pytest.LogCaptureFixture) -> list[str]:
    texts = [caplog.text]
    for record in caplog.records:
        texts += [record.getMessage(), str(record.args), record.exc_text or ""]
    return texts


def _echoing_server(receiver: Receiver) -> None:
    """A hostile server that echoes the Authorization header and a signed URL in its errors."""

    def respond(got: Received) -> tuple[int, dict[str, str], bytes]:
        auth = got.headers.get("Authorization", "")
        signed = f"https://b.s3.amazonaws.com/o.png?X-Amz-Signature={SIGNATURE}"
        if got.method == "GET":
            return 500, {"Content-Type": "text/plain"}, f"{auth} {signed}".encode()
        task = json.loads(got.body)[0]
        error = {
            "code": "invalidUploadEndpoint",
            "message": f"uploadEndpoint {signed} refused for {auth}",
            "parameter": "uploadEndpoint",
            "documentation": f"{signed}#{auth}",
            "taskUUID": task["taskUUID"],
        }
        return 400, {"Content-Type": "application/json"}, json.dumps({"errors": [error]}).encode()

    receiver.respond = respond


async def test_canary_key_and_signature_never_leak(
    emu: EmulatorServer,
    new_client: NewClient,
    make_task: MakeTask,
    receiver: Receiver,
    debug_everywhere: pytest.LogCaptureFixture,
) -> None:
    evidence = Evidence()
    emu.configure(api_keys=frozenset({CANARY}), retry_after=0.01)
    signed_target = f"{receiver.url}/put/o.png?X-Amz-Signature={SIGNATURE}&X-Amz-Expires=60"

    async with new_client(api_key=CANARY) as client:
        evidence.texts.append(repr(client))
        # Successes: sync, async + polling, uploads, outputs, an uploadEndpoint with a signature.
        for options in (
            {"deliveryMethod": "sync", "uploadEndpoint": signed_target},
            {"deliveryMethod": "async", "outputType": "base64Data"},
        ):
            task = make_task(**options)
            for outcome in (await client.submit([task])).values():
                evidence.outcome(outcome)
            for item in await client.run(task):
                evidence.item(item)
                await client.fetch_output(item)
        evidence.texts.append(await client.upload_image(make_task().inputs.image))
        # Transient faults: 500, 502 (HTML), malformed JSON, a reset, a 429.
        emu.script_faults(["http_500", "http_502", "malformed_json", "reset_after", "http_429"])
        for item in await client.run(make_task()):
            evidence.item(item)
        evidence.texts.append(repr(client.stats))

    emu.wait_idle()
    # A 401: the canary is not an accepted key any more.
    emu.configure(api_keys=frozenset({"rk-another-key"}))
    async with new_client(api_key=CANARY) as client:
        task = make_task()
        evidence.outcome((await client.submit([task]))[task.task_uuid])
        with pytest.raises(RunwareError) as info:
            await client.run(task)
        evidence.error(info.value)

    # A hostile server echoing the key and a signed URL; a non-JSON 2xx; a refused connection.
    _echoing_server(receiver)
    policy = RetryPolicy(base=0.001, jitter=0.0, max_retries=1)
    async with new_client(api_key=CANARY, base_url=receiver.url, retry_policy=policy) as client:
        task = make_task()
        evidence.outcome((await client.submit([task]))[task.task_uuid])
        signed_output = ResultItem.model_validate(
            {"taskUUID": task.task_uuid, "imageURL": f"{receiver.url}/o.png?Signature={SIGNATURE}"}
        )
        with pytest.raises(RunwareError) as info:
            await client.fetch_output(signed_output)
        evidence.error(info.value)
    receiver.respond = None
    receiver.replies = [(200, {"Content-Type": "text/html"}, b"<html>oops</html>")] * 2
    async with new_client(api_key=CANARY, base_url=receiver.url, retry_policy=policy) as client:
        task = make_task()
        evidence.outcome((await client.submit([task]))[task.task_uuid])
    closed = "http://127.0.0.1:9/v1"  # discard port: nothing listens
    async with new_client(api_key=CANARY, base_url=closed, retry_policy=policy) as client:
        task = make_task()
        evidence.outcome((await client.submit([task]))[task.task_uuid])

    logs = _records_text(debug_everywhere)
    assert any("HTTP Request" in text for text in logs)  # httpx did log, at INFO/DEBUG
    assert any("send_request_headers" in text for text in logs)  # and httpcore at DEBUG
    # The signed URL was used for real: the emulator PUT the output to it.
    assert any(r.method == "PUT" and SIGNATURE in r.path for r in receiver.received)
    for text in logs + evidence.texts:
        assert CANARY not in text
        assert SIGNATURE not in text
    # The key did travel where it must: as the Bearer header of API requests.
    assert emu.stats()["requests_by_status"].get("401") == 2

"""Output downloads (aiohttp): no API key sent, redirects followed, faults in the client's tree."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from prefect_flux_erase.runware.client import RunwareClient
from prefect_flux_erase.runware.errors import PermanentError, TransportError
from prefect_flux_erase.runware.responses import ResultItem
from prefect_flux_erase.runware.retry_policy import RetryPolicy
from tests.fixtures.runware_client import Receiver

NewClient = Callable[..., RunwareClient]

TASK = "3f9a3c3e-2b7e-4a51-9d1b-6d6f0a2f8e11"
SIGNATURE = "c0ffee0123456789abcdef"


def _item(url: str) -> ResultItem:
    return ResultItem.model_validate({"taskUUID": TASK, "imageUUID": "i", "imageURL": url})


async def test_download_sends_no_api_key_and_follows_a_redirect(
    new_client: NewClient, receiver: Receiver
) -> None:
    receiver.replies = [
        (302, {"Location": f"{receiver.url}/final.png"}, b""),
        (200, {"Content-Type": "image/png"}, b"\x89PNG-bytes"),
    ]
    async with new_client(api_key="rk-download-canary") as client:
        data = await client.fetch_output(_item(f"{receiver.url}/image/o.png?sig={SIGNATURE}"))

    assert data == b"\x89PNG-bytes"
    assert [r.path for r in receiver.received] == [f"/image/o.png?sig={SIGNATURE}", "/final.png"]
    for request in receiver.received:
        assert "Authorization" not in request.headers
        assert "rk-download-canary" not in str(request.headers)
        assert request.headers["User-Agent"].startswith("prefect-flux-erase/")
    assert client.stats.requests == 1


async def test_refused_download_is_retried_then_raised_with_the_signature_redacted(
    new_client: NewClient,
) -> None:
    policy = RetryPolicy(base=0.001, cap=0.002, jitter=0.0, max_retries=2)
    url = f"http://127.0.0.1:9/o.png?X-Amz-Signature={SIGNATURE}"  # discard port: refused
    async with new_client(retry_policy=policy) as client:
        with pytest.raises(TransportError) as info:
            await client.fetch_output(_item(url))

    assert info.value.code == "connectionError"
    assert info.value.retryable
    assert SIGNATURE not in str(info.value)
    assert "X-Amz-Signature=REDACTED" in str(info.value)
    assert client.stats.retries == 2
    assert client.stats.statuses["transport"] == 3


async def test_a_url_no_http_client_can_fetch_is_permanent_and_not_retried(
    new_client: NewClient,
) -> None:
    async with new_client() as client:
        with pytest.raises(PermanentError) as info:
            await client.fetch_output(_item("ftp://example.com/o.png"))

    assert info.value.code == "invalidURL"
    assert client.stats.retries == 0


async def test_an_error_status_on_download_keeps_its_http_class(
    new_client: NewClient, receiver: Receiver
) -> None:
    receiver.replies = [(404, {"Content-Type": "text/plain"}, b"gone")]
    async with new_client() as client:
        with pytest.raises(PermanentError) as info:
            await client.fetch_output(_item(f"{receiver.url}/expired.png"))

    assert (info.value.code, info.value.http_status) == ("httpError", 404)
    assert "HTTP 404" in str(info.value)


def _proxy_env(monkeypatch: pytest.MonkeyPatch, proxy: str, no_proxy: str = "") -> None:
    for name in ("HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, proxy)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, no_proxy)


async def test_download_goes_through_the_environments_proxy(
    new_client: NewClient, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    _proxy_env(monkeypatch, receiver.url)  # the receiver plays the proxy
    receiver.replies = [(200, {"Content-Type": "image/png"}, b"via-proxy")] * 2
    async with new_client() as client:
        first = await client.fetch_output(_item("http://downloads.invalid/a.png"))
        second = await client.fetch_output(_item("http://downloads.invalid/b.png"))

    assert (first, second) == (b"via-proxy", b"via-proxy")
    # A proxy gets the absolute URL in the request line; the host never resolves directly.
    assert [r.path for r in receiver.received] == [
        "http://downloads.invalid/a.png",
        "http://downloads.invalid/b.png",
    ]


async def test_no_proxy_hosts_are_fetched_directly(
    new_client: NewClient, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    _proxy_env(monkeypatch, "http://127.0.0.1:9", no_proxy="127.0.0.1")  # a refusing proxy
    receiver.replies = [(200, {"Content-Type": "image/png"}, b"direct")]
    async with new_client() as client:
        data = await client.fetch_output(_item(f"{receiver.url}/o.png"))

    assert data == b"direct"
    assert [r.path for r in receiver.received] == ["/o.png"]

"""Signed URLs and secrets are redacted in text, URLs and the HTTP libraries' log records."""

from __future__ import annotations

import logging

import pytest

from prefect_flux_erase.runware.redaction import (
    REDACTED,
    install_log_redaction,
    redact_text,
    redact_url,
)


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        (
            "https://b.s3.amazonaws.com/o.png?X-Amz-Algorithm=AWS4&X-Amz-Credential=AKIA%2F20"
            "&X-Amz-Signature=deadbeef01&X-Amz-Security-Token=tok9",
            ("deadbeef01", "AKIA%2F20", "tok9"),
        ),
        (
            "https://storage.googleapis.com/b/o.jpg?X-Goog-Signature=abc777&X-Goog-Date=1",
            ("abc777",),
        ),
        ("https://a.blob.core.windows.net/c/o?sv=2024&sp=w&sig=Zm9v%3D", ("Zm9v%3D",)),
        ("https://d.cloudfront.net/o?Expires=1&Signature=s1g&Key-Pair-Id=K9", ("s1g", "K9")),
        ("https://hooks.example.test/flux?token=wh-123&x=1", ("wh-123",)),
        ("https://user:hunter2@host.example/path", ("hunter2",)),
    ],
)
def test_signed_url_credentials_are_redacted(url: str, secret: tuple[str, ...]) -> None:
    out = redact_url(url)
    for s in secret:
        assert s not in out
    assert REDACTED in out
    assert out.split("?")[0].split("@")[-1] == url.split("?")[0].split("@")[-1]


def test_plain_urls_are_unchanged() -> None:
    url = "https://im.runware.ai/image/ws/2/ii/5c1e0b7a.png?width=3&config=x"
    assert redact_url(url) == url


def test_text_redaction_finds_urls_inside_messages_and_explicit_secrets() -> None:
    text = 'uploadEndpoint "https://b/o?X-Amz-Signature=zz9" refused for key rk-abc-123'
    out = redact_text(text, ["rk-abc-123", None])
    assert "zz9" not in out
    assert "rk-abc-123" not in out


def test_httpx_request_log_lines_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    install_log_redaction()
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("httpx").info(
            'HTTP Request: %s %s "%s %d %s"',
            "GET",
            "https://b/o?X-Amz-Signature=feedface",
            "HTTP/1.1",
            200,
            "OK",
        )
    assert "feedface" not in caplog.text
    assert "X-Amz-Signature=REDACTED" in caplog.text


def test_fsspec_http_records_and_their_tracebacks_are_redacted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import prefect_flux_erase.storage.files  # noqa: F401  (installs the filter for fsspec)

    url = "http://127.0.0.1:9/b/o.jpg?X-Amz-Signature=c4n4ry5ig&X-Amz-Expires=60"
    caplog.set_level(logging.DEBUG, logger="fsspec.http")
    logger = logging.getLogger("fsspec.http")
    logger.debug("Retrieve file size for %s", url)
    try:
        raise OSError(f"404, message='NOT FOUND', url='{url}'")
    except OSError:
        logger.debug("", exc_info=True)

    assert "c4n4ry5ig" not in caplog.text
    assert caplog.text.count(f"X-Amz-Signature={REDACTED}") == 2
    assert "Traceback" in caplog.text

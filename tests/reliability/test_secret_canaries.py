"""Secret canaries: a canary API key and canary presigned URLs through a whole run, at DEBUG.

The run reads its photos and masks through presigned GET URLs, has Runware PUT the outputs to
presigned S3 URLs (``upload_url``), and meets failures that carry those URLs in their text (an
expired input, an upload the bucket refuses). A second run with a rejected key fails the flow.
The key must then appear nowhere a user or an operator can look: client-side log records at
DEBUG, the flow runs' logs and artifacts read back from the Prefect API, the flow runs'
parameters and state messages, results.parquet, report.html, the summary and the exception
text. The presigned URLs' signatures must appear nowhere either (redacted to ``REDACTED``).
Log records of the servers on the far side (moto, the emulator) are not the pipeline's.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    LogFilter,
    LogFilterFlowRunId,
)

from prefect_flux_erase.blocks import RunwareCredentials
from prefect_flux_erase.emulator import EmulatorServer
from prefect_flux_erase.flows import erase_manifest
from tests.fixtures.builders import make_bucket
from tests.fixtures.corpus import mask, photo, results, write_manifest
from tests.fixtures.jobs import FAST_POLL, FAST_RETRY

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

CANARY_KEY = "rk-CANARY-0f9e8d7c6b5a4e3d"
#: Loggers of the servers the pipeline talks to: their logs are the far side's, not ours.
FAR_SIDE = ("werkzeug", "moto", "prefect_flux_erase.emulator", "uvicorn", "botocore", "boto3")


def _presign(s3: Any, method: str, bucket: str, key: str) -> str:
    return str(
        s3.generate_presigned_url(method, Params={"Bucket": bucket, "Key": key}, ExpiresIn=600)
    )


def _signature(url: str) -> str:
    return parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]


def _flush_api_logs() -> None:
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()


def _server_side_texts(flow_run_ids: list[Any]) -> list[str]:
    """Logs, artifacts, parameters and state messages of the runs, read back from the API."""
    _flush_api_logs()
    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=flow_run_ids))
        )
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=flow_run_ids))
        )
        runs = [client.read_flow_run(run_id) for run_id in flow_run_ids]
    texts = [f"{log.name} {log.message}" for log in logs]
    texts += [f"{a.key} {a.type} {a.data} {a.description}" for a in artifacts]
    texts += [f"{run.parameters} {run.state.message if run.state else ''}" for run in runs]
    assert logs, "no log reached the API"
    assert {a.type for a in artifacts} >= {"progress", "table", "markdown"}
    return texts


def test_canary_key_and_signatures_appear_nowhere(
    tmp_path: Path,
    emu: EmulatorServer,
    s3_options: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    import boto3
    from botocore.config import Config

    bucket = make_bucket(s3_options)
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_options["client_kwargs"]["endpoint_url"],
        aws_access_key_id=s3_options["key"],
        aws_secret_access_key=s3_options["secret"],
        region_name="us-east-1",
        config=Config(signature_version="s3v4"),  # presigned URLs as AWS issues them today
    )
    for i in range(3):
        s3.put_object(Bucket=bucket, Key=f"in/p{i}.jpg", Body=photo(i))
        s3.put_object(Bucket=bucket, Key=f"in/p{i}-mask.png", Body=mask())
    rows = [
        {
            "row_key": f"p{i}",
            "image_uri": _presign(s3, "get_object", bucket, f"in/p{i}.jpg"),
            "mask_uri": _presign(s3, "get_object", bucket, f"in/p{i}-mask.png"),
        }
        for i in range(3)
    ] + [
        {  # the object is gone: the error names the URL
            "row_key": "expired",
            "image_uri": _presign(s3, "get_object", bucket, "in/gone.jpg"),
            "mask_uri": _presign(s3, "get_object", bucket, "in/p0-mask.png"),
        }
    ]
    uploads = [_presign(s3, "put_object", bucket, f"out/p{i}.jpg") for i in range(3)]
    # A bucket that does not exist: the API's PUT fails and its error names the URL.
    uploads.append(_presign(s3, "put_object", f"{bucket}-missing", "out/expired.jpg"))
    for row, url in zip(rows, uploads, strict=True):
        row["upload_url"] = url
    signatures = {_signature(r["image_uri"]) for r in rows} | {_signature(u) for u in uploads}
    signatures |= {_signature(r["mask_uri"]) for r in rows}
    manifest = write_manifest(f"{tmp_path}/m.parquet", rows)
    _add_upload_column(manifest, uploads)
    emu.configure(api_keys=frozenset({CANARY_KEY}))
    caplog.set_level(logging.DEBUG)
    for name in ["httpx", "httpcore", "aiohttp", "fsspec", *logging.root.manager.loggerDict]:
        caplog.set_level(logging.DEBUG, logger=name)
    options: dict[str, Any] = {
        "backend": "runware",
        "poll_policy": FAST_POLL,
        "retry_policy": FAST_RETRY,
        "max_failed_fraction": 1.0,
        "return_state": True,
    }

    ran = erase_manifest(
        manifest,
        f"{tmp_path}/out",
        credentials=RunwareCredentials(api_key=CANARY_KEY, base_url=emu.url),
        **options,
    )
    refused = erase_manifest(
        manifest,
        f"{tmp_path}/out-refused",
        credentials=RunwareCredentials(api_key=CANARY_KEY + "-revoked", base_url=emu.url),
        **options,
    )

    # The runs did what they should, so the texts below are the real ones.
    assert ran.is_completed(), ran.message
    got = {r["row_key"]: r for r in results(f"{tmp_path}/out")}
    assert [got[f"p{i}"]["status"] for i in range(3)] == ["succeeded"] * 3
    assert got["expired"]["error_code"] == "inputNotFound"
    for i in range(3):
        uploaded = s3.get_object(Bucket=bucket, Key=f"out/p{i}.jpg")["Body"].read()
        assert uploaded[:3] == b"\xff\xd8\xff"
        assert "X-Amz-Signature=REDACTED" in got[f"p{i}"]["output_uri"][0]
        assert "X-Amz-Signature=REDACTED" in got[f"p{i}"]["upload_url"]
    assert "X-Amz-Signature=REDACTED" in got["expired"]["error_message"]
    assert refused.is_failed()
    assert "invalidApiKey" in refused.message
    summary = ran.result()
    error = refused.result(raise_on_failure=False)
    texts = [
        *(
            f"{r.name} {r.getMessage()} {r.args} {r.exc_text or ''}"
            for r in caplog.records
            if not r.name.startswith(FAR_SIDE)
        ),
        repr(summary),
        str(summary.as_dict()),
        str(results(f"{tmp_path}/out")),
        (tmp_path / "out" / "report.html").read_text(),
        ran.message or "",
        refused.message or "",
        f"{error!s} {error!r}",
        *_server_side_texts([ran.state_details.flow_run_id, refused.state_details.flow_run_id]),
    ]
    everything = "\n".join(texts)
    assert CANARY_KEY not in everything
    leaked = sorted(s for s in signatures if s in everything)
    assert not leaked, _context(everything, leaked[0])
    assert len(caplog.records) > 100  # DEBUG really was on


def _context(text: str, secret: str) -> str:
    at = text.index(secret)
    return f"signature leaked: …{text[max(0, at - 300) : at + 40]}…"


def _add_upload_column(manifest: str, uploads: list[str]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(manifest)
    pq.write_table(table.append_column("upload_url", pa.array(uploads, pa.string())), manifest)

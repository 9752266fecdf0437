"""Outputs straight into your bucket: ``uploadEndpoint`` with one presigned S3 PUT URL per row.

The manifest gets an ``upload_url`` column of presigned PUT URLs (boto3's
``generate_presigned_url("put_object", ...)``); the pipeline sends each as that row's
``uploadEndpoint`` and the API PUTs the erased image there. Logs, results, artifacts and the
report show the URLs with their signature redacted.

By default it is a dry run that needs no account: a local S3 server (moto) and the bundled
Runware emulator, both on 127.0.0.1 (the ``examples`` extra). For the real thing, pass
``--bucket`` (AWS credentials from the environment) and set ``RUNWARE_API_KEY``.

Run:
    python examples/upload_endpoint_presigned.py
    RUNWARE_API_KEY=rk-… python examples/upload_endpoint_presigned.py --bucket my-bucket
"""

from __future__ import annotations

import argparse
import contextlib
import logging
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from prefect_flux_erase import EraseSummary, FluxEraseSettings, RunwareCredentials, erase_manifest

SAMPLES = ("astronaut", "chelsea", "coffee", "rocket")


def presigned_put_urls(
    s3_client: Any, bucket: str, keys: list[str], expires_s: int = 3600
) -> list[str]:
    """One presigned PUT URL per object key (valid ``expires_s`` seconds).

    Give the client ``Config(signature_version="s3v4")``: SigV4 URLs carry the signature in
    ``X-Amz-Signature``, which is what every region accepts.
    """
    return [
        s3_client.generate_presigned_url(
            "put_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_s
        )
        for key in keys
    ]


def write_manifest(root: Path, upload_urls: list[str]) -> Path:
    """A manifest of the bundled samples with an ``upload_url`` column."""
    data = resources.files("prefect_flux_erase") / "sample_data"
    table = pa.table(
        {
            "row_key": list(SAMPLES),
            "image_uri": [str(data / "images" / f"{name}.jpg") for name in SAMPLES],
            "mask_uri": [str(data / "masks" / f"{name}.png") for name in SAMPLES],
            "upload_url": upload_urls,
        }
    )
    root.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, root / "manifest.parquet")
    return root / "manifest.parquet"


def main(
    s3_client: Any, bucket: str, prefix: str, work_dir: Path, credentials: RunwareCredentials
) -> EraseSummary:
    """Presign a PUT per sample under ``s3://{bucket}/{prefix}/``, erase, and list the objects."""
    keys = [f"{prefix}/{name}.jpg" for name in SAMPLES]
    manifest = write_manifest(work_dir, presigned_put_urls(s3_client, bucket, keys))
    summary = erase_manifest(
        str(manifest),
        str(work_dir / "output"),  # results.parquet and the report; the images go to S3
        backend="runware",
        credentials=credentials,
        settings=FluxEraseSettings(output_format="JPG", include_cost=True),
    )
    assert isinstance(summary, EraseSummary)
    print(summary.describe())
    listed = s3_client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/")
    for obj in listed.get("Contents", []):
        print(f"  s3://{bucket}/{obj['Key']} ({obj['Size']} bytes)")
    return summary


@contextlib.contextmanager
def dry_run() -> Iterator[tuple[Any, RunwareCredentials]]:
    """A local S3 server and the Runware emulator on 127.0.0.1: an S3 client and credentials."""
    import boto3
    from botocore.config import Config
    from moto.server import ThreadedMotoServer

    from prefect_flux_erase.emulator import EmulatorConfig, serve_in_thread

    # moto's access log would print every presigned URL, signature included, to the terminal:
    # a real bucket's server logs stay on the server.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    s3_server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    s3_server.start()
    host, port = s3_server.get_host_and_port()
    try:
        with serve_in_thread(EmulatorConfig(latency=0.1)) as emulator:
            s3 = boto3.client(
                "s3",
                endpoint_url=f"http://{host}:{port}",
                aws_access_key_id="example",
                aws_secret_access_key="example",
                region_name="us-east-1",
                config=Config(signature_version="s3v4"),
            )
            yield s3, RunwareCredentials(api_key="dry-run", base_url=emulator.url)
    finally:
        s3_server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bucket", help="a real bucket (default: a dry run on local servers)")
    parser.add_argument("--prefix", default="flux-erase/erased", help="key prefix of outputs")
    parser.add_argument("--work-dir", default="flux-erase-upload", help="manifest and results")
    args = parser.parse_args()
    if args.bucket is None:
        with dry_run() as (s3, credentials):
            s3.create_bucket(Bucket="flux-erase-example")
            main(s3, "flux-erase-example", args.prefix, Path(args.work_dir), credentials)
    else:
        import boto3
        from botocore.config import Config

        s3 = boto3.client("s3", config=Config(signature_version="s3v4"))
        main(s3, args.bucket, args.prefix, Path(args.work_dir), RunwareCredentials())

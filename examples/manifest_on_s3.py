"""A manifest, its photos and the outputs on S3.

By default the example starts a local S3 server (moto, from the ``examples`` extra) on
127.0.0.1 and works in a bucket there, so it runs anywhere. For real S3, change one URI: pass
``--s3-root s3://your-bucket/some/prefix`` and s3fs takes credentials from the environment
(``AWS_PROFILE``, ``AWS_ACCESS_KEY_ID``…, or an instance role). Any S3-compatible store works
with ``--endpoint-url``.

Run:
    python examples/manifest_on_s3.py                                  # local S3 server
    python examples/manifest_on_s3.py --s3-root s3://my-bucket/flux-erase-example   # real S3
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
from collections.abc import Iterator
from importlib import resources
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from prefect_flux_erase import EraseSummary, erase_manifest

SAMPLES = ("astronaut", "chelsea", "coffee", "rocket")


def upload_samples(s3_root: str, storage_options: dict[str, Any]) -> str:
    """Copy the bundled samples to ``{s3_root}/photos`` and ``/masks``; write the manifest."""
    fs, root = fsspec.core.url_to_fs(s3_root, **storage_options)
    data = resources.files("prefect_flux_erase") / "sample_data"
    for name in SAMPLES:
        fs.pipe(f"{root}/photos/{name}.jpg", (data / "images" / f"{name}.jpg").read_bytes())
        fs.pipe(f"{root}/masks/{name}.png", (data / "masks" / f"{name}.png").read_bytes())
    table = pa.table(
        {
            "row_key": list(SAMPLES),
            "image_uri": [f"{s3_root}/photos/{name}.jpg" for name in SAMPLES],
            "mask_uri": [f"{s3_root}/masks/{name}.png" for name in SAMPLES],
        }
    )
    buf = io.BytesIO()
    pq.write_table(table, buf)
    fs.pipe(f"{root}/manifest.parquet", buf.getvalue())
    return f"{s3_root}/manifest.parquet"


def main(
    s3_root: str, storage_options: dict[str, Any], *, local_engine: str = "local"
) -> EraseSummary:
    """Upload the samples under ``s3_root``, erase them into ``{s3_root}/erased``."""
    manifest = upload_samples(s3_root, storage_options)
    summary = erase_manifest(
        manifest,
        f"{s3_root}/erased",
        storage_options=storage_options,  # for the manifest, the photos and (here) the output
        local_engine=local_engine,
    )
    assert isinstance(summary, EraseSummary)
    print(summary.describe())
    # The results are a Parquet dataset on S3 like any other.
    fs, path = fsspec.core.url_to_fs(summary.results_uri, **storage_options)
    with fs.open(path, "rb") as f:
        results = pq.read_table(f, columns=["row_key", "status", "output_uri"])
    for row in results.to_pylist():
        print(f"  {row['row_key']}: {row['status']} -> {row['output_uri'][0]}")
    return summary


@contextlib.contextmanager
def local_s3_server() -> Iterator[dict[str, Any]]:
    """Start moto's S3 server on 127.0.0.1 (a free port); yield s3fs storage options for it."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not one log line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield {
            "key": "example",
            "secret": "example",
            "client_kwargs": {"endpoint_url": f"http://{host}:{port}"},
        }
    finally:
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--s3-root", help="s3://bucket/prefix to work in (default: local S3)")
    parser.add_argument("--endpoint-url", help="an S3-compatible endpoint (MinIO, R2, …)")
    args = parser.parse_args()
    if args.s3_root is None:
        with local_s3_server() as options:
            fsspec.filesystem("s3", **options).mkdir("flux-erase-example")
            main("s3://flux-erase-example/batch-1", options)
    else:
        options = (
            {"client_kwargs": {"endpoint_url": args.endpoint_url}} if args.endpoint_url else {}
        )
        main(args.s3_root.rstrip("/"), options)

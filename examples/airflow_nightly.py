"""Nightly dataset cleaning with Airflow: erase the masked objects of each day's manifest on S3.

Every day at midnight the DAG reads ``s3://<bucket>/manifests/<ds>.parquet`` (one row per
photo: ``image_uri``, ``mask_uri``, ``row_key``), erases every row with FLUX Erase on the
Runware API, and writes ``s3://<bucket>/erased/<ds>/``: the images, ``results.parquet`` (every
row once, with its status, error code and cost) and ``report.html``. The finalize task updates
the ``flux_erase_photos`` Asset, so a DAG with ``schedule=[PHOTOS_CLEANED]`` runs after it.

A rerun of a day (or a retry of a shard) resumes: shards already committed make no request, and
rows already erased are collected under their task UUIDs, never billed twice.

Set up::

    pip install 'prefect-flux-erase[airflow,s3]'
    airflow connections add flux_erase_default --conn-type flux_erase \\
        --conn-host https://api.runware.ai/v1 --conn-password "$RUNWARE_API_KEY"
    export FLUX_ERASE_BUCKET=my-photos        # S3 credentials: the usual AWS_* variables

Offline, point the connection at ``flux-erase emulator`` (``--conn-host
http://127.0.0.1:8080/v1``) and S3 at any S3-compatible server (``AWS_ENDPOINT_URL_S3``).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import DAG, Asset

from prefect_flux_erase.airflow import flux_erase_manifest

BUCKET = os.environ.get("FLUX_ERASE_BUCKET", "my-photos")
#: Updated after every nightly run, with the counts and the day's results URI in its extra.
PHOTOS_CLEANED = Asset(uri=f"s3://{BUCKET}/erased", name="flux_erase_photos")

with DAG(
    "flux_erase_nightly",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=5)},
    tags=["flux-erase"],
) as dag:
    flux_erase_manifest(
        manifest=f"s3://{BUCKET}/manifests/{{{{ ds }}}}.parquet",
        output=f"s3://{BUCKET}/erased/{{{{ ds }}}}",
        backend="runware",
        options={"output_format": "PNG"},
        shard_size=100,
        max_failed_fraction=0.01,
        asset=PHOTOS_CLEANED,
    )

"""DAGs the Airflow tests run with ``dag.test()``; what they read and write comes from the
``FLUX_ERASE_TEST_DAGS`` environment variable (JSON), set by ``tests/airflow/conftest.run_dag``."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta

from airflow.sdk import DAG

from prefect_flux_erase.airflow import FluxEraseImageOperator, flux_erase_manifest

CONFIG = json.loads(os.environ.get("FLUX_ERASE_TEST_DAGS") or "{}")
DEFAULT_ARGS = {
    "retries": CONFIG.get("retries", 0),
    "retry_delay": timedelta(seconds=0),
    "execution_timeout": (
        timedelta(seconds=CONFIG["execution_timeout"]) if "execution_timeout" in CONFIG else None
    ),
}

with DAG(
    "flux_erase_image",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args=DEFAULT_ARGS,
) as image_dag:
    FluxEraseImageOperator(
        task_id="erase",
        image_uri=CONFIG.get("image", "memory://unset/photo.png"),
        mask_uri=CONFIG.get("mask", "memory://unset/mask.png"),
        output_uri=CONFIG.get("output", "memory://unset/out.jpg"),
        deferrable=CONFIG.get("deferrable", True),
        poll_interval=0.05,
        poll_timeout=CONFIG.get("poll_timeout", 60),
    )

with DAG(
    "flux_erase_manifest",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args=DEFAULT_ARGS,
) as manifest_dag:
    flux_erase_manifest(
        manifest=CONFIG.get("manifest", "memory://unset/manifest.parquet"),
        output=CONFIG.get("output", "memory://unset/out"),
        backend=CONFIG.get("backend", "runware"),
        storage_options=CONFIG.get("storage_options"),
        shard_size=CONFIG.get("shard_size", 3),
        max_failed_fraction=CONFIG.get("max_failed_fraction", 0.0),
        max_attempts=CONFIG.get("max_attempts", 3),
        key_column="row_key",
        report=CONFIG.get("report", False),
        local_engine="echo",
    )

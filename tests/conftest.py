"""Shared test set-up: offline Prefect settings, then the fixture plugins of tests/fixtures/."""

from __future__ import annotations

import os

# Prefect reads these at import: keep the test harness offline and quiet.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_TO_API_BATCH_INTERVAL", "0.3")
os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "WARNING")

pytest_plugins = [
    "tests.fixtures.prefect",
    "tests.fixtures.s3",
    "tests.fixtures.emulator",
]

"""Shared test set-up: offline Prefect settings, then the fixture plugins of tests/fixtures/."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

# A Prefect home of the test session's own: tests (and the flows their subprocesses run) never
# read or migrate the user's ~/.prefect database, which another Prefect version may own.
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="prefect-flux-erase-tests-")
atexit.register(shutil.rmtree, os.environ["PREFECT_HOME"], ignore_errors=True)
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("PREFECT_PROFILE", None)
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

# Prefect reads these at import: keep the test harness offline and quiet.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_TO_API_BATCH_INTERVAL", "0.3")
os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "WARNING")

pytest_plugins = [
    "tests.fixtures.prefect",
    "tests.fixtures.s3",
    "tests.fixtures.azure",
    "tests.fixtures.gcs",
    "tests.fixtures.emulator",
]

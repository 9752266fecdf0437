"""Helpers for the example tests: load an example file as a module, capture run logs."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.fixtures.examples import (
    LogRecords,
)


@pytest.fixture
def run_logs() -> Iterator[list[str]]:
    """Every message logged by flow and task runs during the test."""
    handler = LogRecords()
    loggers = [logging.getLogger(n) for n in ("prefect.flow_runs", "prefect.task_runs")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        for logger in loggers:
            logger.removeHandler(handler)

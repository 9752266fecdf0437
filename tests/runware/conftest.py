"""Shared pieces of the client tests: a test photo and mask, task and client factories.

Clients use tiny backoff and poll delays so fault tests run in milliseconds; the delays a
client *chose* are checked through ``client.stats``, never through wall time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from prefect_flux_erase.emulator import EmulatorServer
from prefect_flux_erase.runware.client import RunwareClient
from prefect_flux_erase.runware.ids import task_uuid
from prefect_flux_erase.runware.models import ImageInferenceTask, build_task
from tests.fixtures.runware_client import (
    FAST_POLL,
    FAST_RETRY,
    PHOTO_SIZE,
    Photo,
    Receiver,
    png_of,
    task_counter,
)


@pytest.fixture(scope="session")
def photo() -> Photo:
    """A deterministic noisy photo (so JPEG quality shows in the size) and a boxed mask."""
    w, h = PHOTO_SIZE
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    mask = np.zeros((h, w), dtype=np.uint8)
    mask[80:160, 90:200] = 255
    return Photo(png_of(rgb, "RGB"), png_of(mask, "L"))


@pytest.fixture
def make_task(photo: Photo, request: pytest.FixtureRequest) -> Callable[..., ImageInferenceTask]:
    """Build a validated task for the test photo; wire-named options go in as keywords."""

    def make(**options: Any) -> ImageInferenceTask:
        uuid = options.pop("taskUUID", None) or task_uuid(
            "tests/runware", f"{request.node.nodeid}#{next(task_counter)}"
        )
        inputs = options.pop("inputs", {"image": photo.image_uri, "mask": photo.mask_uri})
        return build_task({"taskUUID": uuid, "inputs": inputs, **options})

    return make


@pytest.fixture
def new_client(emu: EmulatorServer) -> Callable[..., RunwareClient]:
    """Create clients for the emulator with fast policies (use as ``async with``)."""

    def make(**overrides: Any) -> RunwareClient:
        options: dict[str, Any] = {
            "base_url": emu.url,
            "timeout": 5.0,
            "connect_timeout": 5.0,
            "retry_policy": FAST_RETRY,
            "poll_policy": FAST_POLL,
        }
        options.update(overrides)
        api_key = options.pop("api_key", "rk-test-key")
        return RunwareClient(api_key, **options)

    return make


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A recording HTTP server on 127.0.0.1 (a webhook or upload target, or canned replies)."""
    server = Receiver()
    try:
        yield server
    finally:
        server.close()

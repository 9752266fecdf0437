"""Inputs and a plain httpx client for talking to the emulator over loopback."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from prefect_flux_erase.emulator import EmulatorServer
from prefect_flux_erase.runware.media import to_data_uri
from tests.fixtures.emulator_requests import (
    API_KEY,
    Receiver,
    TaskFactory,
    photo,
    png_bytes,
    square_mask,
)


@pytest.fixture(scope="session")
def image_uri() -> str:
    return to_data_uri(png_bytes(photo()))


@pytest.fixture(scope="session")
def mask_uri() -> str:
    return to_data_uri(png_bytes(square_mask()))


@pytest.fixture
def make_task(image_uri: str, mask_uri: str) -> TaskFactory:
    """Build an imageInference task for bfl:flux@erase; keyword arguments override fields."""

    def make(**overrides: Any) -> dict[str, Any]:
        task: dict[str, Any] = {
            "taskType": "imageInference",
            "taskUUID": str(uuid.uuid4()),
            "model": "bfl:flux@erase",
            "inputs": {"image": image_uri, "mask": mask_uri},
        }
        task.update(overrides)
        return task

    return make


@pytest.fixture
def client(emu: EmulatorServer) -> Iterator[httpx.Client]:
    """A plain httpx client with Bearer auth, pointed at the reset emulator."""
    with httpx.Client(
        headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30, trust_env=False
    ) as c:
        yield c


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A fresh loopback receiver for one test."""
    r = Receiver()
    try:
        yield r
    finally:
        r.close()

"""Shared builders for the engine tests: synthetic scenes whose right answer is known."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from tests.fixtures.engine_scenes import (
    striped_scene,
)


@pytest.fixture(scope="session")
def scene() -> tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.bool_]]:
    """The striped scene (background, with blob, blob mask)."""
    return striped_scene()

"""Shared builders for the engine tests: synthetic scenes whose right answer is known."""

from __future__ import annotations

import io

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

#: The two colours of the striped background and the blob painted over it.
STRIPE_A = (200, 170, 60)
STRIPE_B = (40, 70, 150)
BLOB = (250, 20, 20)


def striped_scene(
    size: int = 128, radius: int = 18, period: int = 8
) -> tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.bool_]]:
    """A diagonal-striped background, and the same with a solid red disc; returns both + mask."""
    yy, xx = np.mgrid[0:size, 0:size]
    stripes = ((yy + xx) // (period // 2)) % 2 == 0
    background = np.where(stripes[..., None], STRIPE_A, STRIPE_B).astype(np.uint8)
    mask = (yy - size // 2) ** 2 + (xx - size // 2) ** 2 <= radius**2
    scene = background.copy()
    scene[mask] = BLOB
    return background, scene, mask


def encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    """Encode a Pillow image to bytes."""
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope="session")
def scene() -> tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.bool_]]:
    """The striped scene (background, with blob, blob mask)."""
    return striped_scene()

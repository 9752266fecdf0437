"""Texture matching: the fill's detail is brought to the level of the pixels around the hole."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from prefect_flux_erase.engine.detail import DetailSettings, match_detail


def _energy(img: NDArray[np.uint8], where: NDArray[np.bool_]) -> float:
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1)
    return float(np.hypot(gx, gy)[where].mean())


def _grain(size: int, amplitude: float, seed: int) -> NDArray[np.uint8]:
    """A mid-grey photo with fine random grain of the given amplitude."""
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.normal(0, 1, (size, size)).astype(np.float32), (0, 0), 1.0)
    grey = 128 + amplitude * noise / noise.std()
    return np.repeat(np.clip(grey, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def _disc(size: int, radius: int) -> NDArray[np.bool_]:
    yy, xx = np.mgrid[0:size, 0:size]
    return np.asarray((yy - size // 2) ** 2 + (xx - size // 2) ** 2 <= radius**2)


def test_pixels_outside_the_hole_are_unchanged_and_the_result_is_deterministic() -> None:
    photo, hole = _grain(120, 20, 0), _disc(120, 30)
    filled = photo.copy()
    filled[hole] = _grain(120, 40, 1)[hole]
    a = match_detail(photo, filled, hole)
    assert (a[~hole] == filled[~hole]).all()
    assert (a == match_detail(photo, filled, hole)).all()


def test_a_busy_fill_in_smooth_surroundings_is_calmed() -> None:
    photo, hole = _grain(120, 2, 0), _disc(120, 30)
    filled = photo.copy()
    filled[hole] = _grain(120, 40, 1)[hole]  # wood grain over a saucer
    out = match_detail(photo, filled, hole)
    assert _energy(out, hole) < 0.3 * _energy(filled, hole)


def test_a_faint_fill_in_textured_surroundings_gets_texture_back_up_to_the_target() -> None:
    photo, hole = _grain(120, 30, 0), _disc(120, 30)
    filled = photo.copy()
    filled[hole] = _grain(120, 10, 1)[hole]
    out = match_detail(photo, filled, hole)
    around = _energy(photo, _disc(120, 45) & ~_disc(120, 32))
    assert _energy(filled, hole) < 0.5 * around
    assert 0.6 * around < _energy(out, hole) < 1.0 * around


def test_large_holes_compute_their_maps_on_a_bounded_grid_with_the_same_outcome() -> None:
    photo, hole = _grain(200, 2, 0), _disc(200, 60)
    filled = photo.copy()
    filled[hole] = _grain(200, 40, 1)[hole]
    fine = match_detail(photo, filled, hole)
    coarse = match_detail(photo, filled, hole, DetailSettings(max_pixels=5_000))
    assert (coarse[~hole] == filled[~hole]).all()
    assert abs(_energy(coarse, hole) - _energy(fine, hole)) < 0.25 * _energy(fine, hole)

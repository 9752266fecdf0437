"""Match a fill's texture to its surroundings: smooth base, patch detail at the ring's level.

A patch fill's fine texture is right in kind but not in amount: where it copied a busy source
over what was smooth (wood grain over a saucer) it has far more than the surroundings, and
where votes averaged or a shrunk crop was carried up it has less. Texture that does not line
up with the (unknowable) truth costs similarity in proportion to its energy, while too little
of it reads as a smear. This step splits the fill into a low-frequency base and its detail,
and puts them back together so that:

- the base fades into a smooth (Telea) fill near the hole's border, which hides the seam
  where a patch meets the untouched photo;
- the detail is scaled, pixel by pixel, so that the local gradient energy of the result is
  ``target`` x that of the known pixels next to the nearest part of the hole's border
  (propagated inward), the gain bounded by ``max_gain``.

Example:
    >>> import numpy as np
    >>> rgb = np.full((40, 40, 3), 100, np.uint8)  # a flat photo...
    >>> hole = np.zeros((40, 40), bool); hole[15:25, 15:25] = True
    >>> busy = rgb.copy(); busy[hole] = 60 + 80 * (np.indices((40, 40)).sum(0) % 2)[hole, None]
    >>> out = match_detail(rgb, busy, hole)  # ...filled with a checkerboard
    >>> bool((out[~hole] == rgb[~hole]).all()), float(busy[hole].std()), bool(out[hole].std() < 5)
    (True, 40.0, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class DetailSettings:
    """Tuning of :func:`match_detail`; the defaults are the ones the engine benchmark ran with.

    Example:
        >>> DetailSettings().target
        0.85
    """

    #: Detail energy aimed for, relative to the surroundings' (a little under: texture that
    #: does not line up with the truth costs more than it adds).
    target: float = 0.85
    #: Gaussian sigma (px) of the window over which gradient energy is measured.
    energy_sigma: float = 9.0
    #: Gaussian sigma (px) splitting the fill into base (below) and detail (above).
    split_sigma: float = 3.0
    #: Largest factor the detail is raised by (it may always be lowered to nothing).
    max_gain: float = 2.0
    #: Gaussian sigma (px) smoothing the gain map, so it never draws its own edges.
    gain_sigma: float = 2.0
    #: The base is the smooth fill's at the border, fading as exp(-(d - 1) / seam_reach).
    seam_reach: float = 5.0
    #: Energy and gain maps (smooth by nature) are computed on at most this many pixels.
    max_pixels: int = 120_000


def _gradient(rgb: NDArray[np.uint8]) -> NDArray[np.float32]:
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    return np.asarray(np.hypot(gx, gy), np.float32)


def _blur(img: NDArray[np.float32], sigma: float) -> NDArray[np.float32]:
    return np.asarray(cv2.GaussianBlur(img, (0, 0), sigma), np.float32)


def expected_energy(
    rgb: NDArray[np.uint8],
    hole: NDArray[np.bool_],
    sigma: float,
    grid: _Grid | None = None,
    small_hole: NDArray[np.bool_] | None = None,
) -> NDArray[np.float32]:
    """Local gradient energy of the known pixels, carried into ``hole`` from its border.

    The energy is measured only over pixels whose gradient does not see the hole (the
    object's own edges do not count), averaged in a Gaussian window, and propagated inward by
    a Telea fill, so each part of the hole gets the level of the border next to it. With a
    ``grid`` the map comes back at the grid's size (``small_hole``: the hole on it).

    Example:
        >>> rgb = np.zeros((30, 30, 3), np.uint8); rgb[:, ::4] = 200  # stripes left...
        >>> rgb[:, 15:] = 100  # ...flat right
        >>> hole = np.zeros((30, 30), bool); hole[10:20, 8:22] = True; rgb[hole] = 90
        >>> e = expected_energy(rgb, hole, 2.0)
        >>> bool(e[15, 9] > 10 * e[15, 20]), bool(e[15, 9] > 0.5 * e[5, 9])
        (True, True)
    """
    g = grid or _Grid(hole.shape, hole.size)
    small = g.shrink_mask(hole) if small_hole is None else small_hole
    clean = np.asarray(cv2.erode((~hole).view(np.uint8), np.ones((3, 3), np.uint8)), np.float32)
    total = _blur(g.down(_gradient(rgb) * clean), sigma * g.scale)
    weight = _blur(g.down(clean), sigma * g.scale)
    energy = np.ascontiguousarray(total / np.maximum(weight, 1e-3))
    filled = cv2.inpaint(energy, small.view(np.uint8), 3, cv2.INPAINT_TELEA)
    return np.asarray(filled, np.float32)


def match_detail(
    rgb: NDArray[np.uint8],
    filled: NDArray[np.uint8],
    hole: NDArray[np.bool_],
    settings: DetailSettings | None = None,
    smooth: NDArray[np.uint8] | None = None,
) -> NDArray[np.uint8]:
    """Rebalance the fill of ``hole`` in ``filled``: smooth base at the seam, detail as around it.

    ``rgb`` is the photo (its hole pixels are ignored), ``smooth`` a smooth fill of the same
    hole (Telea's, computed when not given). Pixels outside ``hole`` come back from
    ``filled`` unchanged.

    Example:
        >>> rgb = np.zeros((30, 30, 3), np.uint8); rgb[:, ::4] = 200  # a striped photo
        >>> hole = np.zeros((30, 30), bool); hole[10:20, 10:20] = True
        >>> blurred = rgb.copy(); blurred[hole] = cv2.blur(rgb, (3, 1))[hole]  # a faint fill
        >>> out = match_detail(rgb, blurred, hole)
        >>> bool(out[hole].std() > blurred[hole].std())
        True
    """
    s = settings or DetailSettings()
    out = filled.copy()
    if not hole.any() or hole.all():
        return out
    y0, y1, x0, x1 = _box(hole, int(3 * max(s.energy_sigma, s.split_sigma)) + 2)
    box = (slice(y0, y1), slice(x0, x1))
    part = np.ascontiguousarray(hole[box])
    photo = np.ascontiguousarray(rgb[box])
    fill = np.ascontiguousarray(filled[box])
    grid = _Grid(part.shape, s.max_pixels)
    small = grid.shrink_mask(part)
    want = s.target * expected_energy(photo, part, s.energy_sigma, grid, small)
    have = _blur(grid.down(_gradient(fill)), s.energy_sigma * grid.scale)
    ratio = np.clip(want / np.maximum(have, 1e-3), 0.0, s.max_gain).astype(np.float32)
    gain = grid.up(_blur(ratio, s.gain_sigma * grid.scale))
    if smooth is None:
        shrunk = np.ascontiguousarray(grid.down(photo))
        telea = cv2.inpaint(shrunk, small.view(np.uint8), 3, cv2.INPAINT_TELEA)
        base_fill = grid.up(np.asarray(telea, np.uint8))
    else:
        base_fill = smooth[box]
    low = _blur(fill.astype(np.float32), s.split_sigma)[part]
    inside = cv2.distanceTransform(np.pad(part, 1).view(np.uint8), cv2.DIST_L2, 3)[1:-1, 1:-1]
    seam = np.exp(-(inside[part] - 1.0) / s.seam_reach).astype(np.float32)[:, None]
    detail = fill[part].astype(np.float32) - low
    result = low + seam * (base_fill[part].astype(np.float32) - low) + gain[part][:, None] * detail
    out[box][part] = np.clip(result + 0.5, 0, 255).astype(np.uint8)
    return out


def _box(mask: NDArray[np.bool_], margin: int) -> tuple[int, int, int, int]:
    """The bounding box (y0, y1, x0, x1) of ``mask``, grown by ``margin`` and clipped."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    h, w = mask.shape
    return (
        max(int(rows[0]) - margin, 0),
        min(int(rows[-1]) + 1 + margin, h),
        max(int(cols[0]) - margin, 0),
        min(int(cols[-1]) + 1 + margin, w),
    )


class _Grid:
    """The analysis grid: smooth maps are computed at most ``max_pixels`` large."""

    def __init__(self, shape: tuple[int, int], max_pixels: int) -> None:
        h, w = shape
        self.shape = shape
        self.scale = min(1.0, (max_pixels / float(h * w)) ** 0.5)
        self.size = (max(1, round(w * self.scale)), max(1, round(h * self.scale)))

    def down(self, img: NDArray[Any]) -> NDArray[Any]:
        if self.scale >= 1.0:
            return img
        return np.asarray(cv2.resize(img, self.size, interpolation=cv2.INTER_AREA), img.dtype)

    def up(self, img: NDArray[Any]) -> NDArray[Any]:
        if self.scale >= 1.0:
            return img
        h, w = self.shape
        return np.asarray(cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR), img.dtype)

    def shrink_mask(self, mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
        """``mask`` on the grid: every grid pixel that ``mask`` touches."""
        if self.scale >= 1.0:
            return mask
        return np.ascontiguousarray(self.down(mask.astype(np.float32)) > 0.0)

"""A fast, deterministic stand-in for the erase model: fill the mask with its surroundings' colour.

The emulator uses it by default so that tests and benchmarks measure the protocol, not an
inpainting algorithm. The fill is the mean colour of a thin ring just outside the (dilated)
mask, plus a small seeded dither so that results with different seeds differ, as the real
model's do. Pixels outside the dilated mask are returned unchanged.

Example:
    >>> import numpy as np
    >>> rgb = np.full((8, 8, 3), 200, np.uint8); rgb[3:5, 3:5] = 0
    >>> mask = np.zeros((8, 8), bool); mask[3:5, 3:5] = True
    >>> out = echo_fill(rgb, mask, dilate_pixels=0, seed=1)
    >>> bool((abs(out[3:5, 3:5].astype(int) - 200) <= DITHER).all()), bool((out[0] == 200).all())
    (True, True)
"""

from __future__ import annotations

from typing import Final

import cv2
import numpy as np
from numpy.typing import NDArray

from prefect_flux_erase.engine.regions import dilate

#: Largest per-channel deviation of the seeded dither from the ring's mean colour.
DITHER: Final = 2
#: Width of the ring, in pixels, whose mean colour fills the hole.
RING_PIXELS: Final = 3
_NEUTRAL: Final = 127


def echo_fill(
    rgb: NDArray[np.uint8], mask: NDArray[np.bool_], dilate_pixels: int, seed: int
) -> NDArray[np.uint8]:
    """Fill the dilated mask with the mean colour of its border ring, dithered by ``seed``.

    Args:
        rgb: The image, uint8 H x W x 3.
        mask: True where the object to erase is, H x W.
        dilate_pixels: Grow the mask by this many pixels first (the API's ``dilatePixels``).
        seed: Chooses the dither, so equal seeds give equal outputs.

    Returns:
        A new uint8 H x W x 3 array; pixels outside the dilated mask are unchanged.

    Example:
        >>> import numpy as np
        >>> rgb = np.zeros((6, 6, 3), np.uint8); mask = np.zeros((6, 6), bool)
        >>> bool((echo_fill(rgb, mask, 10, 0) == rgb).all())
        True
    """
    out = rgb.copy()
    x, y, width, height = cv2.boundingRect(mask.view(np.uint8))
    if width == 0:
        return out
    # Work on the mask's bounding box grown by the dilation and the ring: cost follows the mask.
    pad = max(dilate_pixels, 0) + RING_PIXELS + 1
    top, bottom = max(y - pad, 0), min(y + height + pad, mask.shape[0])
    left, right = max(x - pad, 0), min(x + width + pad, mask.shape[1])
    crop = np.ascontiguousarray(out[top:bottom, left:right])
    hole = dilate(mask[top:bottom, left:right], dilate_pixels)
    ring = dilate(hole, RING_PIXELS) & ~hole
    if ring.any():
        colour = np.asarray(cv2.mean(crop, mask=ring.view(np.uint8))[:3])
    else:
        colour = np.full(3, _NEUTRAL, dtype=np.float64)  # the mask covers the whole image
    # uint8 arithmetic keeps this cheap: base in [0, 255 - 2*DITHER], plus noise in [0, 2*DITHER].
    base = np.clip(np.rint(colour) - DITHER, 0, 255 - 2 * DITHER).astype(np.uint8)
    fill = _noise(seed, crop.shape) + base
    cv2.copyTo(fill, hole.view(np.uint8), crop)
    out[top:bottom, left:right] = crop
    return out


_NOISE_TABLE: list[NDArray[np.uint8]] = []


def _noise(seed: int, shape: tuple[int, ...]) -> NDArray[np.uint8]:
    """Dither in [0, 2*DITHER]: a window into one fixed random table, placed by ``seed``.

    Seeding a generator per call costs more than the whole fill of a small mask; a window at a
    seed-chosen offset is as deterministic and as different across seeds.
    """
    if not _NOISE_TABLE:
        table = np.random.default_rng(0).integers(0, 2 * DITHER + 1, 1 << 20, dtype=np.uint8)
        _NOISE_TABLE.append(table)
    table = _NOISE_TABLE[0]
    size = int(np.prod(shape))
    start = (seed * 2654435761) % table.size
    if start + size <= table.size:
        return table[start : start + size].reshape(shape)
    return np.resize(np.roll(table, -start), size).reshape(shape)

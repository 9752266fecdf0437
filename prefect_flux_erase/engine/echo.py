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

#: Largest per-channel deviation of the seeded dither from the ring's mean colour.
DITHER: Final = 2
#: Width of the ring, in pixels, whose mean colour fills the hole.
RING_PIXELS: Final = 3
_NEUTRAL: Final = 127


def dilate_mask(mask: NDArray[np.bool_], pixels: int) -> NDArray[np.bool_]:
    """Grow a boolean mask outward by ``pixels`` (a disc, as ``dilatePixels`` describes).

    Example:
        >>> import numpy as np
        >>> m = np.zeros((5, 5), bool); m[2, 2] = True
        >>> int(dilate_mask(m, 1).sum())
        5
    """
    if pixels <= 0 or not mask.any():
        return mask.copy()
    size = 2 * pixels + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    grown = cv2.dilate(mask.astype(np.uint8), kernel)
    return np.asarray(grown.astype(bool))


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
    hole = dilate_mask(mask, dilate_pixels)
    count = int(hole.sum())
    if count == 0:
        return out
    ring = dilate_mask(hole, RING_PIXELS) & ~hole
    # A mask covering the whole image leaves nothing to borrow from: use a neutral grey.
    colour = rgb[ring].mean(axis=0) if ring.any() else np.full(3, _NEUTRAL, dtype=np.float64)
    rng = np.random.default_rng(seed & 0xFFFFFFFF)
    dither = rng.integers(-DITHER, DITHER + 1, size=(count, 3))
    out[hole] = np.clip(np.rint(colour) + dither, 0, 255).astype(np.uint8)
    return out

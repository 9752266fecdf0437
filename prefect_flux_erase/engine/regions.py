"""Where to erase: mask dilation and the crops that bound the engine's work.

The engine never touches the whole frame more than it must: it finds the mask's connected
components, gives each a context margin, merges components whose margins meet into one crop,
and dilates the mask inside each crop only. Cost then follows the mask, not the image size.

Example:
    >>> import numpy as np
    >>> mask = np.zeros((100, 100), bool); mask[10, 10] = True; mask[90, 90] = True
    >>> [c.box for c in plan_crops(mask, dilate_pixels=2, margin_for=lambda r: 5)]
    [(3, 18, 3, 18), (83, 98, 83, 98)]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
from numpy.typing import NDArray

#: The model's ``dilatePixels`` range.
MIN_DILATE_PIXELS = 0
MAX_DILATE_PIXELS = 50


def check_dilate_pixels(dilate_pixels: int) -> int:
    """Return ``dilate_pixels`` if it is an int in the model's range 0–50, else raise ValueError.

    Example:
        >>> check_dilate_pixels(10)
        10
    """
    if isinstance(dilate_pixels, bool) or not isinstance(dilate_pixels, int | np.integer):
        raise ValueError(f"dilate_pixels must be an integer from 0 to 50, got {dilate_pixels!r}")
    if not MIN_DILATE_PIXELS <= dilate_pixels <= MAX_DILATE_PIXELS:
        raise ValueError(
            f"dilate_pixels must be from {MIN_DILATE_PIXELS} to {MAX_DILATE_PIXELS}, "
            f"got {dilate_pixels}"
        )
    return int(dilate_pixels)


@lru_cache(maxsize=64)
def disc_kernel(radius: int) -> NDArray[np.uint8]:
    """The Euclidean disc of ``radius`` pixels (dx² + dy² ≤ radius²) as a uint8 kernel.

    OpenCV's ``MORPH_ELLIPSE`` is not this disc (its rows are rounded differently), and the
    model's ``dilatePixels`` means "grow by exactly N pixels", so the disc is built by hand.

    Example:
        >>> disc_kernel(1).tolist()
        [[0, 1, 0], [1, 1, 1], [0, 1, 0]]
    """
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    kernel: NDArray[np.uint8] = np.asarray((yy * yy + xx * xx) <= radius * radius, np.uint8)
    kernel.setflags(write=False)
    return kernel


def dilate(mask: NDArray[np.bool_], dilate_pixels: int) -> NDArray[np.bool_]:
    """Grow ``mask`` outward by exactly ``dilate_pixels`` (Euclidean disc); a new array.

    Example:
        >>> m = np.zeros((7, 7), bool); m[3, 3] = True
        >>> int(dilate(m, 2).sum())  # the 13 pixels of the radius-2 disc
        13
    """
    if dilate_pixels <= 0:
        return mask.copy()
    grown = cv2.dilate(mask.view(np.uint8), disc_kernel(dilate_pixels))
    return np.asarray(grown, dtype=bool)


@dataclass(frozen=True)
class Crop:
    """One region of work: ``box`` = (y0, y1, x0, x1), half-open, in image coordinates.

    ``hole`` is the dilated mask inside the box (True = erase).

    Example:
        >>> c = Crop(box=(0, 2, 0, 3), hole=np.zeros((2, 3), bool))
        >>> c.shape
        (2, 3)
    """

    box: tuple[int, int, int, int]
    hole: NDArray[np.bool_]

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of the box."""
        return self.box[1] - self.box[0], self.box[3] - self.box[2]


def _components(mask: NDArray[np.bool_]) -> tuple[NDArray[np.int64], int, int]:
    """Bounding boxes (y0, y1, x0, x1) of the mask's 8-connected components.

    Only the mask's bounding box is labelled, so a small mask in a large frame stays cheap.
    """
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    sub = np.ascontiguousarray(mask[y0:y1, x0:x1]).view(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(sub, connectivity=8)
    st = stats[1:count].astype(np.int64)
    boxes = np.stack(
        [
            st[:, cv2.CC_STAT_TOP],
            st[:, cv2.CC_STAT_TOP] + st[:, cv2.CC_STAT_HEIGHT],
            st[:, cv2.CC_STAT_LEFT],
            st[:, cv2.CC_STAT_LEFT] + st[:, cv2.CC_STAT_WIDTH],
        ],
        axis=1,
    )
    return boxes, y0, x0


def _merge_boxes(boxes: NDArray[np.int64]) -> list[tuple[int, int, int, int]]:
    """Merge overlapping half-open boxes until none overlap (a fixed point)."""
    merged = [tuple(int(v) for v in b) for b in boxes[np.argsort(boxes[:, 0], kind="stable")]]
    changed = True
    while changed:
        changed = False
        out: list[tuple[int, ...]] = []
        for box in merged:
            for i, other in enumerate(out):
                overlap = box[0] < other[1] and other[0] < box[1]
                if overlap and box[2] < other[3] and other[2] < box[3]:
                    out[i] = (
                        min(box[0], other[0]),
                        max(box[1], other[1]),
                        min(box[2], other[2]),
                        max(box[3], other[3]),
                    )
                    changed = True
                    break
            else:
                out.append(box)
        merged = out
    return [(b[0], b[1], b[2], b[3]) for b in merged]


def plan_crops(
    mask: NDArray[np.bool_],
    dilate_pixels: int,
    margin_for: Callable[[float], int],
) -> list[Crop]:
    """Split the work into crops: components grown by dilation + context, merged where they meet.

    ``margin_for(radius)`` gives the context margin for a component whose hole (after dilation)
    is at most ``radius`` pixels thick (half its shorter side). The returned crops do not
    overlap, and each holds every dilated-mask pixel near it, so filling them one by one is the
    same as filling the whole frame.

    Example:
        >>> m = np.zeros((50, 50), bool); m[20:22, 20:22] = True
        >>> crop = plan_crops(m, 1, lambda r: 3)[0]
        >>> crop.box, int(crop.hole.sum())
        ((16, 26, 16, 26), 12)
    """
    if not mask.any():
        return []
    h, w = mask.shape
    boxes, oy, ox = _components(mask)
    radius = np.minimum(boxes[:, 1] - boxes[:, 0], boxes[:, 3] - boxes[:, 2]) / 2 + dilate_pixels
    grow = np.array([dilate_pixels + margin_for(float(r)) for r in radius], np.int64)
    grown = boxes + np.array([oy, oy, ox, ox], np.int64)
    grown[:, 0] -= grow
    grown[:, 2] -= grow
    grown[:, 1] += grow
    grown[:, 3] += grow
    crops = []
    for y0, y1, x0, x1 in _merge_boxes(grown):
        box = (max(y0, 0), min(y1, h), max(x0, 0), min(x1, w))
        hole = dilate(np.ascontiguousarray(mask[box[0] : box[1], box[2] : box[3]]), dilate_pixels)
        crops.append(Crop(box=box, hole=hole))
    return crops

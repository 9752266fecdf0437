"""Carry a working-resolution patch field back to full resolution, copying full-resolution pixels.

When a crop is shrunk to bound the work, filling at the small size and upscaling the result
would blur the photo's grain away. Instead every full-resolution hole pixel looks up the
offsets (source - target) of the nearby working-resolution patches, scales them up, and averages
the full-resolution source pixels they point to. Where neighbouring patches agree on the offset
(most of the hole) this is an exact copy of real background; only at seams between patches do
several sources blend.

Example:
    >>> import numpy as np
    >>> rgb = np.zeros((8, 8, 3), np.uint8); rgb[:, :4] = 200
    >>> hole = np.zeros((8, 8), bool); hole[2:4, 6:8] = True
    >>> field = np.full((4, 4, 2), -1, np.int32); field[1, 3] = (1, 1)  # offset (0, -2) x 2
    >>> weight = np.ones((4, 4), np.float32)
    >>> out = transfer(rgb, hole, field, weight, 1)
    >>> out[2:4, 6:8, 0].tolist()
    [[200, 200], [200, 200]]
"""

from __future__ import annotations

import cv2
import numpy as np
from numba import njit
from numpy.typing import NDArray


@njit(cache=True, nogil=True)
def _transfer(
    rgb: NDArray[np.uint8],
    hole: NDArray[np.bool_],
    blocked: NDArray[np.bool_],
    field: NDArray[np.int32],
    weight: NDArray[np.float32],
    k: int,
    out: NDArray[np.uint8],
    done: NDArray[np.bool_],
) -> None:
    fh, fw = hole.shape
    h, w = field.shape[:2]
    sy = fh / h
    sx = fw / w
    for yy in range(fh):
        for xx in range(fw):
            if not hole[yy, xx]:
                continue
            cy = int((yy + 0.5) / sy)
            cx = int((xx + 0.5) / sx)
            acc0 = 0.0
            acc1 = 0.0
            acc2 = 0.0
            wsum = 0.0
            for dy in range(-k, k + 1):
                for dx in range(-k, k + 1):
                    py = cy + dy
                    px = cx + dx
                    if py < 0 or py >= h or px < 0 or px >= w or field[py, px, 0] < 0:
                        continue
                    srcy = yy + int(np.floor((field[py, px, 0] - py) * sy + 0.5))
                    srcx = xx + int(np.floor((field[py, px, 1] - px) * sx + 0.5))
                    if srcy < 0 or srcy >= fh or srcx < 0 or srcx >= fw or blocked[srcy, srcx]:
                        continue
                    wt = weight[py, px] + 1e-6
                    acc0 += wt * rgb[srcy, srcx, 0]
                    acc1 += wt * rgb[srcy, srcx, 1]
                    acc2 += wt * rgb[srcy, srcx, 2]
                    wsum += wt
            if wsum > 0.0:
                out[yy, xx, 0] = np.uint8(min(255.0, acc0 / wsum + 0.5))
                out[yy, xx, 1] = np.uint8(min(255.0, acc1 / wsum + 0.5))
                out[yy, xx, 2] = np.uint8(min(255.0, acc2 / wsum + 0.5))
                done[yy, xx] = True


def transfer(
    rgb: NDArray[np.uint8],
    hole: NDArray[np.bool_],
    field: NDArray[np.int32],
    weight: NDArray[np.float32],
    window: int,
    fallback: NDArray[np.uint8] | None = None,
    unknown: NDArray[np.bool_] | None = None,
) -> NDArray[np.uint8]:
    """Fill ``hole`` of full-resolution ``rgb`` from the working-resolution ``field``.

    ``field`` (h, w, 2) maps working target centres to source centres (-1: none) and ``weight``
    (h, w) says how much each is trusted; ``window`` is how many working pixels around a hole
    pixel's own centre are consulted. Pixels that no patch reaches take ``fallback`` (an upscaled
    working-resolution fill), or keep their value when none is given. Pixels in ``unknown`` are
    never copied from.

    Example:
        >>> rgb = np.full((4, 4, 3), 7, np.uint8); hole = np.zeros((4, 4), bool)
        >>> field = np.full((2, 2, 2), -1, np.int32)
        >>> int(transfer(rgb, hole, field, np.ones((2, 2), np.float32), 1).sum())
        336
    """
    out = rgb.copy()
    done = np.zeros(hole.shape, bool)
    blocked = hole if unknown is None else hole | unknown
    _transfer(np.ascontiguousarray(rgb), hole, blocked, field, weight, window, out, done)
    if fallback is not None:
        gap = hole & ~done
        out[gap] = fallback[gap]
    return out


def recover_field(
    filled: NDArray[np.uint8],
    hole: NDArray[np.bool_],
    context: NDArray[np.bool_],
    r: int,
    seed: int,
    sweeps: int = 4,
) -> tuple[NDArray[np.int32], NDArray[np.float32]]:
    """The patch field of an already filled working crop: where each hole patch came from.

    A fill that returns only pixels (pypatchmatch does) can still be carried to full resolution:
    a PatchMatch search of the filled crop against its known ``context`` finds, for every patch
    touching the hole, the source patch it most resembles. Returns the field (-1 where none) and
    per-target trust weights for :func:`transfer`.

    Example:
        >>> img = np.zeros((24, 24, 3), np.uint8); img[:, ::3] = 200
        >>> hole = np.zeros((24, 24), bool); hole[10:14, 10:14] = True
        >>> field, weight = recover_field(img, hole, ~hole, 2, 0)
        >>> bool((field[12, 12] >= 0).all()), int((field[12, 12, 1] - 12) % 3)
        (True, 0)
    """
    from prefect_flux_erase.engine import nnf

    h, w = hole.shape
    interior = np.zeros((h, w), bool)
    interior[r : h - r, r : w - r] = True
    k = np.ones((2 * r + 1, 2 * r + 1), np.uint8)
    near_hole = np.asarray(cv2.dilate(hole.view(np.uint8), k), dtype=bool)
    valid = context & interior & ~near_hole
    field = np.full((h, w, 2), -1, np.int32)
    weight = np.zeros((h, w), np.float32)
    if not valid.any():
        return field, weight
    ty, tx = (a.astype(np.int32) for a in np.nonzero(near_hole & interior))
    sy, sx = (a.astype(np.int32) for a in np.nonzero(valid))
    img = np.ascontiguousarray(filled, dtype=np.float32)
    dist = np.zeros((h, w), np.float32)
    ones = np.ones((h, w), np.float32)
    nnf.search(img, ones, ty, tx, valid, sy, sx, field, dist, r, sweeps, max(h, w), seed, 0.0)
    d = dist[ty, tx]
    scale = max(float(np.median(d)), 1e-3)
    weight[ty, tx] = np.exp(-d / (2.0 * scale)) + np.float32(1e-12)
    return field, weight

"""Nearest-neighbour-field kernels of the patch fill (PatchMatch search and patch voting).

Barnes et al.'s PatchMatch (SIGGRAPH 2009) finds, for every patch that touches the hole, a
similar fully known patch nearby; Wexler et al.'s voting (PAMI 2007) then rebuilds each hole
pixel from the patches that cover it. Both run in Numba: the loops are per pixel and
branchy, which NumPy cannot vectorise. ``cache=True`` keeps the compiled code on disk, so only
the first use after install pays the JIT compile.

All arrays are C-contiguous: the image is float32 (H, W, 3); the field ``nnf`` is int32 (H, W, 2)
holding each target centre's source centre (-1 where there is none); ``dist`` is float32 (H, W).
The random generator is seeded per call, so a fill is a pure function of its inputs and seed.

Example:
    >>> import numpy as np
    >>> img = np.zeros((9, 9, 3), np.float32); conf = np.ones((9, 9), np.float32)
    >>> float(patch_distance(img, conf, 4, 4, 4, 4, 1, np.inf))
    0.0
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray


@njit(cache=True, nogil=True, inline="always")
def patch_distance(
    img: NDArray[np.float32],
    conf: NDArray[np.float32],
    py: int,
    px: int,
    qy: int,
    qx: int,
    r: int,
    cutoff: float,
) -> float:
    """Sum of squared differences between the patches centred at (py, px) and (qy, qx).

    Stops early once the sum passes ``cutoff``: a candidate that is already worse than the
    current best needs no exact figure, and most candidates are such.

    Example:
        >>> import numpy as np
        >>> img = np.zeros((5, 5, 3), np.float32); img[1, 1] = 2.0
        >>> conf = np.ones((5, 5), np.float32)
        >>> float(patch_distance(img, conf, 1, 1, 3, 3, 1, np.inf))
        12.0
    """
    d = 0.0
    nc = img.shape[2]
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            e = 0.0
            for c in range(nc):
                t = img[py + dy, px + dx, c] - img[qy + dy, qx + dx, c]
                e += t * t
            d += conf[py + dy, px + dx] * e
        if d > cutoff:
            return d
    return d


@njit(cache=True, nogil=True)
def search(
    img: NDArray[np.float32],
    conf: NDArray[np.float32],
    ty: NDArray[np.int32],
    tx: NDArray[np.int32],
    valid: NDArray[np.bool_],
    sy: NDArray[np.int32],
    sx: NDArray[np.int32],
    nnf: NDArray[np.int32],
    dist: NDArray[np.float32],
    r: int,
    iterations: int,
    max_radius: int,
    seed: int,
    proximity: float,
) -> None:
    """Improve ``nnf``/``dist`` in place for the target centres (ty, tx) by PatchMatch.

    Targets without a valid source get a random one from the source list (sy, sx) first; then
    each iteration scans the targets (alternately forwards and backwards), tries the shifted
    matches of its two already-visited neighbours (propagation) and random candidates around its
    best match at halving radii (random search).

    Example:
        >>> import numpy as np
        >>> img = np.random.default_rng(0).random((12, 12, 3)).astype(np.float32)
        >>> img[2:5, 4:7] = img[7:10, 6:9]  # the patch at (3, 5) repeats the one at (8, 7)
        >>> valid = np.zeros((12, 12), bool); valid[8, 7] = True
        >>> sy, sx = (a.astype(np.int32) for a in np.nonzero(valid))
        >>> nnf = np.full((12, 12, 2), -1, np.int32); dist = np.zeros((12, 12), np.float32)
        >>> ty, tx = np.array([3], np.int32), np.array([5], np.int32)
        >>> conf = np.ones((12, 12), np.float32)
        >>> search(img, conf, ty, tx, valid, sy, sx, nnf, dist, 1, 4, 2, 0, 0.0)
        >>> nnf[3, 5].tolist(), float(dist[3, 5])
        ([8, 7], 0.0)
    """
    np.random.seed(seed)
    h, w = valid.shape
    n = ty.shape[0]
    ns = sy.shape[0]
    for i in range(n):
        y = ty[i]
        x = tx[i]
        qy = nnf[y, x, 0]
        qx = nnf[y, x, 1]
        if qy < 0 or not valid[qy, qx]:
            k = np.random.randint(0, ns)
            qy = sy[k]
            qx = sx[k]
            nnf[y, x, 0] = qy
            nnf[y, x, 1] = qx
        pen = proximity * ((qy - y) * (qy - y) + (qx - x) * (qx - x))
        dist[y, x] = pen + patch_distance(img, conf, y, x, qy, qx, r, np.inf)
    for it in range(iterations):
        step = 1 if it % 2 == 0 else -1
        start = 0 if step == 1 else n - 1
        for j in range(n):
            i = start + step * j
            y = ty[i]
            x = tx[i]
            by = nnf[y, x, 0]
            bx = nnf[y, x, 1]
            bd = dist[y, x]
            for k in range(2):
                ny = y - step if k == 0 else y
                nx = x if k == 0 else x - step
                if ny < 0 or ny >= h or nx < 0 or nx >= w or nnf[ny, nx, 0] < 0:
                    continue
                cy = nnf[ny, nx, 0] + (y - ny)
                cx = nnf[ny, nx, 1] + (x - nx)
                if cy < 0 or cy >= h or cx < 0 or cx >= w or not valid[cy, cx]:
                    continue
                if cy == by and cx == bx:
                    continue
                pen = proximity * ((cy - y) * (cy - y) + (cx - x) * (cx - x))
                if pen >= bd:
                    continue
                d = pen + patch_distance(img, conf, y, x, cy, cx, r, bd - pen)
                if d < bd:
                    by, bx, bd = cy, cx, d
            rad = max_radius
            while rad >= 1:
                cy = by + np.random.randint(-rad, rad + 1)
                cx = bx + np.random.randint(-rad, rad + 1)
                if 0 <= cy < h and 0 <= cx < w and valid[cy, cx]:
                    pen = proximity * ((cy - y) * (cy - y) + (cx - x) * (cx - x))
                    d = pen + patch_distance(img, conf, y, x, cy, cx, r, bd - pen)
                    if d < bd:
                        by, bx, bd = cy, cx, d
                rad //= 2
            nnf[y, x, 0] = by
            nnf[y, x, 1] = bx
            dist[y, x] = bd


@njit(cache=True, nogil=True)
def vote(
    img: NDArray[np.float32],
    hole: NDArray[np.bool_],
    ty: NDArray[np.int32],
    tx: NDArray[np.int32],
    nnf: NDArray[np.int32],
    weight: NDArray[np.float32],
    r: int,
    sharp: bool,
) -> None:
    """Rebuild every hole pixel of ``img`` in place from the patches that cover it.

    Each target centre (ty, tx) with source ``nnf`` and weight ``weight[y, x]`` offers its
    source patch's pixels to the hole pixels its own patch covers. A pixel becomes the weighted
    mean of its offers, or, when ``sharp``, the offer of its best-weighted patch: averaging
    slightly misaligned patches blurs texture, which the last round must not do.

    Example:
        >>> import numpy as np
        >>> img = np.zeros((5, 5, 3), np.float32); img[1, 1] = 9.0
        >>> hole = np.zeros((5, 5), bool); hole[2, 2] = True
        >>> nnf = np.full((5, 5, 2), -1, np.int32); nnf[2, 2] = (1, 1)
        >>> weight = np.ones((5, 5), np.float32)
        >>> t = np.array([2], np.int32)
        >>> vote(img, hole, t, t, nnf, weight, 1, False)
        >>> img[2, 2].tolist()
        [9.0, 9.0, 9.0]
    """
    h, w = hole.shape
    nc = img.shape[2]
    acc = np.zeros((h, w, nc), np.float64)
    wsum = np.zeros((h, w), np.float64)
    for i in range(ty.shape[0]):
        y = ty[i]
        x = tx[i]
        qy = nnf[y, x, 0]
        qx = nnf[y, x, 1]
        if qy < 0:
            continue
        wt = weight[y, x]
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                yy = y + dy
                xx = x + dx
                if not hole[yy, xx]:
                    continue
                if sharp:
                    if wt > wsum[yy, xx]:
                        wsum[yy, xx] = wt
                        for c in range(nc):
                            acc[yy, xx, c] = img[qy + dy, qx + dx, c]
                else:
                    for c in range(nc):
                        acc[yy, xx, c] += wt * img[qy + dy, qx + dx, c]
                    wsum[yy, xx] += wt
    for y in range(h):
        for x in range(w):
            if hole[y, x] and wsum[y, x] > 0:
                norm = 1.0 if sharp else wsum[y, x]
                for c in range(nc):
                    img[y, x, c] = acc[y, x, c] / norm

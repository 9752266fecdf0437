"""Coarse-to-fine patch fill in Numba: the engine's back end where pypatchmatch is unavailable.

pypatchmatch ships wheels for x86-64 Linux, arm64 macOS and x86-64 Windows only; elsewhere
(Linux on ARM, for one) this fill keeps ``--backend local`` working with no compiler. It is the
classic expectation-maximisation scheme (Wexler et al. 2007) on a pyramid whose coarsest level
makes the hole a few pixels wide: the hole starts as a smooth (Telea) fill; at each finer level
the nearest-neighbour field from the coarser level is upsampled and used to rebuild the hole
from that level's own pixels, then refined by PatchMatch (:mod:`~prefect_flux_erase.engine.nnf`)
and patch voting. Texture channels keep grainy and flat sources apart at coarse levels, and a
small distance penalty prefers nearby sources. Its fills are softer than pypatchmatch's.

Example:
    >>> import numpy as np
    >>> rgb = np.zeros((64, 64, 3), np.uint8); rgb[:, ::4] = 255  # vertical stripes
    >>> hole = np.zeros((64, 64), bool); hole[24:40, 24:40] = True
    >>> out = fill(rgb, hole, seed=0)
    >>> bool((out[~hole] == rgb[~hole]).all()), bool(out[hole].std() > 60)
    (True, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from prefect_flux_erase.engine import nnf as kernels
from prefect_flux_erase.engine.transfer import transfer
from prefect_flux_erase.engine.working import FillSettings, box_dilate, hole_radius, prepare


def _halve(img: NDArray[np.float32]) -> NDArray[np.float32]:
    """2 x 2 block mean; odd sizes are edge-padded, so fine (y, x) maps to coarse (y//2, x//2)."""
    h, w = img.shape[:2]
    pad = ((0, h % 2), (0, w % 2)) + ((0, 0),) * (img.ndim - 2)
    p = np.pad(img, pad, mode="edge")
    out = (p[0::2, 0::2] + p[1::2, 0::2] + p[0::2, 1::2] + p[1::2, 1::2]) * 0.25
    return np.ascontiguousarray(out, dtype=np.float32)


def _halve_any(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    h, w = mask.shape
    p = np.pad(mask, ((0, h % 2), (0, w % 2)), mode="edge")
    return np.ascontiguousarray(p[0::2, 0::2] | p[1::2, 0::2] | p[0::2, 1::2] | p[1::2, 1::2])


@dataclass
class _Level:
    img: NDArray[np.float32]
    hole: NDArray[np.bool_]
    context: NDArray[np.bool_]
    unknown: NDArray[np.bool_]


def _pyramid(
    img: NDArray[np.float32],
    hole: NDArray[np.bool_],
    ctx: NDArray[np.bool_],
    unknown: NDArray[np.bool_],
    s: FillSettings,
) -> list[_Level]:
    levels = [_Level(img, hole, ctx, unknown)]
    radius = hole_radius(hole)
    min_side = 4 * (2 * s.patch_radius + 1)
    while radius > s.coarse_hole_radius:
        top = levels[-1]
        if min(top.hole.shape) // 2 < min_side:
            break
        levels.append(
            _Level(
                _halve(top.img),
                _halve_any(top.hole),
                _halve_any(top.context),
                _halve_any(top.unknown) & ~_halve_any(top.hole),
            )
        )
        radius /= 2
    return levels


def _features(rgb: NDArray[np.float32], weight: float) -> NDArray[np.float32]:
    """RGB plus two texture channels: the local mean of |d/dx| and |d/dy| of the grey image.

    Shrinking a pyramid level averages fine texture away, so at coarse levels a grainy region and
    a flat one of the same mean colour look alike and the fill drifts to flat sources. The
    texture channels survive the averaging and keep them apart (Newson et al., 2014).
    """
    grey = rgb.mean(axis=2, dtype=np.float32)
    gx = np.abs(cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)) * (weight / 4.0)
    gy = np.abs(cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)) * (weight / 4.0)
    tex = cv2.blur(np.stack([gx, gy], axis=2), (5, 5))
    return np.ascontiguousarray(np.concatenate([rgb, tex], axis=2), dtype=np.float32)


def _smooth_fill(img: NDArray[np.float32], hole: NDArray[np.bool_]) -> NDArray[np.float32]:
    """Telea fill of the RGB channels; other channels take their known mean."""
    u8 = np.clip(img[:, :, :3] + 0.5, 0, 255).astype(np.uint8)
    out = img.copy()
    out[:, :, :3] = cv2.inpaint(u8, hole.view(np.uint8), 3, cv2.INPAINT_TELEA)
    if img.shape[2] > 3:
        out[hole, 3:] = img[~hole, 3:].mean(axis=0)
    return out


def _level_seed(seed: int, level: int, rnd: int) -> int:
    # Different streams per level and round, all derived from the caller's seed.
    return (seed * 1_000_003 + level * 7919 + rnd * 104_729) % (2**31 - 1)


_Solved = tuple[_Level, NDArray[np.int32], NDArray[np.float32]]


def _solve(levels: list[_Level], seed: int, s: FillSettings) -> _Solved | None:
    """Run EM from the coarsest level to the finest: the finest level, its field and weights."""
    r = s.patch_radius
    nnf: NDArray[np.int32] | None = None
    prev: _Level | None = None
    depth = len(levels)
    for li in range(depth - 1, -1, -1):
        lv = levels[li]
        h, w = lv.hole.shape
        interior = np.zeros((h, w), bool)
        interior[r : h - r, r : w - r] = True
        valid = lv.context & interior & ~box_dilate(lv.hole | lv.unknown, r)
        targets = box_dilate(lv.hole, r) & interior
        if not valid.any() or not targets.any():
            return None
        if prev is None:
            lv.img = _smooth_fill(lv.img, lv.hole | lv.unknown)
        else:
            up = cv2.resize(prev.img, (w, h), interpolation=cv2.INTER_LINEAR)
            lv.img[lv.hole] = up[lv.hole]
        field = np.full((h, w, 2), -1, np.int32)
        if nnf is not None:
            yy, xx = np.nonzero(targets)
            cy, cx = yy // 2, xx // 2
            src = nnf[cy, cx]
            ok = src[:, 0] >= 0
            field[yy[ok], xx[ok], 0] = src[ok, 0] * 2 + (yy[ok] % 2)
            field[yy[ok], xx[ok], 1] = src[ok, 1] * 2 + (xx[ok] % 2)
            np.clip(field, -1, None, out=field)
            field[..., 0] = np.minimum(field[..., 0], h - 1)
            field[..., 1] = np.minimum(field[..., 1], w - 1)
            fy, fx = np.maximum(field[..., 0], 0), np.maximum(field[..., 1], 0)
            bad = (field[..., 0] >= 0) & ~valid[fy, fx]
            field[bad] = -1
            # Rebuild the hole from this level's own pixels through the upsampled field: the
            # bilinear upsample above is blurred, and matching against blur finds flat sources.
            tyy, txx = (a.astype(np.int32) for a in np.nonzero(targets))
            ones = np.ones((h, w), np.float32)
            kernels.vote(lv.img, lv.hole, tyy, txx, field, ones, r, False)
        ty, tx = (a.astype(np.int32) for a in np.nonzero(targets))
        sy, sx = (a.astype(np.int32) for a in np.nonzero(valid))
        dist = np.zeros((h, w), np.float32)
        t = (li / (depth - 1)) if depth > 1 else 0.0
        rounds = round(s.fine_rounds + (s.coarse_rounds - s.fine_rounds) * t)
        weight = np.zeros((h, w), np.float32)
        conf = np.where(lv.hole, np.float32(s.hole_confidence), np.float32(1.0))
        conf[lv.unknown] = 0.0
        for rnd in range(rounds):
            first = rnd == 0 and nnf is None
            sweeps = s.sweeps + (2 if first else 0)
            # The first guess inside the coarsest hole is a smear: match on the known ring.
            cf = np.where(lv.hole, np.float32(0.05), conf) if first else conf
            kernels.search(
                lv.img,
                np.ascontiguousarray(cf, np.float32),
                ty,
                tx,
                valid,
                sy,
                sx,
                field,
                dist,
                r,
                sweeps,
                max(h, w),
                _level_seed(seed, li, rnd),
                s.proximity,
            )
            d = dist[ty, tx]
            scale = max(float(np.percentile(d, s.weight_percentile)), 1e-3)
            weight[ty, tx] = np.exp(-d / (2.0 * scale)) + np.float32(1e-12)
            sharp = s.sharp_final and li == 0 and rnd == rounds - 1
            kernels.vote(lv.img, lv.hole, ty, tx, field, weight, r, sharp)
        nnf = field
        prev = lv
    assert prev is not None
    assert nnf is not None
    return prev, nnf, weight


def fill(
    rgb: NDArray[np.uint8],
    hole: NDArray[np.bool_],
    *,
    seed: int = 0,
    settings: FillSettings | None = None,
    radius: float | None = None,
    unknown: NDArray[np.bool_] | None = None,
) -> NDArray[np.uint8]:
    """Fill ``hole`` in the crop ``rgb`` with patches of its surroundings; other pixels unchanged.

    ``radius`` is :func:`hole_radius` of ``hole`` when the caller already knows it. Pixels in
    ``unknown`` are neither filled nor copied from (the caller fills them another way).

    Example:
        >>> rgb = np.full((40, 40, 3), 90, np.uint8); hole = np.zeros((40, 40), bool)
        >>> hole[15:25, 15:25] = True; rgb[hole] = 255
        >>> int(fill(rgb, hole)[20, 20, 0])
        90
    """
    s = settings or FillSettings()
    crop = prepare(rgb, hole, unknown, s, radius)
    img = _features(crop.rgb.astype(np.float32), s.texture_weight)
    out = rgb.copy()
    levels = _pyramid(img, crop.hole, crop.context, crop.unknown, s)
    solved = _solve(levels, seed, s)
    if solved is None:
        # No fully known patch to copy from (the hole covers almost all of the crop).
        out[hole] = cv2.inpaint(rgb, hole.view(np.uint8), 3, cv2.INPAINT_TELEA)[hole]
        return out
    level, field, weight = solved
    if crop.shrunk:
        fh, fw = hole.shape
        up = cv2.resize(level.img[:, :, :3], (fw, fh), interpolation=cv2.INTER_LINEAR)
        fallback = np.clip(up + 0.5, 0, 255).astype(np.uint8)
        return transfer(rgb, hole, field, weight, 1, fallback, unknown)
    out[hole] = np.clip(level.img[hole, :3] + 0.5, 0, 255).astype(np.uint8)
    return out

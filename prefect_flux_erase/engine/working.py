"""The working crop of a fill: which pixels may be copied from, and at what size the fill runs.

Both fill back ends (:mod:`~prefect_flux_erase.engine.pmfill` over pypatchmatch, and the
Numba fallback :mod:`~prefect_flux_erase.engine.patchfill`) share these rules:

- sources come only from a ring of known pixels around the hole, ``max(min_context,
  context_factor x hole radius)`` wide: nearby background is the likeliest truth (copying from
  far away is how badges and faces end up in the sky), and the search stays proportional to the
  hole;
- a crop larger than ``max_working_pixels`` is shrunk before filling, and the result is carried
  back to full resolution by :mod:`~prefect_flux_erase.engine.transfer`, so cost is bounded
  while the output keeps full-resolution pixels.

Example:
    >>> import numpy as np
    >>> hole = np.zeros((400, 400), bool); hole[150:250, 150:250] = True
    >>> crop = prepare(np.zeros((400, 400, 3), np.uint8), hole, None, FillSettings())
    >>> crop.shrunk, crop.hole.shape
    (True, (244, 244))
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class FillSettings:
    """Tuning of the patch fill; the defaults are the ones the engine benchmark was run with.

    Example:
        >>> FillSettings().context_factor
        1.5
    """

    #: Sources lie within max(min_context, context_factor x hole radius) px of the hole.
    min_context: int = 24
    context_factor: float = 1.5
    #: Largest working crop, in pixels; larger crops are shrunk, then detail is carried back.
    max_working_pixels: int = 60_000
    #: Patch radius of pypatchmatch (3 → 7 x 7 patches) at the working size.
    patch_size: int = 3
    #: Patch radius of the Numba fallback, and of the field that carries a fill to full size.
    patch_radius: int = 3
    #: Numba fallback: pyramid depth (stop once the hole is this thick), EM rounds, sweeps.
    coarse_hole_radius: float = 2.0
    coarse_rounds: int = 6
    fine_rounds: int = 2
    sweeps: int = 2
    #: Numba fallback: vote weight exp(-d / 2s), s = this percentile of patch distances.
    weight_percentile: float = 50.0
    #: Numba fallback: weight of the texture channels (local mean |gradient|) in distances.
    texture_weight: float = 1.0
    #: Numba fallback: weight of hole pixels (current guesses) vs known pixels in distances.
    hole_confidence: float = 0.5
    #: Numba fallback: cost per squared pixel between a target and its source.
    proximity: float = 2.0
    #: Numba fallback: the finest level's last round takes each pixel from its best patch.
    sharp_final: bool = True


def context_radius(hole_radius: float, settings: FillSettings) -> int:
    """How far from the hole (pixels) sources may come from, for a hole of that thickness.

    Example:
        >>> context_radius(40.0, FillSettings())
        60
    """
    return int(max(settings.min_context, settings.context_factor * hole_radius))


def working_shape(shape: tuple[int, int], settings: FillSettings) -> tuple[int, int]:
    """The (height, width) a crop of ``shape`` is filled at: shrunk to ``max_working_pixels``.

    Example:
        >>> working_shape((2000, 1000), FillSettings(max_working_pixels=20_000))
        (200, 100)
    """
    h, w = shape
    scale = (settings.max_working_pixels / float(h * w)) ** 0.5
    if scale >= 1.0:
        return h, w
    return max(1, int(h * scale)), max(1, int(w * scale))


def hole_radius(hole: NDArray[np.bool_]) -> float:
    """Half the thickness of the thickest part of ``hole`` (its largest inscribed radius).

    Example:
        >>> h = np.zeros((20, 20), bool); h[5:15, 5:15] = True
        >>> hole_radius(h)
        5.0
    """
    if not hole.any():
        return 0.0
    padded = np.pad(hole, 1).view(np.uint8)
    return float(cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE).max())


def box_dilate(mask: NDArray[np.bool_], r: int) -> NDArray[np.bool_]:
    """Dilate by a (2r+1)-square: the patch centres whose patch touches ``mask``.

    Example:
        >>> m = np.zeros((5, 5), bool); m[2, 2] = True
        >>> int(box_dilate(m, 1).sum())
        9
    """
    k = np.ones((2 * r + 1, 2 * r + 1), np.uint8)
    return np.asarray(cv2.dilate(mask.view(np.uint8), k), dtype=bool)


@dataclass(frozen=True)
class WorkingCrop:
    """A crop at its working size: ``rgb``, ``hole``, ``context`` (allowed sources) and
    ``unknown`` (neither filled nor copied from), plus whether it was ``shrunk``.

    Example:
        >>> z = np.zeros((2, 2), bool)
        >>> WorkingCrop(np.zeros((2, 2, 3), np.uint8), z, z, z, False).shrunk
        False
    """

    rgb: NDArray[np.uint8]
    hole: NDArray[np.bool_]
    context: NDArray[np.bool_]
    unknown: NDArray[np.bool_]
    shrunk: bool


def _shrink(mask: NDArray[np.bool_], size: tuple[int, int], cover: float) -> NDArray[np.bool_]:
    """Resize a mask by area: True where more than ``cover`` of the pixel was True."""
    area = cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(area > cover)


def prepare(
    rgb: NDArray[np.uint8],
    hole: NDArray[np.bool_],
    unknown: NDArray[np.bool_] | None,
    settings: FillSettings,
    radius: float | None = None,
) -> WorkingCrop:
    """The working crop for filling ``hole`` in ``rgb`` (``radius``: the hole's, if known).

    Shrinking keeps every partly covered pixel in the hole (nothing of the object survives)
    and only wholly known pixels in the context.

    Example:
        >>> hole = np.zeros((50, 50), bool); hole[20:30, 20:30] = True
        >>> crop = prepare(np.zeros((50, 50, 3), np.uint8), hole, None, FillSettings())
        >>> crop.shrunk, bool(crop.context[hole].any()), bool(crop.context[0, 0])
        (False, False, False)
    """
    ring = context_radius(hole_radius(hole) if radius is None else radius, settings)
    outside = cv2.distanceTransform((~hole).view(np.uint8), cv2.DIST_L2, 3)
    blind = np.zeros_like(hole) if unknown is None else unknown & ~hole
    context = (outside <= ring) & ~hole & ~blind
    h, w = working_shape(hole.shape, settings)
    if (h, w) == hole.shape:
        return WorkingCrop(rgb, hole, context, blind, False)
    small = np.ascontiguousarray(cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA))
    whole = _shrink(hole, (w, h), 0.0)
    return WorkingCrop(
        np.asarray(small, dtype=np.uint8),
        whole,
        _shrink(context, (w, h), 0.999) & ~whole,
        _shrink(blind, (w, h), 0.0) & ~whole,
        True,
    )

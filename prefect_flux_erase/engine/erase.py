"""The embedded erase engine: remove the masked objects from a photo, on the CPU, without a model.

This is what ``--backend local``, the demo and the emulator's realistic mode run. It follows
the FLUX Erase contract: the mask (True = erase) is grown by ``dilate_pixels`` (a Euclidean
disc), the grown region is replaced by plausible background, and every other pixel comes back
bit-identical. Work is done per crop around each group of mask components (see
:mod:`~prefect_flux_erase.engine.regions`), so cost follows the mask, not the frame. Object-sized
holes get a patch fill from the background around them: pypatchmatch where its wheel exists
(:mod:`~prefect_flux_erase.engine.pmfill`), else the Numba fill
(:mod:`~prefect_flux_erase.engine.patchfill`). Strokes narrower than about 9 px (text, wires,
scratches) get a smooth Telea fill, which is invisible at that width and much cheaper. Last,
:mod:`~prefect_flux_erase.engine.detail` fades the fill into a smooth one at the seam and brings
its fine texture to the level of the pixels around the hole (calming wood grain copied over a
plain saucer, restoring grain that averaging smoothed away).

Example:
    >>> import numpy as np
    >>> rgb = np.full((64, 64, 3), 120, np.uint8); rgb[30:34, 30:34] = 0
    >>> mask = np.zeros((64, 64), bool); mask[30:34, 30:34] = True
    >>> out = erase(rgb, mask, dilate_pixels=2)
    >>> int(out[31, 31, 0]), bool((out[:20] == rgb[:20]).all())
    (120, True)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from prefect_flux_erase.engine import patchfill, pmfill
from prefect_flux_erase.engine.detail import DetailSettings, match_detail
from prefect_flux_erase.engine.regions import Crop, check_dilate_pixels, disc_kernel, plan_crops
from prefect_flux_erase.engine.working import FillSettings, context_radius, working_shape


@dataclass(frozen=True)
class CropReport:
    """What the engine did with one crop (passed to ``on_crop`` observers).

    ``box`` is (y0, y1, x0, x1) in the image, ``working_shape`` the (height, width) the fill
    ran at, ``method`` ``"patch"`` or ``"smooth"``, ``hole_pixels`` the dilated hole's size.

    Example:
        >>> CropReport((0, 8, 0, 8), (8, 8), "smooth", 4).method
        'smooth'
    """

    box: tuple[int, int, int, int]
    working_shape: tuple[int, int]
    method: Literal["patch", "smooth"]
    hole_pixels: int


@dataclass(frozen=True)
class LocalEraser:
    """The local engine with its tuning; :func:`erase` uses the default instance.

    Example:
        >>> import numpy as np
        >>> seen = []
        >>> rgb = np.zeros((400, 400, 3), np.uint8); mask = np.zeros((400, 400), bool)
        >>> mask[200, 200] = True
        >>> _ = LocalEraser().erase(rgb, mask, dilate_pixels=1, on_crop=seen.append)
        >>> seen[0].method, seen[0].hole_pixels
        ('smooth', 5)
    """

    patch: FillSettings = field(default_factory=FillSettings)
    #: The patch fill: ``"auto"`` (pypatchmatch where it loads, else Numba), ``"patchmatch"``
    #: or ``"numba"``.
    backend: Literal["auto", "patchmatch", "numba"] = "auto"
    #: Hole components that are mostly too narrow for a disc of this radius (px) to fit in are
    #: strokes (text, wires, scratches) and get the smooth fill: invisible at that width, while
    #: patches would only add noise. "Mostly": less than ``thick_fraction`` of their area.
    thin_radius: int = 4
    thick_fraction: float = 0.5
    #: How the fill's texture is matched to its surroundings (see
    #: :mod:`~prefect_flux_erase.engine.detail`); ``None`` keeps the raw fill.
    detail: DetailSettings | None = field(default_factory=DetailSettings)

    def _use_patchmatch(self) -> bool:
        if self.backend == "numba":
            return False
        if self.backend == "patchmatch" and not pmfill.available():
            raise RuntimeError("pypatchmatch is not installed or its native library did not load")
        return pmfill.available()

    def _margin(self, radius: float) -> int:
        return context_radius(radius, self.patch) + self.patch.patch_radius + 2

    def erase(
        self,
        rgb: NDArray[np.uint8],
        mask: NDArray[np.bool_],
        dilate_pixels: int = 10,
        seed: int = 0,
        on_crop: Callable[[CropReport], None] | None = None,
    ) -> NDArray[np.uint8]:
        """Erase ``mask`` (grown by ``dilate_pixels``) from ``rgb``; see :func:`erase`.

        Example:
            >>> import numpy as np
            >>> rgb = np.zeros((8, 8, 3), np.uint8)
            >>> LocalEraser().erase(rgb, np.zeros((8, 8), bool)).shape
            (8, 8, 3)
        """
        rgb, mask = _check_inputs(rgb, mask)
        dilate_pixels = check_dilate_pixels(dilate_pixels)
        out = rgb.copy()
        for crop in plan_crops(mask, dilate_pixels, self._margin):
            self._fill_crop(out, rgb, crop, seed, on_crop)
        return out

    def _fill_crop(
        self,
        out: NDArray[np.uint8],
        rgb: NDArray[np.uint8],
        crop: Crop,
        seed: int,
        on_crop: Callable[[CropReport], None] | None,
    ) -> None:
        y0, y1, x0, x1 = crop.box
        patch = np.ascontiguousarray(rgb[y0:y1, x0:x1])
        hole = crop.hole
        thick = _thick_components(hole, self.thin_radius, self.thick_fraction)
        shape = crop.shape
        method: Literal["patch", "smooth"] = "smooth"
        filled = patch
        hole_left = hole
        if thick.any():
            method = "patch"
            shape = working_shape(crop.shape, self.patch)
            hole_left = hole & ~thick
            fill = pmfill.fill if self._use_patchmatch() else patchfill.fill
            filled = fill(patch, thick, seed=seed, settings=self.patch, unknown=hole_left)
        if hole_left.any():
            smooth = cv2.inpaint(filled, hole_left.view(np.uint8), 3, cv2.INPAINT_TELEA)
            filled = np.asarray(smooth, dtype=np.uint8)
        if self.detail is not None:
            telea = filled if method == "smooth" else None
            filled = match_detail(patch, filled, hole, self.detail, smooth=telea)
        region = out[y0:y1, x0:x1]
        region[crop.hole] = filled[crop.hole]
        if on_crop is not None:
            on_crop(CropReport(crop.box, shape, method, int(crop.hole.sum())))


def _thick_components(hole: NDArray[np.bool_], radius: int, fraction: float) -> NDArray[np.bool_]:
    """The components of ``hole`` of which at least ``fraction`` lies under a disc of radius."""
    opened = cv2.morphologyEx(hole.view(np.uint8), cv2.MORPH_OPEN, disc_kernel(radius))
    if not opened.any():
        return np.zeros_like(hole)
    count, labels = cv2.connectedComponents(hole.view(np.uint8), connectivity=8)
    area = np.bincount(labels.ravel(), minlength=count)
    inside = np.bincount(labels.ravel(), weights=opened.ravel().astype(np.float64), minlength=count)
    keep = inside >= fraction * np.maximum(area, 1)
    keep[0] = False
    return np.asarray(keep[labels])


def _check_inputs(
    rgb: NDArray[np.uint8], mask: NDArray[np.bool_]
) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be an (H, W, 3) uint8 array, got {rgb.shape} {rgb.dtype}")
    mask = np.asarray(mask)
    if mask.shape != rgb.shape[:2]:
        raise ValueError(f"mask must be (H, W) = {rgb.shape[:2]}, got {mask.shape}")
    if mask.dtype != np.bool_:
        mask = mask != 0
    return np.ascontiguousarray(rgb), np.ascontiguousarray(mask)


_DEFAULT = LocalEraser()


def erase(
    rgb: NDArray[np.uint8],
    mask: NDArray[np.bool_],
    *,
    dilate_pixels: int = 10,
    seed: int = 0,
) -> NDArray[np.uint8]:
    """Remove the masked objects from ``rgb`` and return a new image.

    Args:
        rgb: (H, W, 3) uint8 image.
        mask: (H, W) bool, True where the object to erase is.
        dilate_pixels: grow the mask outward by exactly this many pixels (0–50, the model's
            ``dilatePixels``), to cover halos and soft edges the mask missed.
        seed: the fill is deterministic for the same inputs and seed.

    Returns:
        The (H, W, 3) uint8 result; pixels outside the grown mask are bit-identical.

    Raises:
        ValueError: wrong shapes or dtypes, or ``dilate_pixels`` outside 0–50.

    Example:
        >>> import numpy as np
        >>> rgb = np.full((32, 32, 3), 50, np.uint8); mask = np.zeros((32, 32), bool)
        >>> bool((erase(rgb, mask) == rgb).all())
        True
    """
    return _DEFAULT.erase(rgb, mask, dilate_pixels, seed)

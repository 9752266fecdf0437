"""Patch fill through pypatchmatch: the engine's main back end where its wheel exists.

pypatchmatch (MIT; Barnes et al.'s PatchMatch with Xavier Philippeau's coarse-to-fine EM, in
C++) gives the most background-like fills measured here. This module bounds its cost: it sees
only the working crop (:mod:`~prefect_flux_erase.engine.working`), its sources are limited to
the context ring (through its ``global_mask``), and a shrunk crop is carried back to full
resolution by :mod:`~prefect_flux_erase.engine.transfer`.

pypatchmatch keeps its random seed in process-wide state, so a lock pairs each seed with its
inpainting: concurrent threads would otherwise swap seeds and lose determinism.

Example:
    >>> import numpy as np
    >>> rgb = np.zeros((60, 60, 3), np.uint8); rgb[:, ::4] = 220
    >>> hole = np.zeros((60, 60), bool); hole[25:35, 25:35] = True
    >>> out = fill(rgb, hole, seed=0) if available() else rgb
    >>> bool((out[~hole] == rgb[~hole]).all())
    True
"""

from __future__ import annotations

import threading
from functools import lru_cache

import cv2
import numpy as np
from numpy.typing import NDArray

from prefect_flux_erase.engine.transfer import recover_field, transfer
from prefect_flux_erase.engine.working import FillSettings, prepare

_SEED_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def available() -> bool:
    """Whether pypatchmatch and its native library load on this machine.

    Example:
        >>> isinstance(available(), bool)
        True
    """
    try:
        import patchmatch
    except ImportError:
        return False
    return bool(patchmatch.patchmatch_available)


def fill(
    rgb: NDArray[np.uint8],
    hole: NDArray[np.bool_],
    *,
    seed: int = 0,
    settings: FillSettings | None = None,
    radius: float | None = None,
    unknown: NDArray[np.bool_] | None = None,
) -> NDArray[np.uint8]:
    """Fill ``hole`` of the crop ``rgb`` with pypatchmatch; other pixels come back unchanged.

    ``radius`` is the hole's inscribed radius when the caller knows it; pixels in ``unknown``
    are neither filled nor copied from. Requires :func:`available`.

    Example:
        >>> rgb = np.full((40, 40, 3), 90, np.uint8); hole = np.zeros((40, 40), bool)
        >>> hole[15:25, 15:25] = True; rgb[hole] = 255
        >>> int(fill(rgb, hole)[20, 20, 0]) if available() else 90
        90
    """
    import patchmatch

    s = settings or FillSettings()
    crop = prepare(rgb, hole, unknown, s, radius)
    out = rgb.copy()
    if not crop.context.any():
        # Nothing known to copy from (the hole covers the crop): a smooth fill is all there is.
        out[hole] = cv2.inpaint(rgb, hole.view(np.uint8), 3, cv2.INPAINT_TELEA)[hole]
        return out
    frozen = ((~crop.context & ~crop.hole) | crop.unknown).view(np.uint8)
    with _SEED_LOCK:
        patchmatch.set_random_seed(seed % 2**32)
        filled = patchmatch.inpaint(
            crop.rgb, crop.hole.view(np.uint8), global_mask=frozen, patch_size=s.patch_size
        )
    small = np.asarray(filled, dtype=np.uint8)
    if not crop.shrunk:
        out[hole] = small[hole]
        return out
    field, weight = recover_field(small, crop.hole, crop.context, 2, seed)
    fh, fw = hole.shape
    upscaled = np.asarray(cv2.resize(small, (fw, fh), interpolation=cv2.INTER_LINEAR), np.uint8)
    return transfer(rgb, hole, field, weight, 1, upscaled, unknown)

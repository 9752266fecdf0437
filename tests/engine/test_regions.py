"""Mask dilation and crop planning: the geometry the engine's contract rests on."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from prefect_flux_erase.engine.regions import check_dilate_pixels, dilate, disc_kernel, plan_crops


@pytest.mark.parametrize("n", [0, 1, 2, 5, 10, 23, 50])
def test_a_single_pixel_dilated_by_n_covers_exactly_the_disc_of_radius_n(n: int) -> None:
    size = 2 * n + 9
    mask = np.zeros((size, size), bool)
    mask[size // 2, size // 2] = True
    grown = dilate(mask, n)
    yy, xx = np.mgrid[0:size, 0:size] - size // 2
    assert np.array_equal(grown, yy**2 + xx**2 <= n * n)


def test_disc_kernel_is_not_opencvs_ellipse() -> None:
    # OpenCV's 7 x 7 MORPH_ELLIPSE includes (dy, dx) = (±1, ±3), outside the radius-3 disc.
    ellipse = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
    assert ellipse[2].tolist() == [1, 1, 1, 1, 1, 1, 1]
    assert disc_kernel(3)[2].tolist() == [0, 1, 1, 1, 1, 1, 0]


@pytest.mark.parametrize("bad", [-1, 51, 10.0, "10", True, None])
def test_dilate_pixels_outside_0_to_50_or_not_an_int_is_rejected_naming_the_range(
    bad: object,
) -> None:
    with pytest.raises(ValueError, match=r"0 to 50|from 0"):
        check_dilate_pixels(bad)  # type: ignore[arg-type]


def test_far_apart_components_get_separate_crops_and_near_ones_are_merged() -> None:
    mask = np.zeros((400, 400), bool)
    mask[50:54, 50:54] = True
    mask[50:54, 60:64] = True  # 6 px from the first: one crop
    mask[300:304, 300:304] = True
    crops = plan_crops(mask, dilate_pixels=2, margin_for=lambda r: 8)
    assert len(crops) == 2
    boxes = sorted(c.box for c in crops)
    assert boxes[0][0] <= 50
    assert boxes[0][3] >= 64
    assert sum(int(c.hole.sum()) for c in crops) == int(dilate(mask, 2).sum())


def test_crops_never_overlap_and_hold_every_dilated_pixel() -> None:
    rng = np.random.default_rng(3)
    mask = rng.random((300, 300)) > 0.998
    crops = plan_crops(mask, dilate_pixels=4, margin_for=lambda r: 6)
    cover = np.zeros(mask.shape, int)
    rebuilt = np.zeros(mask.shape, bool)
    for c in crops:
        y0, y1, x0, x1 = c.box
        cover[y0:y1, x0:x1] += 1
        rebuilt[y0:y1, x0:x1] |= c.hole
    assert cover.max() == 1
    assert np.array_equal(rebuilt, dilate(mask, 4))


def test_an_empty_mask_plans_no_work() -> None:
    assert plan_crops(np.zeros((10, 10), bool), 10, lambda r: 5) == []

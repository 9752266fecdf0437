"""The local engine's contract: exact dilation, untouched outside, determinism, plausible fills."""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from prefect_flux_erase.engine import pmfill
from prefect_flux_erase.engine.erase import CropReport, LocalEraser, erase
from prefect_flux_erase.engine.regions import dilate
from prefect_flux_erase.engine.working import FillSettings
from tests.fixtures.engine_scenes import BLOB, striped_scene

Scene = tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.bool_]]
Backend = Literal["patchmatch", "numba"]


@pytest.fixture(params=["patchmatch", "numba"])
def backend(request: pytest.FixtureRequest) -> Backend:
    """Each patch-fill back end: pypatchmatch where it loads, and the Numba fallback."""
    if request.param == "patchmatch" and not pmfill.available():
        pytest.skip("pypatchmatch is not available on this platform")
    return request.param  # type: ignore[no-any-return]


def _detail(img: NDArray[np.uint8], where: NDArray[np.bool_]) -> float:
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1)
    return float(np.hypot(gx, gy)[where].mean())


@pytest.mark.parametrize("dilate_pixels", [0, 3, 10])
def test_pixels_outside_the_dilated_mask_are_bit_identical(
    scene: Scene, dilate_pixels: int
) -> None:
    _, rgb, mask = scene
    out = erase(rgb, mask, dilate_pixels=dilate_pixels)
    outside = ~dilate(mask, dilate_pixels)
    assert np.array_equal(out[outside], rgb[outside])
    assert out.dtype == np.uint8
    assert out.shape == rgb.shape


@pytest.mark.parametrize("n", [0, 4, 10, 50])
def test_the_erased_region_of_a_single_pixel_is_exactly_the_disc_of_radius_n(n: int) -> None:
    size = 2 * n + 41
    rgb = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    mask = np.zeros((size, size), bool)
    mask[size // 2, size // 2] = True
    reports: list[CropReport] = []
    out = LocalEraser().erase(rgb, mask, n, 0, reports.append)
    disc = int(
        sum(1 for dy in range(-n, n + 1) for dx in range(-n, n + 1) if dy * dy + dx * dx <= n * n)
    )
    assert sum(r.hole_pixels for r in reports) == disc
    yy, xx = np.mgrid[0:size, 0:size] - size // 2
    outside = yy**2 + xx**2 > n * n
    assert np.array_equal(out[outside], rgb[outside])


def test_same_input_and_seed_give_identical_output(scene: Scene, backend: Backend) -> None:
    _, rgb, mask = scene
    eraser = LocalEraser(backend=backend)
    first = eraser.erase(rgb, mask, 4, 11)
    other_seed = eraser.erase(rgb, mask, 4, 12)
    second = LocalEraser(backend=backend).erase(rgb.copy(), mask.copy(), 4, 11)
    assert np.array_equal(first, second)
    assert eraser.erase(rgb, mask, 4, 12).tobytes() == other_seed.tobytes()


def test_an_empty_mask_returns_an_unchanged_copy(scene: Scene) -> None:
    _, rgb, _ = scene
    out = erase(rgb, np.zeros(rgb.shape[:2], bool))
    assert np.array_equal(out, rgb)
    assert out is not rgb
    assert not np.shares_memory(out, rgb)


def test_the_blob_on_stripes_is_replaced_by_striped_background(
    scene: Scene, backend: Backend
) -> None:
    background, rgb, mask = scene
    out = LocalEraser(backend=backend).erase(rgb, mask, 2, 0)
    hole = dilate(mask, 2)
    filled = out[hole].astype(np.float64)
    # Texture, not smear: the hole keeps most of the stripes' edge energy.
    assert _detail(out, hole) / _detail(background, hole) > 0.6
    # The right colours: the mean is the stripes' mean, and no pixel is near the blob's red.
    assert np.abs(filled.mean(axis=0) - background[hole].mean(axis=0)).max() < 20
    assert np.linalg.norm(filled - np.array(BLOB), axis=1).min() > 60


def test_a_tiny_mask_in_a_large_image_is_processed_in_a_small_crop() -> None:
    rgb = np.full((3000, 4000, 3), 128, np.uint8)
    rgb[::7] = 90
    mask = np.zeros((3000, 4000), bool)
    mask[1500:1506, 2000:2006] = True
    reports: list[CropReport] = []
    out = LocalEraser().erase(rgb, mask, 10, 0, reports.append)
    assert len(reports) == 1
    y0, y1, x0, x1 = reports[0].box
    assert (y1 - y0) * (x1 - x0) < 0.005 * 3000 * 4000
    assert y0 <= 1490
    assert y1 >= 1516
    assert x0 <= 1990
    assert x1 >= 2016
    assert np.array_equal(out[:1400], rgb[:1400])


def test_many_small_masks_cost_many_small_crops_not_the_frame() -> None:
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (1200, 1600, 3), dtype=np.uint8)
    mask = np.zeros((1200, 1600), bool)
    for y, x in rng.integers(50, 1150, (12, 2)):
        mask[y : y + 8, x : x + 8] = True
    reports: list[CropReport] = []
    LocalEraser().erase(rgb, mask, 5, 0, reports.append)
    area = sum((r.box[1] - r.box[0]) * (r.box[3] - r.box[2]) for r in reports)
    assert area < 0.25 * 1200 * 1600


def test_a_large_crop_is_filled_at_a_bounded_working_size(backend: Backend) -> None:
    background, _, _ = striped_scene(size=240, radius=10)
    rgb = background.copy()
    mask = np.zeros((240, 240), bool)
    mask[70:170, 70:170] = True
    rgb[mask] = BLOB
    eraser = LocalEraser(patch=FillSettings(max_working_pixels=12_000), backend=backend)
    reports: list[CropReport] = []
    out = eraser.erase(rgb, mask, 0, 0, reports.append)
    assert reports[0].method == "patch"
    assert reports[0].working_shape[0] * reports[0].working_shape[1] <= 12_000
    assert reports[0].working_shape != (
        reports[0].box[1] - reports[0].box[0],
        reports[0].box[3] - reports[0].box[2],
    )
    # Detail is carried back from full-resolution pixels, not an upscaled blur.
    assert _detail(out, mask) / _detail(background, mask) > 0.6
    assert np.linalg.norm(out[mask].astype(float) - np.array(BLOB), axis=1).min() > 60


def test_thin_strokes_get_the_smooth_fill_and_blobs_the_patch_fill() -> None:
    background, _, _ = striped_scene(size=300)
    mask = np.zeros((300, 300), bool)
    mask[10, 10:290] = True  # a 1 px line: a stroke
    mask[220:260, 130:170] = True  # a 40 px square: an object
    reports: list[CropReport] = []
    LocalEraser().erase(background, mask, 1, 0, reports.append)
    assert sorted(r.method for r in reports) == ["patch", "smooth"]


@pytest.mark.parametrize(
    ("rgb", "mask", "match"),
    [
        (np.zeros((8, 8), np.uint8), np.zeros((8, 8), bool), "rgb must be"),
        (np.zeros((8, 8, 3), np.float32), np.zeros((8, 8), bool), "rgb must be"),
        (np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9), bool), "mask must be"),
    ],
)
def test_wrong_shapes_and_dtypes_are_rejected(
    rgb: NDArray[np.uint8], mask: NDArray[np.bool_], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        erase(rgb, mask)


def test_out_of_range_dilation_is_rejected_naming_the_range(scene: Scene) -> None:
    _, rgb, mask = scene
    with pytest.raises(ValueError, match="0 to 50"):
        erase(rgb, mask, dilate_pixels=51)


def test_asking_for_patchmatch_where_it_cannot_load_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, scene: Scene
) -> None:
    _, rgb, mask = scene
    monkeypatch.setattr(pmfill, "available", lambda: False)
    with pytest.raises(RuntimeError, match="pypatchmatch"):
        LocalEraser(backend="patchmatch").erase(rgb, mask, 2, 0)
    # "auto" falls back to the Numba fill instead.
    reports: list[CropReport] = []
    LocalEraser().erase(rgb, mask, 2, 0, reports.append)
    assert reports[0].method == "patch"

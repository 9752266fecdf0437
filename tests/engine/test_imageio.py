"""Input decoding and normalisation: every accepted form, and every failure with its code."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from prefect_flux_erase.engine.imageio import (
    ImageInputError,
    decode_image,
    decode_mask,
    encode_image,
)
from tests.fixtures.engine_scenes import encode


def _gradient_rgb(w: int = 24, h: int = 16) -> Image.Image:
    arr = np.zeros((h, w, 3), np.uint8)
    arr[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
    arr[..., 1] = np.linspace(0, 255, h, dtype=np.uint8)[:, None]
    arr[..., 2] = 77
    return Image.fromarray(arr, "RGB")


@pytest.mark.parametrize(("fmt", "tolerance"), [("PNG", 0), ("JPEG", 24), ("WEBP", 24)])
def test_png_jpeg_and_webp_decode_to_8bit_rgb(fmt: str, tolerance: int) -> None:
    src = _gradient_rgb()
    decoded = decode_image(encode(src, fmt, quality=95) if fmt != "PNG" else encode(src, fmt))
    assert decoded.rgb.shape == (16, 24, 3)
    assert decoded.rgb.dtype == np.uint8
    assert decoded.alpha is None
    assert decoded.source_format == {"JPEG": "JPG"}.get(fmt, fmt)
    assert np.abs(decoded.rgb.astype(int) - np.asarray(src)).max() <= tolerance


def test_rgba_keeps_its_alpha_and_an_opaque_alpha_is_dropped() -> None:
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., :3] = 120
    rgba[..., 3] = 255
    assert decode_image(encode(Image.fromarray(rgba, "RGBA"), "PNG")).alpha is None
    rgba[2, 3, 3] = 10
    decoded = decode_image(encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert decoded.alpha is not None
    assert decoded.alpha[2, 3] == 10
    assert decoded.rgb.shape == (8, 8, 3)


def test_grey_la_palette_and_transparent_palette_become_rgb() -> None:
    grey = decode_image(encode(Image.new("L", (5, 4), 200), "PNG"))
    assert grey.rgb.shape == (4, 5, 3)
    assert (grey.rgb == 200).all()
    la = decode_image(encode(Image.new("LA", (5, 4), (90, 30)), "PNG"))
    assert (la.rgb == 90).all()
    assert la.alpha is not None
    assert (la.alpha == 30).all()
    pal = Image.new("P", (5, 4), 1)
    pal.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    assert decode_image(encode(pal, "PNG")).rgb[0, 0].tolist() == [10, 200, 30]
    pal.info["transparency"] = 1
    transparent = decode_image(encode(pal, "PNG", transparency=1))
    assert transparent.alpha is not None
    assert (transparent.alpha == 0).all()


def test_cmyk_jpeg_becomes_rgb() -> None:
    decoded = decode_image(encode(Image.new("CMYK", (6, 4), (0, 255, 255, 0)), "JPEG", quality=95))
    r, g, b = decoded.rgb[2, 3].tolist()
    assert decoded.rgb.shape == (4, 6, 3)
    assert r > 200
    assert g < 60
    assert b < 60


def test_16_bit_grey_is_scaled_to_8_bit() -> None:
    arr = np.array([[0, 32896, 65535]], np.uint16)
    img = Image.fromarray(arr)  # mode I;16
    decoded = decode_image(encode(img, "PNG"))
    assert decoded.rgb[0, :, 0].tolist() == [0, 128, 255]


def test_exif_orientation_is_applied_to_images_and_masks() -> None:
    img = _gradient_rgb(w=30, h=10)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    data = encode(img, "JPEG", quality=95, exif=exif.tobytes())
    decoded = decode_image(data)
    assert decoded.size == (10, 30)
    # Rotated clockwise: the original's left column (red 0) is now the top row.
    assert decoded.rgb[0, :, 0].max() < 40
    mask = Image.new("L", (30, 10), 255)
    assert decode_mask(encode(mask, "JPEG", exif=exif.tobytes()), (10, 30)).shape == (30, 10)


def test_masks_are_binarised_at_half_and_colour_and_alpha_count() -> None:
    grey = np.array([[0, 127, 128, 255]], np.uint8)
    assert decode_mask(encode(Image.fromarray(grey, "L"), "PNG"), (4, 1)).tolist() == [
        [False, False, True, True]
    ]
    rgba = np.zeros((1, 3, 4), np.uint8)
    rgba[0, 0] = (255, 255, 255, 255)  # opaque white: erase
    rgba[0, 1] = (255, 255, 255, 0)  # transparent white: keep
    rgba[0, 2] = (0, 0, 0, 255)  # opaque black: keep
    assert decode_mask(encode(Image.fromarray(rgba, "RGBA"), "PNG"), (3, 1)).tolist() == [
        [True, False, False]
    ]
    bilevel = Image.new("1", (2, 2), 1)
    assert decode_mask(encode(bilevel, "PNG"), (2, 2)).all()


def test_a_mask_of_another_size_is_invalid_mask_dimensions() -> None:
    with pytest.raises(ImageInputError) as info:
        decode_mask(encode(Image.new("L", (8, 8)), "PNG"), (8, 9))
    assert info.value.code == "invalidMaskDimensions"
    assert info.value.parameter == "inputs.mask"
    assert "8x8" in info.value.message
    assert "8x9" in info.value.message


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "emptyInput"),
        (b"this is not an image at all", "invalidImage"),
        (encode(Image.new("RGB", (64, 64), 9), "PNG")[:60], "invalidImage"),
        (encode(Image.new("RGB", (64, 64), 9), "JPEG")[:200], "invalidImage"),
    ],
)
def test_unreadable_inputs_fail_with_their_code(data: bytes, code: str) -> None:
    with pytest.raises(ImageInputError) as info:
        decode_image(data)
    assert info.value.code == code
    assert info.value.parameter == "inputs.image"
    with pytest.raises(ImageInputError) as mask_info:
        decode_mask(data, (64, 64))
    assert mask_info.value.code == code
    assert mask_info.value.parameter == "inputs.mask"


def test_too_many_pixels_is_image_too_large_before_decoding() -> None:
    big = encode(Image.new("L", (2000, 1500)), "PNG")  # 3 MP, a few kB compressed
    with pytest.raises(ImageInputError) as info:
        decode_image(big, max_pixels=1_000_000)
    assert info.value.code == "imageTooLarge"
    with pytest.raises(ImageInputError) as mask_info:
        decode_mask(big, (2000, 1500), max_pixels=1_000_000)
    assert mask_info.value.code == "imageTooLarge"


def test_pillows_own_bomb_guard_is_reported_as_image_too_large(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow raises beyond 2x this
    with pytest.raises(ImageInputError) as info:
        decode_image(encode(Image.new("L", (100, 100)), "PNG"), max_pixels=10**9)
    assert info.value.code == "imageTooLarge"


def test_a_side_below_the_minimum_is_image_too_small() -> None:
    with pytest.raises(ImageInputError) as info:
        decode_image(encode(Image.new("RGB", (300, 200)), "PNG"), min_side=256)
    assert info.value.code == "imageTooSmall"
    assert decode_image(encode(Image.new("RGB", (300, 256)), "PNG"), min_side=256).size == (
        300,
        256,
    )


def test_encode_keeps_alpha_only_where_the_format_can() -> None:
    rgb = np.full((4, 4, 3), 50, np.uint8)
    alpha = np.full((4, 4), 99, np.uint8)
    assert Image.open(io.BytesIO(encode_image(rgb, "PNG", alpha=alpha))).mode == "RGBA"
    assert Image.open(io.BytesIO(encode_image(rgb, "WEBP", alpha=alpha))).mode == "RGBA"
    assert Image.open(io.BytesIO(encode_image(rgb, "JPG", alpha=alpha))).mode == "RGB"
    with pytest.raises(ValueError, match="JPG, PNG, WEBP"):
        encode_image(rgb, "GIF")

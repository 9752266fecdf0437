"""get_engine and erase_bytes: the engine package's entry points for the pipeline and emulator."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from prefect_flux_erase.engine import ENGINE_NAMES, erase_bytes, get_engine
from prefect_flux_erase.engine.echo import echo_fill
from prefect_flux_erase.engine.imageio import ImageInputError
from tests.fixtures.engine_scenes import encode, striped_scene


def test_local_and_echo_resolve_to_engines_callable_positionally_and_by_keyword() -> None:
    _, rgb, mask = striped_scene(size=64, radius=8)
    local = get_engine("local")
    by_position = local(rgb, mask, 2, 5)
    by_keyword = local(rgb, mask, dilate_pixels=2, seed=5)  # type: ignore[call-arg]
    assert np.array_equal(by_position, by_keyword)
    assert not np.array_equal(by_position, rgb)
    assert get_engine("echo") is echo_fill


def test_an_unknown_engine_name_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="local, echo") as info:
        get_engine("gpu")
    assert "'gpu'" in str(info.value)
    assert ENGINE_NAMES == ("local", "echo")


def _rgba_scene() -> tuple[bytes, bytes, np.ndarray]:
    _, rgb, mask = striped_scene(size=64, radius=8)
    alpha = np.full((64, 64), 255, np.uint8)
    alpha[:, :10] = 40  # a translucent band, away from the mask
    image = Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    mask_png = encode(Image.fromarray(mask.astype(np.uint8) * 255, "L"), "PNG")
    return encode(image, "PNG"), mask_png, alpha


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_erase_bytes_keeps_alpha_for_png_and_webp(fmt: str) -> None:
    image, mask, alpha = _rgba_scene()
    out = Image.open(io.BytesIO(erase_bytes(image, mask, output_format=fmt, quality=100)))
    assert out.format == fmt
    assert out.mode == "RGBA"
    # Lossless for PNG; WEBP at quality 100 is close.
    assert np.abs(np.asarray(out)[:, :, 3].astype(int) - alpha).max() <= (0 if fmt == "PNG" else 3)


def test_erase_bytes_drops_alpha_for_jpg_and_erases_the_masked_object() -> None:
    image, mask, _ = _rgba_scene()
    out = Image.open(io.BytesIO(erase_bytes(image, mask, output_format="JPG", dilate_pixels=2)))
    assert out.format == "JPEG"
    assert out.mode == "RGB"
    centre = np.asarray(out)[28:36, 28:36].astype(int)
    assert (np.abs(centre - [250, 20, 20]).sum(axis=2) > 80).all()  # the red blob is gone


def test_erase_bytes_with_the_echo_engine_and_a_bad_mask_size() -> None:
    image, _, _ = _rgba_scene()
    small_mask = encode(Image.new("L", (32, 32), 255), "PNG")
    with pytest.raises(ImageInputError) as info:
        erase_bytes(image, small_mask, engine="echo")
    assert info.value.code == "invalidMaskDimensions"
    out = erase_bytes(image, encode(Image.new("L", (64, 64), 0), "PNG"), engine="echo")
    assert Image.open(io.BytesIO(out)).size == (64, 64)

"""The pixel-free checks (`check_image`, `mask_has_erase`) agree with the full decode.

A row sent to the API is validated with the checks; a row for the local engine with the full
decode. Both must accept and reject the very same files with the very same codes, messages
and sizes, or a row would pass on one backend and fail on the other.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from PIL import Image

from prefect_flux_erase.engine.imageio import (
    ImageInputError,
    check_image,
    decode_image,
    decode_mask,
    mask_has_erase,
)


def _save(img: Image.Image, fmt: str, **kw: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _noise(w: int, h: int, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(w * 7 + h)
    return Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), "RGB").convert(mode)


def _rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # turned 90 degrees: the oriented size is (h, w)
    return _save(_noise(300, 260), "JPEG", exif=exif)


IMAGES: dict[str, Callable[[], bytes]] = {
    "jpeg": lambda: _save(_noise(300, 256), "JPEG", quality=90),
    "png": lambda: _save(_noise(256, 280), "PNG"),
    "webp": lambda: _save(_noise(260, 256), "WEBP"),
    "cmyk jpeg": lambda: _save(_noise(256, 256, "CMYK"), "JPEG"),
    "16-bit png": lambda: _save(Image.fromarray(np.full((256, 256), 40000, np.uint16)), "PNG"),
    "palette png": lambda: _save(_noise(256, 256, "P"), "PNG", transparency=0),
    "exif-rotated jpeg": _rotated_jpeg,
    "truncated jpeg": lambda: _save(_noise(300, 256), "JPEG")[:-400],
    "truncated png": lambda: _save(_noise(256, 256), "PNG")[:-300],
    "html page": lambda: b"<!doctype html><html><body>Not found</body></html>",
    "empty file": lambda: b"",
    "too small": lambda: _save(_noise(255, 300), "PNG"),
}


def _outcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return "ok", fn()
    except ImageInputError as exc:
        return exc.code, exc.message


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_check_image_agrees_with_decode_image(name: str) -> None:
    data = IMAGES[name]()
    checked = _outcome(lambda: check_image(data, min_side=256))
    decoded = _outcome(lambda: decode_image(data, min_side=256).size)
    assert checked == decoded
    if name == "exif-rotated jpeg":
        assert checked == ("ok", (260, 300))
    if name.startswith(("truncated", "html")):
        assert checked[0] == "invalidImage"


def test_check_image_refuses_a_bomb_before_decoding() -> None:
    data = _save(Image.new("L", (3000, 3000)), "PNG")
    code, message = _outcome(lambda: check_image(data, max_pixels=1_000_000))
    assert code == "imageTooLarge"
    assert "1,000,000" in message


MASKS: dict[str, Callable[[], bytes]] = {
    "grey square": lambda: _save(_square("L", 255), "PNG"),
    "grey faint": lambda: _save(_square("L", 127), "PNG"),  # under 50 %: nothing to erase
    "grey half": lambda: _save(_square("L", 128), "PNG"),
    "all black": lambda: _save(Image.new("L", (256, 256)), "PNG"),
    "1-bit": lambda: _save(_square("L", 255).convert("1"), "PNG"),
    "1-bit black": lambda: _save(Image.new("1", (256, 256)), "PNG"),
    "rgb": lambda: _save(_square("L", 255).convert("RGB"), "PNG"),
    "rgba transparent white": lambda: _save(_transparent_white(), "PNG"),
    "16-bit": lambda: _save(Image.fromarray(np.full((256, 256), 65535, np.uint16)), "PNG"),
    "jpeg": lambda: _save(_square("L", 255), "JPEG"),
    "other size": lambda: _save(Image.new("L", (256, 255), 255), "PNG"),
    "rotated other size": lambda: _save(Image.new("L", (255, 256), 255), "PNG", exif=_turned()),
    "truncated": lambda: _save(_square("L", 255), "PNG")[:-40],
}


def _square(mode: str, value: int) -> Image.Image:
    arr = np.zeros((256, 256), np.uint8)
    arr[80:160, 90:170] = value
    return Image.fromarray(arr, "L").convert(mode)


def _transparent_white() -> Image.Image:
    arr = np.full((256, 256, 4), 255, np.uint8)
    arr[..., 3] = 0  # white but fully transparent: keep
    return Image.fromarray(arr, "RGBA")


def _turned() -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = 8
    return exif


@pytest.mark.parametrize("name", sorted(MASKS))
def test_mask_has_erase_agrees_with_decode_mask(name: str) -> None:
    data = MASKS[name]()
    checked = _outcome(lambda: mask_has_erase(data, (256, 256)))
    decoded = _outcome(lambda: bool(decode_mask(data, (256, 256)).any()))
    assert checked == decoded
    expected = {
        "grey square": ("ok", True),
        "grey faint": ("ok", False),
        "all black": ("ok", False),
        "1-bit black": ("ok", False),
        "rgba transparent white": ("ok", False),
        "16-bit": ("ok", True),
    }
    if name in expected:
        assert checked == expected[name]
    if "other size" in name:
        assert checked[0] == "invalidMaskDimensions"
    if name == "truncated":
        assert checked[0] == "invalidImage"


def test_a_whole_jpeg_or_png_is_checked_from_its_structure_without_decoding_pixels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Issue 16: decoding a 2 MP JPEG at 1/8 scale cost ~3 ms a row; a whole file needs none.
    from prefect_flux_erase.engine import imageio

    whole = [_save(_noise(300, 256), fmt) for fmt in ("JPEG", "PNG")]
    truncated = _save(_noise(300, 256), "PNG")[:-300]
    loads: list[str] = []
    real_load = Image.Image.load

    def counting_load(self: Image.Image) -> Any:
        loads.append(str(self.format))
        return real_load(self)

    monkeypatch.setattr(Image.Image, "load", counting_load)
    for data in whole:
        assert imageio.check_image(data, min_side=256) == (300, 256)
        assert imageio.header_size(data) == (300, 256)  # the cost scan's look at a header
    assert loads == []
    # A truncated file is decoded, and fails as the decode fails.
    with pytest.raises(imageio.ImageInputError) as info:
        imageio.check_image(truncated)
    assert info.value.code == "invalidImage"
    assert loads

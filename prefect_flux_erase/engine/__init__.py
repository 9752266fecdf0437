"""The embedded erase engines: object removal on the CPU, without an API key or model weights.

``get_engine(name)`` returns an :data:`EraseFn` — ``(rgb, mask, dilate_pixels, seed) -> rgb`` —
for ``"local"`` (the patch-based engine in :mod:`~prefect_flux_erase.engine.erase`, the default of
``--backend local``) or ``"echo"`` (the emulator's fast stand-in that fills with a flat colour).
:func:`erase_bytes` is the whole path from encoded bytes to encoded bytes.

Importing this package is cheap: OpenCV, Numba and the engines load on first use, because the
pipeline and the emulator import it whether or not they erase anything locally.

Example:
    >>> import numpy as np
    >>> rgb = np.full((32, 32, 3), 90, np.uint8); mask = np.zeros((32, 32), bool)
    >>> get_engine("local")(rgb, mask, 10, 0).shape
    (32, 32, 3)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

import numpy as np
from numpy.typing import NDArray

#: An engine: ``(rgb (H, W, 3) uint8, mask (H, W) bool, dilate_pixels, seed) -> rgb``.
EraseFn: TypeAlias = Callable[[NDArray[np.uint8], NDArray[np.bool_], int, int], NDArray[np.uint8]]

#: The names :func:`get_engine` knows.
ENGINE_NAMES = ("local", "echo")


def _local(
    rgb: NDArray[np.uint8], mask: NDArray[np.bool_], dilate_pixels: int = 10, seed: int = 0
) -> NDArray[np.uint8]:
    """The local engine with positional-or-keyword options (the :data:`EraseFn` shape)."""
    from prefect_flux_erase.engine.erase import erase

    return erase(rgb, mask, dilate_pixels=dilate_pixels, seed=seed)


def get_engine(name: str) -> EraseFn:
    """The engine called ``name``: ``"local"`` (patch-based, realistic) or ``"echo"`` (flat fill).

    The returned function takes ``(rgb, mask, dilate_pixels, seed)`` positionally or by keyword.

    Raises:
        ValueError: an unknown name (the message lists the known ones).

    Example:
        >>> get_engine("echo").__name__
        'echo_fill'
    """
    if name == "local":
        return _local
    if name == "echo":
        from prefect_flux_erase.engine.echo import echo_fill

        return echo_fill
    raise ValueError(f"unknown erase engine {name!r}; choose one of: {', '.join(ENGINE_NAMES)}")


def erase_bytes(
    image: bytes,
    mask: bytes,
    *,
    dilate_pixels: int = 10,
    output_format: str = "PNG",
    quality: int = 95,
    engine: str = "local",
    seed: int = 0,
) -> bytes:
    """Erase the white part of ``mask`` from ``image`` (both encoded files); return encoded bytes.

    Decoding and encoding go through :mod:`~prefect_flux_erase.engine.imageio`, so inputs are
    normalised (EXIF orientation, 8-bit RGB) and a bad input raises its
    :class:`~prefect_flux_erase.engine.imageio.ImageInputError` code. The image's alpha channel
    is kept for ``PNG`` and ``WEBP`` output and dropped for ``JPG``.

    Example:
        >>> import io
        >>> from PIL import Image
        >>> def png(img):
        ...     buf = io.BytesIO(); img.save(buf, "PNG"); return buf.getvalue()
        >>> out = erase_bytes(png(Image.new("RGBA", (8, 8), (9, 9, 9, 128))),
        ...                   png(Image.new("L", (8, 8), 0)), dilate_pixels=0)
        >>> Image.open(io.BytesIO(out)).mode
        'RGBA'
    """
    from prefect_flux_erase.engine.imageio import decode_image, decode_mask, encode_image

    fn = get_engine(engine)
    decoded = decode_image(image)
    binary = decode_mask(mask, decoded.size)
    out = fn(decoded.rgb, binary, dilate_pixels, seed)
    return encode_image(out, output_format, quality, decoded.alpha)


__all__ = ["ENGINE_NAMES", "EraseFn", "erase_bytes", "get_engine"]

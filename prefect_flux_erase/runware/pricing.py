"""FLUX Erase pricing as documented on the model page.

$0.03 for the first output megapixel plus $0.004 for each further megapixel; sizes round up to
whole megapixels (1 MP = 1024 x 1024); images over 4 MP are resized to 4 MP first. The input
image is not charged as a reference image (the emulator's default for an unsettled point).
"""

from __future__ import annotations

import math

MEGAPIXEL = 1024 * 1024
MAX_PIXELS = 4 * MEGAPIXEL
FIRST_MP_USD = 0.03
EXTRA_MP_USD = 0.004


def output_size(width: int, height: int) -> tuple[int, int]:
    """The size the model works at: unchanged up to 4 MP, else scaled down to fit 4 MP.

    Example:
        >>> output_size(1024, 1024)
        (1024, 1024)
        >>> w, h = output_size(4000, 3000); w * h <= 4 * 1024 * 1024
        True
    """
    pixels = width * height
    if pixels <= MAX_PIXELS:
        return width, height
    scale = math.sqrt(MAX_PIXELS / pixels)
    return max(1, int(width * scale)), max(1, int(height * scale))


def megapixels(width: int, height: int) -> int:
    """Billable megapixels of one output: rounded up, at least 1.

    Example:
        >>> megapixels(1024, 1024), megapixels(1025, 1024)
        (1, 2)
    """
    w, h = output_size(width, height)
    return max(1, math.ceil(w * h / MEGAPIXEL))


def result_cost(width: int, height: int) -> float:
    """USD cost of one generated result of an input of this size.

    Example:
        >>> result_cost(1024, 1024)
        0.03
        >>> result_cost(2048, 2048)
        0.042
    """
    return round(FIRST_MP_USD + EXTRA_MP_USD * (megapixels(width, height) - 1), 6)

"""Prefect blocks of prefect-flux-erase: credentials and model settings.

Example:
    >>> from prefect_flux_erase.blocks import FluxEraseSettings
    >>> FluxEraseSettings().dilate_pixels
    10
"""

from prefect_flux_erase.blocks.credentials import RunwareCredentials
from prefect_flux_erase.blocks.settings import FluxEraseSettings

__all__ = ["FluxEraseSettings", "RunwareCredentials"]

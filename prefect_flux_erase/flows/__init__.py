"""Prefect flows of prefect-flux-erase: erase a manifest, or a list of image/mask pairs.

Example:
    >>> from prefect_flux_erase.flows import erase_manifest
    >>> erase_manifest.name
    'erase_manifest'
"""

from prefect_flux_erase.flows.image_list import erase_images
from prefect_flux_erase.flows.manifest_flow import erase_manifest
from prefect_flux_erase.results.summary import EraseSummary

__all__ = ["EraseSummary", "erase_images", "erase_manifest"]

"""Prefect tasks of prefect-flux-erase: the shard stages and the single-image helpers.

Example:
    >>> from prefect_flux_erase.tasks import submit_erase
    >>> submit_erase.retries
    3
"""

from prefect_flux_erase.tasks.single_image import aerase_image, erase_image
from prefect_flux_erase.tasks.stages import poll_erase, submit_erase, upload_erased

__all__ = ["aerase_image", "erase_image", "poll_erase", "submit_erase", "upload_erased"]

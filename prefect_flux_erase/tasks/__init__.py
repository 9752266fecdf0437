"""Prefect tasks of prefect-flux-erase: the shard stages and the single-image helpers.

Example:
    >>> from prefect_flux_erase.tasks import submit_erase
    >>> submit_erase.retries
    3
"""

from prefect_flux_erase.tasks.shard import poll_erase, submit_erase, upload_erased
from prefect_flux_erase.tasks.single import aerase_image, erase_image

__all__ = ["aerase_image", "erase_image", "poll_erase", "submit_erase", "upload_erased"]

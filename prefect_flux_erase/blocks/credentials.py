"""`RunwareCredentials`: the Runware API key, endpoint and timeouts as a Prefect block.

A thin wrapper: the fields, their defaults (``RUNWARE_API_KEY`` / ``RUNWARE_BASE_URL``) and the
client they open are the core's :class:`~prefect_flux_erase.runware.config.RunwareConfig`; the
block adds what Prefect needs (its type name, slug, ``get_client``) and
:meth:`RunwareCredentials.to_config`, which hands the pipeline a plain model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prefect.blocks.abstract import CredentialsBlock
from pydantic import HttpUrl

from prefect_flux_erase.runware.config import (
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_BASE_URL,
    RunwareConfig,
)

if TYPE_CHECKING:
    from prefect_flux_erase.runware.client import RunwareClient

__all__ = ["API_KEY_ENV", "BASE_URL_ENV", "DEFAULT_BASE_URL", "RunwareCredentials"]


class RunwareCredentials(CredentialsBlock, RunwareConfig):
    """Credentials and connection settings for the Runware API (or the project's emulator).

    The API key is a ``SecretStr``: it is unwrapped only inside :meth:`get_client` and never
    appears in logs, reprs or error messages. When ``api_key`` / ``base_url`` are not given,
    ``RUNWARE_API_KEY`` / ``RUNWARE_BASE_URL`` are used.

    Example:
        Load a saved block and erase one image:

        ```python
        from prefect_flux_erase import RunwareCredentials

        creds = RunwareCredentials(api_key="rw-...")          # or RunwareCredentials.load("prod")
        async with creds.get_client() as client:
            items = await client.run(task)
        ```
    """

    _block_type_name = "Runware Credentials"
    _block_type_slug = "runware-credentials"
    # The model page documents every option these blocks hold.
    _documentation_url = HttpUrl("https://runware.ai/docs/models/bfl-flux-erase")
    _description = "Credentials for the Runware inference API (FLUX Erase)."

    def to_config(self) -> RunwareConfig:
        """The same settings as the core's plain model, which the pipeline runs with.

        Example:
            >>> config = RunwareCredentials(api_key="k", base_url="http://h/v1").to_config()
            >>> type(config).__name__, config.base_url
            ('RunwareConfig', 'http://h/v1')
        """
        return self.plain()

    def get_client(self, *args: Any, **kwargs: Any) -> RunwareClient:
        """Return a new :class:`~prefect_flux_erase.runware.client.RunwareClient`.

        Keyword arguments override the client's other settings (e.g. ``max_connections``).

        Example:
            ```python
            async with RunwareCredentials(api_key="rw-...").get_client() as client:
                ...
            ```
        """
        return self.open_client(**kwargs)

"""`RunwareCredentials`: the API key, endpoint and timeouts for the Runware inference API."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from prefect.blocks.abstract import CredentialsBlock
from pydantic import Field, HttpUrl, SecretStr, field_validator

if TYPE_CHECKING:
    from prefect_flux_erase.runware.client import RunwareClient

DEFAULT_BASE_URL = "https://api.runware.ai/v1"
API_KEY_ENV = "RUNWARE_API_KEY"
BASE_URL_ENV = "RUNWARE_BASE_URL"


def _env_base_url() -> str:
    return os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL


def _env_api_key() -> SecretStr | None:
    key = os.environ.get(API_KEY_ENV)
    return SecretStr(key) if key else None


class RunwareCredentials(CredentialsBlock):
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

    api_key: SecretStr | None = Field(
        default_factory=_env_api_key,
        description="Runware API key; defaults to the RUNWARE_API_KEY environment variable.",
    )
    base_url: str = Field(
        default_factory=_env_base_url,
        # Validate the environment's value too (a trailing slash, a missing scheme).
        validate_default=True,
        description=(
            "Endpoint of the REST API; point it at `flux-erase emulator` for offline runs. "
            "Defaults to RUNWARE_BASE_URL or https://api.runware.ai/v1."
        ),
    )
    timeout: float = Field(
        default=120.0,
        gt=0,
        description="Seconds to wait for one HTTP response (sync deliveries can take a minute).",
    )
    connect_timeout: float = Field(
        default=10.0, gt=0, description="Seconds to wait for a connection to open."
    )
    max_retries: int = Field(
        default=5,
        ge=0,
        le=20,
        description="Retries of a request after a transient fault (429, 5xx, timeout, reset).",
    )

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL; got {value!r}")
        return value.rstrip("/")

    def get_client(self, *args: Any, **kwargs: Any) -> RunwareClient:
        """Return a new :class:`~prefect_flux_erase.runware.client.RunwareClient`.

        Keyword arguments override the client's other settings (e.g. ``max_connections``).

        Example:
            ```python
            async with RunwareCredentials(api_key="rw-...").get_client() as client:
                ...
            ```
        """
        from prefect_flux_erase.runware.client import RunwareClient
        from prefect_flux_erase.runware.errors import AuthenticationError

        if self.api_key is None or not self.api_key.get_secret_value():
            raise AuthenticationError(
                "No Runware API key: pass RunwareCredentials(api_key=...), load a saved block, "
                f"or set {API_KEY_ENV}",
                code="missingApiKey",
            )
        options: dict[str, Any] = {
            "base_url": self.base_url,
            "timeout": self.timeout,
            "connect_timeout": self.connect_timeout,
            "max_retries": self.max_retries,
        }
        options.update(kwargs)
        return RunwareClient(self.api_key, **options)

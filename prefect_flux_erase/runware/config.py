"""`RunwareConfig`: where the Runware API is and how to talk to it — the one way to open a client.

A plain pydantic model, free of any orchestrator: the Prefect block
:class:`~prefect_flux_erase.blocks.credentials.RunwareCredentials` and the Airflow hook build one,
and the pipeline opens every client through :meth:`RunwareConfig.open_client`, the only place the
API key is unwrapped. Unset, ``api_key`` and ``base_url`` come from ``RUNWARE_API_KEY`` and
``RUNWARE_BASE_URL``.

Example:
    >>> config = RunwareConfig(api_key="rw-secret", base_url="http://127.0.0.1:8080/v1/")
    >>> config.base_url, "rw-secret" in repr(config)
    ('http://127.0.0.1:8080/v1', False)
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, SecretStr, field_validator

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


class RunwareConfig(BaseModel):
    """Credentials and connection settings for the Runware API (or the project's emulator).

    The API key is a ``SecretStr``: it is unwrapped only inside :meth:`open_client` and never
    appears in logs, reprs or error messages.

    Example:
        ```python
        from prefect_flux_erase.runware.config import RunwareConfig

        config = RunwareConfig(api_key="rw-...", base_url="http://127.0.0.1:8080/v1")
        async with config.open_client() as client:
            items = await client.run(task)
        ```
    """

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

    @property
    def has_key(self) -> bool:
        """Whether an API key is set (without revealing it).

        Example:
            >>> RunwareConfig(api_key="k").has_key, RunwareConfig(api_key=None).has_key
            (True, False)
        """
        return self.api_key is not None and bool(self.api_key.get_secret_value())

    def plain(self) -> RunwareConfig:
        """The same settings as a plain ``RunwareConfig`` (a wrapper's own fields dropped).

        Example:
            >>> RunwareConfig(api_key="k").plain().has_key
            True
        """
        return RunwareConfig.model_validate(
            {name: getattr(self, name) for name in RunwareConfig.model_fields}
        )

    def open_client(self, **overrides: Any) -> RunwareClient:
        """Return a new :class:`~prefect_flux_erase.runware.client.RunwareClient`.

        Keyword arguments override the client's other settings (e.g. ``max_connections``).
        Without a key it raises :class:`~prefect_flux_erase.runware.errors.AuthenticationError`
        with code ``missingApiKey``.

        Example:
            ```python
            async with RunwareConfig(api_key="rw-...").open_client() as client:
                ...
            ```
        """
        from prefect_flux_erase.runware.client import RunwareClient
        from prefect_flux_erase.runware.errors import AuthenticationError

        if self.api_key is None or not self.api_key.get_secret_value():
            raise AuthenticationError(
                f"No Runware API key: set {API_KEY_ENV}, or give the run an API key (a "
                "RunwareCredentials block, an Airflow connection, or RunwareConfig(api_key=...))",
                code="missingApiKey",
            )
        options: dict[str, Any] = {
            "base_url": self.base_url,
            "timeout": self.timeout,
            "connect_timeout": self.connect_timeout,
            "max_retries": self.max_retries,
        }
        options.update(overrides)
        return RunwareClient(self.api_key, **options)

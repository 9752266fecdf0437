"""`FluxEraseHook`: an Airflow connection of type ``flux_erase`` → the core's ``RunwareConfig``.

The connection holds where the API is and the key; everything else the hook does goes through
:class:`~prefect_flux_erase.runware.config.RunwareConfig`, the one place a client is opened:

- **Host**: the base URL (``https://api.runware.ai/v1`` when empty; the ``flux-erase emulator``
  URL for offline runs). A host without a scheme (from a connection URI) becomes
  ``https://host[:port][/schema]``, or ``http://`` with the extra ``"scheme": "http"``.
- **Password**: the API key. Airflow masks it in task logs; here it becomes a ``SecretStr`` and
  is unwrapped only when a client is opened.
- **Extra**: ``timeout``, ``connect_timeout``, ``max_retries`` (the form fields of the provider
  info; the ``extra__flux_erase__`` prefixed names are read too).

Connections can live in the metadata database, a secrets backend or an environment variable:

```bash
export AIRFLOW_CONN_FLUX_ERASE_DEFAULT='{"conn_type": "flux_erase",
    "host": "https://api.runware.ai/v1", "password": "<key>", "extra": {"timeout": 60}}'
```
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook
from pydantic import SecretStr, ValidationError

from prefect_flux_erase.airflow.provider_info import CONNECTION_TYPE, DEFAULT_CONN_ID, INTEGRATION
from prefect_flux_erase.runware.config import DEFAULT_BASE_URL, RunwareConfig

if TYPE_CHECKING:
    from airflow.sdk import Connection

    from prefect_flux_erase.runware.client import RunwareClient

#: Connection extras that map to RunwareConfig fields.
EXTRA_FIELDS = ("timeout", "connect_timeout", "max_retries")


def _extra(extras: Mapping[str, Any], name: str) -> Any:
    for key in (name, f"extra__{CONNECTION_TYPE}__{name}"):
        value = extras.get(key)
        if value not in (None, ""):
            return value
    return None


def _base_url(conn: Connection, extras: Mapping[str, Any]) -> str:
    host = (conn.host or "").strip()
    if not host:
        return DEFAULT_BASE_URL
    if host.startswith(("http://", "https://")):
        return host
    scheme = str(_extra(extras, "scheme") or "https")
    url = f"{scheme}://{host}"
    if conn.port:
        url += f":{conn.port}"
    if conn.schema:
        url += f"/{conn.schema.strip('/')}"
    return url


def config_from_connection(conn: Connection) -> RunwareConfig:
    """The core's client settings from an Airflow connection (no request is made).

    Raises:
        ValueError: an extra or the host is not valid, with the connection id and the field.

    Example:
        >>> from airflow.sdk import Connection
        >>> conn = Connection(conn_id="c", conn_type="flux_erase", host="127.0.0.1", port=8080,
        ...                   schema="v1", password="rk-secret", extra='{"scheme": "http"}')
        >>> config = config_from_connection(conn)
        >>> config.base_url, config.has_key, "rk-secret" in repr(config)
        ('http://127.0.0.1:8080/v1', True, False)
    """
    try:
        extras = conn.extra_dejson
    except Exception:  # Airflow logs and returns {} for bad JSON in most versions; be sure
        extras = {}
    if not isinstance(extras, Mapping):
        extras = {}
    fields: dict[str, Any] = {
        "api_key": SecretStr(conn.password) if conn.password else None,
        "base_url": _base_url(conn, extras),
    }
    for name in EXTRA_FIELDS:
        value = _extra(extras, name)
        if value is not None:
            fields[name] = value
    try:
        return RunwareConfig(**fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'connection'}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False)
        )
        raise ValueError(
            f"Airflow connection {conn.conn_id!r} ({CONNECTION_TYPE}) is not valid: {problems}. "
            "Fix its Base URL (host) or its extra fields (timeout, connect_timeout, max_retries)."
        ) from None


class FluxEraseHook(BaseHook):
    """Reads a ``flux_erase`` connection and opens Runware clients from it.

    Args:
        flux_erase_conn_id: The connection id (default ``flux_erase_default``).

    Example:
        ```python
        hook = FluxEraseHook("flux_erase_default")
        config = hook.get_conn()                  # RunwareConfig; the key stays a SecretStr
        async with hook.get_client() as client:   # a RunwareClient
            outcome = await client.submit([task])
        ```
    """

    conn_name_attr = "flux_erase_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONNECTION_TYPE
    hook_name = INTEGRATION

    def __init__(self, flux_erase_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.flux_erase_conn_id = flux_erase_conn_id

    def __repr__(self) -> str:
        return f"FluxEraseHook(flux_erase_conn_id={self.flux_erase_conn_id!r})"

    def get_conn(self) -> RunwareConfig:
        """The connection's settings as a ``RunwareConfig`` (synchronous: tasks, not triggers).

        Example:
            ```python
            config = FluxEraseHook().get_conn()
            ```
        """
        return config_from_connection(self.get_connection(self.flux_erase_conn_id))

    async def aget_conn(self) -> RunwareConfig:
        """:meth:`get_conn` for async code: a trigger must use this one (a synchronous
        connection lookup inside the triggerer's event loop fails on Airflow 3).

        Example:
            ```python
            config = await FluxEraseHook(conn_id).aget_conn()
            ```
        """
        return config_from_connection(await self.aget_connection(self.flux_erase_conn_id))

    def get_client(self, **overrides: Any) -> RunwareClient:
        """A new ``RunwareClient`` for this connection (close it, e.g. with ``async with``).

        Without an API key it raises ``AuthenticationError`` with code ``missingApiKey``.

        Example:
            ```python
            async with FluxEraseHook().get_client() as client:
                items = await client.run(task)
            ```
        """
        return self.get_conn().open_client(**overrides)

    def test_connection(self) -> tuple[bool, str]:
        """The UI's "Test" button: asks ``getResponse`` about a task that does not exist.

        That costs nothing and needs a valid key: the API answers "not found" to a good key and
        refuses a bad one.

        Example:
            ```python
            ok, message = FluxEraseHook().test_connection()
            ```
        """
        import asyncio
        import uuid

        from prefect_flux_erase.runware.errors import RunwareError, TaskNotFoundError
        from prefect_flux_erase.runware.polling import PollPolicy

        probe = str(uuid.uuid4())

        async def ask() -> RunwareError | None:
            once = PollPolicy(initial_delay=0.0, timeout=0.0)
            async with self.get_client(max_retries=0) as client:
                outcome = (await client.poll({probe: 1}, policy=once))[probe]
            return outcome.error

        try:
            config = self.get_conn()
            error = asyncio.run(ask())
        except (RunwareError, ValueError) as exc:
            return False, f"{type(exc).__name__}: {exc}"
        if error is None or isinstance(error, TaskNotFoundError):
            return True, f"{config.base_url} accepted the API key"
        return False, f"{type(error).__name__} ({error.code}): {error}"

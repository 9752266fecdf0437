"""Prefect for `flux-erase` runs: a home of its own unless you configured Prefect, and blocks.

Everything here runs before Prefect is imported (its settings are read at import), except
:func:`load_block`, which is the first thing that imports it.

Unless you configured Prefect — ``PREFECT_API_URL``, ``PREFECT_HOME``, ``PREFECT_PROFILE``,
``PREFECT_PROFILES_PATH``, a ``~/.prefect/profiles.toml`` or a ``prefect.toml`` here — a CLI run
keeps Prefect's state (the temporary server's database) in a home of its own
(``~/.cache/flux-erase/prefect`` for ``run``, ``{out}/.prefect`` for ``demo``), with telemetry
off and Prefect's own logs at WARNING: nothing reads your profiles or migrates your
``~/.prefect`` database, nothing reaches for the network, and the terminal shows the run.

Example:
    ```python
    where = use_cli_prefect_home(default_prefect_home())
    print(where)   # "Prefect: state in /home/me/.cache/flux-erase/prefect (...)"
    ```
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

#: Environment variables that mean "I configured Prefect": the CLI leaves Prefect alone then.
PREFECT_CONFIG_ENV = ("PREFECT_API_URL", "PREFECT_HOME", "PREFECT_PROFILE", "PREFECT_PROFILES_PATH")


class BlockNotFound(LookupError):
    """A block named on the command line is not saved where Prefect looked.

    Example:
        >>> str(BlockNotFound("--credentials-block", "runware-credentials", "prod", "here"))[:35]
        '--credentials-block: no runware-cre'
    """

    def __init__(self, flag: str, slug: str, name: str, where: str) -> None:
        super().__init__(
            f"{flag}: no {slug} block named {name!r} ({where}); check the name with "
            f"`prefect block ls`, or create it (README, Blocks)"
        )


def user_configured_prefect(cwd: str | None = None) -> bool:
    """Whether the user configured Prefect (environment, a profiles file, a ``prefect.toml``).

    Example:
        >>> import os; os.environ.get("PREFECT_API_URL") is None or user_configured_prefect()
        True
    """
    if any(os.environ.get(name) for name in PREFECT_CONFIG_ENV):
        return True
    if (Path.home() / ".prefect" / "profiles.toml").is_file():
        return True
    return (Path(cwd or os.getcwd()) / "prefect.toml").is_file()


def default_prefect_home() -> str:
    """Where ``flux-erase run`` keeps Prefect's state: ``$XDG_CACHE_HOME/flux-erase/prefect``
    (``~/.cache/flux-erase/prefect``). It persists, so only the first run migrates a database.

    Example:
        >>> default_prefect_home().endswith(os.path.join("flux-erase", "prefect"))
        True
    """
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return os.path.join(cache, "flux-erase", "prefect")


def use_cli_prefect_home(home: str, *, yours: bool = False) -> str:
    """Set Prefect up for a CLI run (before it is imported); return the line saying where its
    state lives.

    With ``yours`` (a block was named: it lives in your Prefect) or a configured Prefect,
    nothing changes. Otherwise Prefect gets ``home`` (created first: Prefect warns when it
    cannot create it), no telemetry, and logs from WARNING up unless you set their level.

    Example:
        ```python
        print(use_cli_prefect_home("/tmp/demo/.prefect"))
        ```
    """
    # A temporary server's first start (bytecode, migrations) can outlast Prefect's 20 s.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    if yours or user_configured_prefect():
        url = os.environ.get("PREFECT_API_URL")
        if url:
            from prefect_flux_erase.runware.redaction import redact_url

            return f"Prefect: your API at {redact_url(url)}"
        where = os.environ.get("PREFECT_HOME") or "~/.prefect"
        return f"Prefect: your settings (state in {where})"
    home = os.path.abspath(home)
    os.makedirs(home, exist_ok=True)
    os.environ["PREFECT_HOME"] = home
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    return (
        f"Prefect: state in {home} (a home of its own; set PREFECT_API_URL or a Prefect "
        "profile to use yours)"
    )


def load_block(kind: str, name: str, flag: str) -> Any:
    """Load the saved ``RunwareCredentials`` (``kind="credentials"``) or ``FluxEraseSettings``
    block called ``name``.

    Raises:
        BlockNotFound: no such block where Prefect looked.

    Example:
        ```python
        creds = load_block("credentials", "prod", "--credentials-block")
        ```
    """
    from prefect_flux_erase.blocks import FluxEraseSettings, RunwareCredentials

    block_type: Any = RunwareCredentials if kind == "credentials" else FluxEraseSettings
    try:
        return block_type.load(name)
    except ValueError as exc:
        if "Unable to find block document" not in str(exc):
            raise
        url = os.environ.get("PREFECT_API_URL")
        where = f"on {url}" if url else f"in {os.environ.get('PREFECT_HOME') or '~/.prefect'}"
        raise BlockNotFound(flag, block_type.get_block_type_slug(), name, where) from None

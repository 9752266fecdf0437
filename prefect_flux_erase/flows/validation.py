"""Checks of a run's options before any work: clear errors, raised before a row is touched."""

from __future__ import annotations

from prefect_flux_erase.blocks.credentials import API_KEY_ENV, RunwareCredentials
from prefect_flux_erase.shards.job import BACKENDS, DEFAULT_POLL_TIMEOUT


class RunConfigError(ValueError):
    """An option of the run is invalid; the message says which and what to use instead.

    Example:
        >>> str(RunConfigError("shard_size must be >= 1; got 0"))
        'shard_size must be >= 1; got 0'
    """


def check_run_options(
    *,
    backend: str,
    shard_size: int,
    concurrency: int,
    max_shards_in_flight: int,
    max_attempts: int,
    max_failed_fraction: float,
    poll_timeout: float = DEFAULT_POLL_TIMEOUT,
) -> None:
    """Raise :class:`RunConfigError` for the first invalid option.

    Example:
        >>> check_run_options(backend="local", shard_size=100, concurrency=16,
        ...                   max_shards_in_flight=4, max_attempts=3, max_failed_fraction=0.0)
        >>> check_run_options(backend="cloud", shard_size=100, concurrency=16,  # doctest: +ELLIPSIS
        ...                   max_shards_in_flight=4, max_attempts=3, max_failed_fraction=0.0)
        Traceback (most recent call last):
        ...
        prefect_flux_erase.flows.validation.RunConfigError: backend must be 'local' or ...
    """
    if backend not in BACKENDS:
        raise RunConfigError(f"backend must be 'local' or 'runware'; got {backend!r}")
    for name, value in (
        ("shard_size", shard_size),
        ("concurrency", concurrency),
        ("max_shards_in_flight", max_shards_in_flight),
        ("max_attempts", max_attempts),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise RunConfigError(f"{name} must be an integer >= 1; got {value!r}")
    if not 0.0 <= max_failed_fraction <= 1.0:
        raise RunConfigError(
            f"max_failed_fraction must be between 0 and 1; got {max_failed_fraction!r}"
        )
    if not poll_timeout > 0:
        raise RunConfigError(f"poll_timeout must be > 0 seconds; got {poll_timeout!r}")


def resolve_credentials(
    backend: str, credentials: RunwareCredentials | None
) -> RunwareCredentials | None:
    """The credentials a run uses: given, or from the environment; ``None`` for ``local``.

    Raises:
        RunConfigError: ``runware`` without an API key anywhere.

    Example:
        >>> resolve_credentials("local", None) is None
        True
    """
    if backend != "runware":
        return None
    resolved = credentials or RunwareCredentials()
    if resolved.api_key is None or not resolved.api_key.get_secret_value():
        raise RunConfigError(
            "the runware backend needs an API key: pass credentials=RunwareCredentials(...), "
            f"load a saved block, or set {API_KEY_ENV} (use backend='local' to run offline)"
        )
    return resolved


def check_concurrency_limit(name: str | None, concurrency: int) -> None:
    """Refuse a run whose shards could never acquire the named global concurrency limit.

    Each shard stage occupies ``concurrency`` slots; a limit smaller than that would make
    Prefect reject every acquisition. A limit that does not exist is only warned about by
    Prefect (``strict=False``), as for any other flow.

    Example:
        ```python
        check_concurrency_limit("runware-api", 16)   # inside a flow run
        ```
    """
    if name is None:
        return
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            limit = client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            return
    if limit.limit < concurrency:
        raise RunConfigError(
            f"concurrency {concurrency} is above the global concurrency limit {name!r} "
            f"({limit.limit} slots): each shard occupies `concurrency` slots, so lower "
            "concurrency or raise the limit"
        )

"""The Prefect-only check of a run: its global concurrency limit can be acquired.

Every other option is checked by the core (:meth:`~prefect_flux_erase.run.spec.RunSpec.check`).
"""

from __future__ import annotations

from prefect_flux_erase.run.spec import RunConfigError


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

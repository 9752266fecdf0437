"""The Airflow face: a provider (connection type, hook, trigger, operators) over the same core.

Nothing here is imported by ``import prefect_flux_erase``; this package itself imports no Airflow
until one of its names is used, so the provider entry point
(:func:`~prefect_flux_erase.airflow.provider_info.get_provider_info`) loads without Airflow's
modules. The faces' roles:

- :mod:`~prefect_flux_erase.airflow.hooks`: the ``flux_erase`` connection type and
  :class:`FluxEraseHook`, which turns a connection into the core's ``RunwareConfig``.
- :mod:`~prefect_flux_erase.airflow.triggers`: :class:`FluxEraseTrigger`, the async
  ``getResponse`` wait of a deferred task.
- :mod:`~prefect_flux_erase.airflow.operators`: :class:`FluxEraseImageOperator`, one image,
  deferrable.
- :mod:`~prefect_flux_erase.airflow.manifest`: the manifest tasks (plan → mapped shards →
  finalize with an ``Asset`` outlet) and :func:`flux_erase_manifest`, which wires them.
- :mod:`~prefect_flux_erase.airflow.single_image`: the Airflow-free steps of one image (prepare,
  submit, collect, write) that the operator and the trigger share.

Install with ``pip install 'prefect-flux-erase[airflow]'``.

Example:
    ```python
    from prefect_flux_erase.airflow import FluxEraseImageOperator, flux_erase_manifest
    ```
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prefect_flux_erase.airflow.hooks import FluxEraseHook
    from prefect_flux_erase.airflow.manifest import (
        FluxEraseFinalizeOperator,
        FluxErasePlanOperator,
        FluxEraseShardOperator,
        flux_erase_manifest,
    )
    from prefect_flux_erase.airflow.operators import FluxEraseImageOperator
    from prefect_flux_erase.airflow.triggers import FluxEraseTrigger

__all__ = [
    "FluxEraseFinalizeOperator",
    "FluxEraseHook",
    "FluxEraseImageOperator",
    "FluxErasePlanOperator",
    "FluxEraseShardOperator",
    "FluxEraseTrigger",
    "flux_erase_manifest",
]

_HOMES = {
    "FluxEraseHook": "hooks",
    "FluxEraseTrigger": "triggers",
    "FluxEraseImageOperator": "operators",
    "FluxErasePlanOperator": "manifest",
    "FluxEraseShardOperator": "manifest",
    "FluxEraseFinalizeOperator": "manifest",
    "flux_erase_manifest": "manifest",
}


def __getattr__(name: str) -> Any:
    # Import Airflow only when a name that needs it is used (PEP 562).
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    try:
        module = importlib.import_module(f"{__name__}.{home}")
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] != "airflow":
            raise
        raise ModuleNotFoundError(
            f"{name} needs Apache Airflow 3.2 or later: pip install 'prefect-flux-erase[airflow]'",
            name=exc.name,
        ) from exc
    return getattr(module, name)

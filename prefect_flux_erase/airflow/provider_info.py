"""The provider's metadata for Airflow (the ``apache_airflow_provider`` entry point).

Airflow calls :func:`get_provider_info` to list the provider, its hook, trigger and operator
modules and the ``flux_erase`` connection type. Since Airflow 3.2 the connection form (labels,
hidden fields, the extra fields for timeouts and retries) is declared here rather than by hook
methods. This module imports nothing from Airflow: Airflow loads it while it discovers providers.

Example:
    >>> info = get_provider_info()
    >>> info["package-name"], info["connection-types"][0]["connection-type"]
    ('prefect-flux-erase', 'flux_erase')
"""

from __future__ import annotations

from typing import Any

from prefect_flux_erase._version import __version__

INTEGRATION = "FLUX Erase (Runware)"
CONNECTION_TYPE = "flux_erase"
DEFAULT_CONN_ID = "flux_erase_default"
_MODULE = "prefect_flux_erase.airflow"


def _conn_fields() -> dict[str, Any]:
    # The RunwareConfig fields that are not host or key, with its defaults and ranges.
    return {
        "timeout": {
            "label": "Timeout (s)",
            "description": "Seconds to wait for one HTTP response from the API.",
            "schema": {"type": ["number", "null"], "minimum": 0.001, "default": 120},
        },
        "connect_timeout": {
            "label": "Connect timeout (s)",
            "description": "Seconds to wait for a connection to open.",
            "schema": {"type": ["number", "null"], "minimum": 0.001, "default": 10},
        },
        "max_retries": {
            "label": "Max retries",
            "description": "Retries of one request after a transient fault (429, 5xx, reset).",
            "schema": {"type": ["integer", "null"], "minimum": 0, "maximum": 20, "default": 5},
        },
    }


def get_provider_info() -> dict[str, Any]:
    """Everything Airflow needs to list this provider and build its connection form.

    Example:
        >>> info = get_provider_info()
        >>> info["connection-types"][0]["ui-field-behaviour"]["relabeling"]["password"]
        'API key'
    """
    modules = {
        "hooks": [f"{_MODULE}.hooks"],
        "triggers": [f"{_MODULE}.triggers"],
        "operators": [f"{_MODULE}.operators", f"{_MODULE}.manifest"],
    }
    return {
        "package-name": "prefect-flux-erase",
        "name": INTEGRATION,
        "description": (
            "Object removal with Black Forest Labs' FLUX Erase on the Runware API: one image "
            "(deferrable) or a whole Parquet manifest (dynamic task mapping), resumable, each "
            "result billed once."
        ),
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": "https://runware.ai/docs/en/image-inference/api-reference",
                "tags": ["service"],
            }
        ],
        **{
            kind: [{"integration-name": INTEGRATION, "python-modules": names}]
            for kind, names in modules.items()
        },
        "connection-types": [
            {
                "connection-type": CONNECTION_TYPE,
                "hook-class-name": f"{_MODULE}.hooks.FluxEraseHook",
                "hook-name": INTEGRATION,
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "login"],
                    "relabeling": {"host": "Base URL", "password": "API key"},
                    "placeholders": {
                        "host": "https://api.runware.ai/v1 (or the flux-erase emulator's URL)",
                        "password": "your Runware API key",
                    },
                },
                "conn-fields": _conn_fields(),
            }
        ],
    }

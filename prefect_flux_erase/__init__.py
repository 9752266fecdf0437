"""prefect-flux-erase: FLUX Erase (``bfl:flux@erase``) on Runware as a Prefect 3 pipeline.

Public names are loaded lazily so that the Prefect-free core (``prefect_flux_erase.runware``,
``prefect_flux_erase.engine``, the emulator) imports without importing Prefect; so do the front
door's names (``run_manifest``, ``TooManyFailedRows``, ``ShardsFailed``, ``EraseSummary``).

Example:
    >>> import prefect_flux_erase
    >>> prefect_flux_erase.__version__
    '0.1.0'
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from prefect_flux_erase._version import __version__

# Arrow's allocator is chosen once, when pyarrow loads: the pipeline's Arrow work is small
# batches from many threads, where mimalloc (pyarrow's default) kept segments that grew with
# the manifest and the C library's allocator stays flat (benchmarks/memory.py). A choice the
# user made through ARROW_DEFAULT_MEMORY_POOL is kept; if pyarrow is already loaded, nothing
# changes (docs/concepts/manifests.md, "Memory").
if "pyarrow" not in sys.modules:
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "RunwareCredentials": "prefect_flux_erase.blocks",
    "FluxEraseSettings": "prefect_flux_erase.blocks",
    "erase_manifest": "prefect_flux_erase.flows",
    "erase_images": "prefect_flux_erase.flows",
    "EraseSummary": "prefect_flux_erase.results.summary",
    "run_manifest": "prefect_flux_erase.run",
    "arun_manifest": "prefect_flux_erase.run",
    "TooManyFailedRows": "prefect_flux_erase.run",
    "ShardsFailed": "prefect_flux_erase.run",
    "submit_erase": "prefect_flux_erase.tasks",
    "poll_erase": "prefect_flux_erase.tasks",
    "upload_erased": "prefect_flux_erase.tasks",
    "erase_image": "prefect_flux_erase.tasks",
    "aerase_image": "prefect_flux_erase.tasks",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'prefect_flux_erase' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""A Runware REST API emulator for FLUX Erase: a Prefect-free tool for offline runs and tests.

Shaped like moto's server mode: an in-memory backend (state and rules), a thin HTTP layer
(Starlette on uvicorn), and an introspection API (``/_emulator/...``). It speaks Runware's REST
protocol for ``bfl:flux@erase`` (the project's RUNWARE_API reference; its §11 open points are
switches in :class:`EmulatorConfig`): sync and async delivery, cumulative ``getResponse``, every
``outputType``, webhooks, ``uploadEndpoint``, uploads, costs, conflicts and error envelopes, plus
seeded fault injection and a billing ledger.

Layout: ``config`` (switches), ``protocol`` (reading requests), ``envelopes`` (reply shapes),
``backend`` / ``submission`` / ``media_tasks`` / ``runner`` / ``records`` (state and rules),
``store``, ``ledger``, ``stats``, ``faults``, ``inputs``, ``uploads``, ``webhooks``, ``engines``
(no HTTP server in any of them); ``app`` (Starlette), ``protocols`` and ``server`` (uvicorn),
``command`` (the ``flux-erase emulator`` CLI).

Example:
    ```python
    from prefect_flux_erase.emulator import EmulatorConfig, serve_in_thread

    with serve_in_thread(EmulatorConfig(latency=0.0, seed=0)) as emu:
        client = httpx.Client(base_url=emu.url, headers={"Authorization": "Bearer any-key"})
        emu.stats()["tasks_accepted"]
    ```
"""

from prefect_flux_erase.emulator.backend import EmulatorBackend
from prefect_flux_erase.emulator.config import FAULT_KINDS, EmulatorConfig, EngineFn
from prefect_flux_erase.emulator.engines import EngineUnavailableError, resolve_engine
from prefect_flux_erase.emulator.server import EmulatorServer, serve, serve_in_thread

__all__ = [
    "FAULT_KINDS",
    "EmulatorBackend",
    "EmulatorConfig",
    "EmulatorServer",
    "EngineFn",
    "EngineUnavailableError",
    "resolve_engine",
    "serve",
    "serve_in_thread",
]

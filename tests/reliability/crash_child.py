"""The run the crash test kills: ``python -m tests.reliability.crash_child MANIFEST OUTPUT URL``.

The test calls :func:`run` again in its own process with the same arguments, so both runs have
the same run key.
"""

from __future__ import annotations

import sys
from typing import Any

from prefect_flux_erase.blocks import RunwareCredentials
from prefect_flux_erase.flows import erase_manifest
from prefect_flux_erase.runware.polling import PollPolicy

SHARD_SIZE = 50
KEY = "rk-crash-test"
POLL = PollPolicy(initial_delay=0.02, interval=0.02, multiplier=1.5, max_interval=0.2)


def run(manifest: str, output: str, url: str) -> Any:
    """Erase the manifest on the emulator at ``url``; return the flow's final state."""
    return erase_manifest(
        manifest,
        output,
        backend="runware",
        credentials=RunwareCredentials(api_key=KEY, base_url=url),
        shard_size=SHARD_SIZE,
        concurrency=25,
        max_shards_in_flight=2,
        poll_policy=POLL,
        report=False,
        # The rows cycle over a few photos: one task per row, as a crash test needs.
        dedupe=False,
        return_state=True,
    )


if __name__ == "__main__":
    state = run(*sys.argv[1:4])
    sys.exit(0 if state.is_completed() else 1)

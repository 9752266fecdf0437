"""A flow that loads saved blocks by name and erases with them, run as its own process.

The server test runs it in a subprocess pointed at the server (``PREFECT_API_URL``), as a worker
would run a deployment: the test process's own Prefect client never talks to that server, so
nothing of it outlives the server. Prints the summary and the flow run's id as JSON.

Example:
    ```bash
    PREFECT_API_URL=http://127.0.0.1:PORT/api python -m tests.ecosystem.saved_blocks_flow \
        creds-1 settings-1 OUTPUT IMAGE MASK [IMAGE MASK ...]
    ```
"""

from __future__ import annotations

import json
import sys

from prefect import flow
from prefect.context import get_run_context

from prefect_flux_erase import EraseSummary, FluxEraseSettings, RunwareCredentials, erase_images


@flow(name="erase-with-saved-blocks")
def erase_with_saved_blocks(
    credentials_block: str, settings_block: str, pairs: list[tuple[str, str]], output: str
) -> dict[str, object]:
    """Load both blocks by name, as a deployed flow would, and erase the pairs with them.

    Example:
        ```python
        erase_with_saved_blocks("prod", "hair-and-fur", [("a.jpg", "a.png")], "out")
        ```
    """
    credentials = RunwareCredentials.load(credentials_block)
    settings = FluxEraseSettings.load(settings_block)
    summary = erase_images(
        pairs, output, backend="runware", credentials=credentials, settings=settings
    )
    assert isinstance(summary, EraseSummary)
    flow_run = get_run_context().flow_run  # type: ignore[union-attr]
    return {"summary": summary.as_dict(), "flow_run_id": str(flow_run.id if flow_run else "")}


def main(argv: list[str]) -> int:
    """Run the flow with ``CREDS SETTINGS OUTPUT IMAGE MASK...``; print its result as JSON.

    Example:
        ```python
        main(["creds-1", "settings-1", "out", "a.jpg", "a.png"])
        ```
    """
    credentials_block, settings_block, output, *files = argv
    pairs = list(zip(files[::2], files[1::2], strict=True))
    print(json.dumps(erase_with_saved_blocks(credentials_block, settings_block, pairs, output)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""``python -m prefect_flux_erase.cli``: the `flux-erase` command.

Example:
    ```bash
    python -m prefect_flux_erase.cli demo
    ```
"""

from prefect_flux_erase.cli import main

raise SystemExit(main())

"""``python -m prefect_flux_erase.cli``: the `flux-erase` command.

Example:
    ```bash
    python -m prefect_flux_erase.cli demo
    ```
"""

from prefect_flux_erase.cli import main

if __name__ == "__main__":  # imported by tools that walk the package: do nothing then
    raise SystemExit(main())

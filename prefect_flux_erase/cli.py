"""The `flux-erase` command: `run`, `manifest`, `demo` and `emulator`.

Example:
    ```bash
    flux-erase emulator --host 127.0.0.1 --port 0
    ```
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

USAGE = """usage: flux-erase {run,manifest,demo,emulator} ...

  run        erase every row of a Parquet manifest
  manifest   pair image and mask files by stem into a manifest
  demo       erase a small bundled sample offline and print where the results are
  emulator   serve the Runware REST API on loopback over the local engine
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `flux-erase` console script; returns the exit code.

    Example:
        >>> main(["--help"])  # doctest: +ELLIPSIS
        usage: flux-erase ...
        0
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "emulator":
        from prefect_flux_erase.emulator.command import main as emulator_main

        return emulator_main(rest)
    print(f"flux-erase: unknown command {command!r}\n{USAGE}", file=sys.stderr, end="")
    return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

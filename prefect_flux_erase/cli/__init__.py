"""The `flux-erase` command: `run`, `estimate`, `manifest`, `demo`, `emulator`, `--version`.

`run` checks everything cheap before Prefect starts — every option (through
:meth:`~prefect_flux_erase.run.spec.RunSpec.check`, the one place options are validated), the
API key, the manifest's existence, format and columns (its Parquet footers only) — and reports a
mistake once, in a line naming the flag to fix, in about a second. Only then does it set up
Prefect (:mod:`~prefect_flux_erase.cli.prefect_home`) and run the flow. The modules:
:mod:`~prefect_flux_erase.cli.run_command`, :mod:`~prefect_flux_erase.cli.file_commands`
(``manifest``, ``demo``), :mod:`~prefect_flux_erase.cli.cost_commands` (``estimate``, the
money flags), :mod:`~prefect_flux_erase.cli.words` (parsing, messages in flags),
:mod:`~prefect_flux_erase.cli.progress_view`, :mod:`~prefect_flux_erase.cli.prefect_home`,
:mod:`~prefect_flux_erase.cli.stops` (Ctrl-C).

Exit codes of ``run``: 0 the run completed; 1 rows failed beyond ``--max-failed-fraction`` (or
shards could not be processed); 2 a usage or configuration error, with a message saying what to
fix; 3 the run stopped early with one message saying what to fix — the cost cap
(``--max-cost``) left rows unsent (rerun with a higher cap to continue), or a run-level fault
(the API unreachable, the key rejected, no credits); 130 the run was interrupted (Ctrl-C,
SIGTERM: the first one stops it cleanly, a second exits at once; see
:mod:`~prefect_flux_erase.cli.stops`). After 3 and 130 what was done is committed, and after a
fault or an interruption the command to resume is printed.
Of ``manifest``: 0 written; 1 files left unpaired (listed; nothing written); 2 a usage error or
a folder that cannot be read.

Example:
    ```bash
    flux-erase manifest --images s3://bucket/photos --masks s3://bucket/masks --out m.parquet
    flux-erase run m.parquet --output s3://bucket/erased --backend runware --dilate-pixels 15
    flux-erase demo
    flux-erase emulator --host 127.0.0.1 --port 0
    ```
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from prefect_flux_erase._version import __version__
from prefect_flux_erase.cli.cost_commands import estimate_parser, run_estimate
from prefect_flux_erase.cli.file_commands import (
    cmd_demo,
    cmd_manifest,
    demo_parser,
    manifest_parser,
)
from prefect_flux_erase.cli.run_command import cmd_run, run_parser
from prefect_flux_erase.cli.words import Parser, UsageError, cli_error, is_config_error

__all__ = ["COMMANDS", "USAGE", "UsageError", "main", "run_parser"]

USAGE = """usage: flux-erase {run,estimate,manifest,demo,emulator} ... | --version

  run        erase every row of a Parquet manifest
  estimate   what erasing a manifest on the API will cost (image headers only, no request)
  manifest   pair image and mask files by stem into a manifest
  demo       erase a small bundled sample offline and print where the results are
  emulator   serve the Runware REST API on loopback over the local engine
"""


def cmd_estimate(argv: Sequence[str]) -> int:
    """``flux-erase estimate``: print what a manifest will cost on the API; exit 0 or 2.

    Example:
        ```bash
        flux-erase estimate s3://bucket/m.parquet --number-results 2 --max-cost 25
        ```
    """
    return run_estimate(estimate_parser(Parser).parse_args(list(argv)))


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "run": cmd_run,
    "estimate": cmd_estimate,
    "manifest": cmd_manifest,
    "demo": cmd_demo,
}
PARSERS: dict[str, Callable[[], argparse.ArgumentParser]] = {
    "run": run_parser,
    "estimate": lambda: estimate_parser(Parser),
    "manifest": manifest_parser,
    "demo": demo_parser,
}


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
    if args[0] in ("--version", "-V"):
        print(f"flux-erase {__version__}")
        return 0
    command, rest = args[0], args[1:]
    if command == "emulator":
        from prefect_flux_erase.emulator.command import main as emulator_main

        return emulator_main(rest)
    handler = COMMANDS.get(command)
    if handler is None:
        print(f"flux-erase: unknown command {command!r}\n{USAGE}", file=sys.stderr, end="")
        return 2
    # Without a PREFECT_API_URL, flows start a temporary local server; its first start on a
    # fresh install (bytecode, database migrations) can outlast Prefect's 20 s default.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    if any(a in ("-h", "--help") for a in rest):
        PARSERS[command]().print_help()
        return 0
    try:
        return handler(rest)
    except UsageError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except Exception as exc:
        if is_config_error(exc):
            print(f"flux-erase {command}: {cli_error(exc)}", file=sys.stderr)
            return 2
        raise

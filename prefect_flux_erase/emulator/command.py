"""``flux-erase emulator``: serve the Runware REST API on loopback until SIGINT or SIGTERM.

Example:
    ```bash
    flux-erase emulator --port 0 --latency 0.2 --fault http_429=0.05 --seed 7 --api-key k1
    # Runware emulator serving http://127.0.0.1:PORT/v1
    ```
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from prefect_flux_erase.emulator.backend import EmulatorBackend
from prefect_flux_erase.emulator.config import FAULT_KINDS, EmulatorConfig
from prefect_flux_erase.emulator.server import bind, serve


def _fault(text: str) -> tuple[str, float]:
    kind, sep, rate = text.partition("=")
    if not sep or kind not in FAULT_KINDS:
        raise argparse.ArgumentTypeError(
            f"expected KIND=RATE with KIND one of {', '.join(FAULT_KINDS)}; got {text!r}"
        )
    try:
        return kind, float(rate)
    except ValueError:
        raise argparse.ArgumentTypeError(f"rate must be a number; got {rate!r}") from None


def _latency(text: str) -> float | tuple[float, float]:
    low, sep, high = text.partition(",")
    try:
        return (float(low), float(high)) if sep else float(low)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SECONDS or MIN,MAX; got {text!r}") from None


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def parser() -> argparse.ArgumentParser:
    """The command's argument parser.

    Example:
        >>> parser().parse_args(["--latency", "0.1,0.3"]).latency
        (0.1, 0.3)
    """
    p = argparse.ArgumentParser(
        prog="flux-erase emulator",
        description="Serve the Runware REST API for bfl:flux@erase on loopback, over a local "
        "engine, with fault injection and a billing ledger (GET /_emulator/stats).",
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default 0)")
    p.add_argument(
        "--engine", choices=("echo", "local"), default="echo", help="erase engine (default echo)"
    )
    p.add_argument(
        "--latency",
        type=_latency,
        default=0.0,
        help="seconds per result: fixed (0.2) or a random range (0.1,0.5); default 0",
    )
    p.add_argument(
        "--fault",
        type=_fault,
        action="append",
        default=[],
        metavar="KIND=RATE",
        help=f"inject a fault with this probability; kinds: {', '.join(FAULT_KINDS)}",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    p.add_argument(
        "--api-key",
        action="append",
        default=[],
        dest="api_keys",
        metavar="KEY",
        help="accept only this key (repeatable); default: any non-empty key",
    )
    p.add_argument(
        "--retry-after", type=float, default=1.0, help="Retry-After of injected 429s (seconds)"
    )
    p.add_argument(
        "--charge-reference-image",
        action="store_true",
        help="also bill the input as a reference image, $0.004/MP (unsettled; default: not)",
    )
    p.add_argument(
        "--no-dry-run",
        action="store_true",
        help="ignore 'X-Runware-Dry-Run: 1' and run such tasks (unsettled; default: honoured)",
    )
    return p


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    """Build the config the parsed arguments describe.

    Example:
        >>> config_from_args(parser().parse_args(["--fault", "http_503=0.1"])).faults
        {'http_503': 0.1}
        >>> args = parser().parse_args(["--charge-reference-image"])
        >>> config_from_args(args).charge_reference_image
        True
    """
    options: dict[str, Any] = {
        "engine": args.engine,
        "latency": args.latency,
        "faults": dict(args.fault),
        "seed": args.seed,
        "retry_after": args.retry_after,
        "charge_reference_image": args.charge_reference_image,
        "dry_run_supported": not args.no_dry_run,
    }
    if args.api_keys:
        options["api_keys"] = frozenset(args.api_keys)
    return EmulatorConfig(**options)


def main(argv: Sequence[str]) -> int:
    """Run the emulator in the foreground; return the exit code.

    Example:
        ```python
        main(["--port", "8765", "--latency", "0.2"])  # serves until Ctrl-C
        ```
    """
    args = parser().parse_args(list(argv))
    try:
        config = config_from_args(args)
    except ValidationError as exc:
        print(f"flux-erase emulator: {exc}", file=sys.stderr)
        return 2
    try:
        sock = bind(args.host, args.port)
    except OSError as exc:
        print(f"flux-erase emulator: cannot bind {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1

    def announce(backend: EmulatorBackend, server: object) -> None:
        print(f"Runware emulator serving {backend.root}/v1", flush=True)

    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal to the handler
    # that was in place before it: make SIGTERM end like Ctrl-C, a clean exit, not a kill.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        asyncio.run(serve(config, sock, args.host, on_ready=announce))
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0

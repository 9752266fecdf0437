"""The `flux-erase` command: `run`, `manifest`, `demo` and `emulator`.

Exit codes: 0 the run completed; 1 rows failed beyond ``--max-failed-fraction`` (or shards could
not be processed); 2 a usage or configuration error, with a message saying what to fix; 3 the
cost cap (``--max-cost``) left rows unsent (rerun with a higher cap to continue).

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
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from prefect_flux_erase.cli_costs import (
    add_money_flags,
    cap_reached,
    estimate_parser,
    flag_message,
    money_options,
    run_estimate,
)
from prefect_flux_erase.shards.job import DEFAULT_POLL_TIMEOUT

USAGE = """usage: flux-erase {run,estimate,manifest,demo,emulator} ...

  run        erase every row of a Parquet manifest
  estimate   what erasing a manifest on the API will cost (image headers only, no request)
  manifest   pair image and mask files by stem into a manifest
  demo       erase a small bundled sample offline and print where the results are
  emulator   serve the Runware REST API on loopback over the local engine
"""


class UsageError(Exception):
    """A command-line mistake: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse would print usage and exit itself
        raise UsageError(f"{self.prog}: {message}")


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object, e.g. '{\"anon\": true}'")
    return value


def run_parser() -> argparse.ArgumentParser:
    """The ``flux-erase run`` argument parser.

    Example:
        >>> run_parser().parse_args(["m.parquet", "--output", "out"]).backend
        'local'
    """
    p = _Parser(prog="flux-erase run", description="Erase every row of a Parquet manifest.")
    p.add_argument("manifest", help="URI of the Parquet manifest (file, folder or glob)")
    p.add_argument("--output", required=True, help="URI of the output root")
    p.add_argument(
        "--backend",
        choices=("local", "runware"),
        default="local",
        help="local: the embedded engine, offline (default); runware: the API (RUNWARE_API_KEY)",
    )
    p.add_argument("--base-url", help="Runware endpoint (e.g. the emulator); runware backend")
    p.add_argument("--dilate-pixels", type=int, help="settings.dilatePixels, 0-50 (default 10)")
    p.add_argument(
        "--output-format",
        choices=("JPG", "PNG", "WEBP"),
        default="JPG",
        help="outputFormat of the erased images (default JPG; PNG/WEBP keep alpha)",
    )
    p.add_argument("--output-quality", type=int, default=95, help="20-99 (default 95)")
    p.add_argument(
        "--output-type",
        choices=("URL", "base64Data", "dataURI"),
        default="URL",
        help="outputType: how the API returns results (default URL)",
    )
    p.add_argument("--number-results", type=int, default=1, help="results per row, 1-20")
    p.add_argument("--concurrency", type=int, default=16, help="rows in flight per shard")
    p.add_argument("--shard-size", type=int, default=100, help="rows per shard")
    p.add_argument(
        "--max-shards-in-flight", type=int, default=4, help="shards processed at once (default 4)"
    )
    p.add_argument("--storage-options", type=_json_object, help="fsspec options as JSON")
    p.add_argument("--output-storage-options", type=_json_object, help="fsspec options, output")
    p.add_argument(
        "--poll-timeout",
        type=float,
        default=DEFAULT_POLL_TIMEOUT,
        help=f"seconds a row may stay unfinished on the server before it fails "
        f"(default {DEFAULT_POLL_TIMEOUT:.0f})",
    )
    p.add_argument(
        "--max-failed-fraction",
        type=float,
        default=0.0,
        help="fraction of rows allowed to fail before the run counts as failed (default 0)",
    )
    p.add_argument("--image-column", default="image_uri", help="column of image URIs")
    p.add_argument("--mask-column", default="mask_uri", help="column of mask URIs")
    p.add_argument("--key-column", help="column of row keys (default: row_key if present)")
    p.add_argument("--no-report", action="store_true", help="skip report.html")
    p.add_argument("--engine", default="local", help="engine of the local backend (local, echo)")
    add_money_flags(p)
    return p


def _settings(args: argparse.Namespace) -> Any:
    from prefect_flux_erase.blocks import FluxEraseSettings

    options: dict[str, Any] = {
        "output_format": args.output_format,
        "output_quality": args.output_quality,
        "output_type": args.output_type,
        "number_results": args.number_results,
        "include_cost": True,
    }
    if args.dilate_pixels is not None:
        options["dilate_pixels"] = args.dilate_pixels
    return FluxEraseSettings(**options)


def _credentials(args: argparse.Namespace) -> Any:
    if args.backend != "runware":
        if args.base_url:
            raise UsageError("--base-url applies to --backend runware only; add --backend runware")
        return None
    from prefect_flux_erase.blocks import RunwareCredentials

    return RunwareCredentials(base_url=args.base_url) if args.base_url else RunwareCredentials()


class _ProgressView:
    """A rich progress bar on a terminal; plain lines otherwise. Always on stderr."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.tty = sys.stderr.isatty()
        self._bar: Any = None
        self._task: Any = None
        self._last = -1

    def __enter__(self) -> _ProgressView:
        if self.tty:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

            self._bar = Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
            )
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=None)
        return self

    def __call__(self, progress: Any) -> None:
        if progress.message:  # what the run will cost, said before the first row moves
            print(f"flux-erase: {progress.message}", file=sys.stderr, flush=True)
        if self._bar is not None:
            self._bar.update(
                self._task,
                total=progress.total_rows,
                completed=progress.done_rows,
                description=f"{self.label} ({progress.failed_rows} failed)",
            )
        elif progress.done_rows != self._last:
            self._last = progress.done_rows
            print(
                f"{self.label}: {progress.done_rows}/{progress.total_rows} rows "
                f"({progress.failed_rows} failed)",
                file=sys.stderr,
                flush=True,
            )

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


def _erase(manifest: str, output: str, label: str, **options: Any) -> tuple[int, Any]:
    """Run erase_manifest with a progress view; (exit code, summary or None)."""
    from prefect_flux_erase.flows import erase_manifest
    from prefect_flux_erase.run.progress import listen

    with _ProgressView(label) as view, listen(view):
        state = erase_manifest(manifest, output, return_state=True, **options)
    try:
        summary = state.result(raise_on_failure=False)
    except Exception:
        summary = None
    if state.is_completed():
        return 0, summary
    from prefect_flux_erase.run.manifest_run import TooManyFailedRows

    exc = summary if isinstance(summary, BaseException) else None
    if exc is not None and _is_config_error(exc):
        print(f"flux-erase: {exc}", file=sys.stderr)
        return 2, None
    print(f"flux-erase: {exc or state.message}", file=sys.stderr)
    capped = cap_reached(exc) if exc is not None else None
    if capped is not None:
        return capped
    if isinstance(exc, TooManyFailedRows):
        return 1, exc.summary
    return 1, None


def _is_config_error(exc: BaseException) -> bool:
    from pydantic import ValidationError

    from prefect_flux_erase.manifest.plan import ManifestError
    from prefect_flux_erase.run.spec import RunConfigError
    from prefect_flux_erase.runware.errors import AuthenticationError, InvalidOptionError

    return isinstance(
        exc,
        RunConfigError | ManifestError | InvalidOptionError | AuthenticationError | ValidationError,
    )


def _print_summary(summary: Any) -> None:
    if summary is None or isinstance(summary, BaseException):
        return
    print(summary.describe())
    if summary.report_uri:
        print(f"report: {summary.report_uri}")
    for code, count in sorted(summary.error_counts.items()):
        print(f"  {count} x {code}")


def cmd_run(argv: Sequence[str]) -> int:
    """``flux-erase run``: erase a manifest; exit 0, 1 (too many failed rows) or 2 (usage).

    Example:
        ```bash
        flux-erase run m.parquet --output out/ --backend runware --base-url http://127.0.0.1:8080/v1
        ```
    """
    args = run_parser().parse_args(list(argv))
    from prefect_flux_erase.run.spec import RunConfigError, RunSpec

    settings = _settings(args)
    credentials = _credentials(args)
    money = money_options(args)
    try:
        RunSpec(
            args.manifest,
            args.output,
            backend=args.backend,
            runware=credentials.to_config() if credentials is not None else None,
            shard_size=args.shard_size,
            concurrency=args.concurrency,
            max_shards_in_flight=args.max_shards_in_flight,
            max_failed_fraction=args.max_failed_fraction,
            poll_timeout=args.poll_timeout,
            image_column=args.image_column,
            mask_column=args.mask_column,
            **money,
        ).check()
    except RunConfigError as exc:
        raise RunConfigError(flag_message(exc), parameter=exc.parameter) from None
    where = f" at {credentials.base_url}" if credentials is not None else " (offline)"
    print(f"flux-erase: backend {args.backend}{where}", file=sys.stderr)
    code, summary = _erase(
        args.manifest,
        args.output,
        "erasing",
        backend=args.backend,
        credentials=credentials,
        settings=settings,
        image_column=args.image_column,
        mask_column=args.mask_column,
        key_column=args.key_column,
        storage_options=args.storage_options,
        output_storage_options=args.output_storage_options,
        shard_size=args.shard_size,
        concurrency=args.concurrency,
        max_shards_in_flight=args.max_shards_in_flight,
        max_failed_fraction=args.max_failed_fraction,
        poll_timeout=args.poll_timeout,
        report=not args.no_report,
        local_engine=args.engine,
        **{k: list(v) if isinstance(v, tuple) else v for k, v in money.items()},
    )
    _print_summary(summary)
    return code


def cmd_manifest(argv: Sequence[str]) -> int:
    """``flux-erase manifest``: pair images and masks by file stem into a Parquet manifest.

    Example:
        ```bash
        flux-erase manifest --images photos/ --masks masks/ --out manifest.parquet
        ```
    """
    p = _Parser(prog="flux-erase manifest", description="Pair images and masks by file stem.")
    p.add_argument("--images", required=True, help="folder URI of the photos")
    p.add_argument("--masks", required=True, help="folder URI of the masks (same stems)")
    p.add_argument("--out", required=True, help="URI of the manifest to write")
    p.add_argument("--storage-options", type=_json_object, help="fsspec options as JSON")
    args = p.parse_args(list(argv))
    from prefect_flux_erase.manifest.pairing import PairingError, build_manifest

    try:
        result = build_manifest(args.images, args.masks, args.out, args.storage_options)
    except PairingError as exc:
        print(f"flux-erase manifest: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {result.rows} rows to {result.manifest_uri or args.out}")
    for label, names in (
        ("images without a mask", result.unpaired_images),
        ("masks without an image", result.unpaired_masks),
    ):
        if names:
            print(f"{len(names)} {label}: {', '.join(names[:10])}", file=sys.stderr)
    return 0


def cmd_demo(argv: Sequence[str]) -> int:
    """``flux-erase demo``: erase the bundled sample photos offline; print where things are.

    Example:
        ```bash
        flux-erase demo --out flux-erase-demo
        ```
    """
    p = _Parser(prog="flux-erase demo", description="Erase bundled sample photos offline.")
    p.add_argument("--out", default="flux-erase-demo", help="folder for inputs and outputs")
    p.add_argument("--engine", default="local", help="local engine: local (default) or echo")
    args = p.parse_args(list(argv))
    # The demo is the offline path: keep Prefect's usage analytics from reaching for the network.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    root = os.path.abspath(args.out)
    if not os.environ.get("PREFECT_HOME") and not os.environ.get("PREFECT_API_URL"):
        # A Prefect home of its own: the demo neither reads your profiles (a Cloud workspace, say)
        # nor migrates a ~/.prefect database that another Prefect version may own.
        os.environ["PREFECT_HOME"] = os.path.join(root, ".prefect")
    from prefect_flux_erase.manifest.samples import prepare_demo_inputs

    inputs = prepare_demo_inputs(root)
    print(
        f"flux-erase demo: backend local (the embedded erase engine; offline, no API key), "
        f"{inputs.rows} sample photos",
        file=sys.stderr,
    )
    code, summary = _erase(
        inputs.manifest,
        inputs.output,
        "demo",
        backend="local",
        shard_size=2,
        local_engine=args.engine,
    )
    _print_summary(summary)
    print(f"inputs:  {inputs.images} (masks: {inputs.masks})")
    print(f"images:  {inputs.output}/images")
    if summary is not None and not isinstance(summary, BaseException):
        print(f"results: {summary.results_uri}")
    return code


def _one_line(exc: BaseException) -> str:
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        # The settings block wraps our InvalidOptionError: show its message, not pydantic's.
        return "; ".join(str(e.get("ctx", {}).get("error") or e["msg"]) for e in exc.errors())
    return str(exc)


def cmd_estimate(argv: Sequence[str]) -> int:
    """``flux-erase estimate``: print what a manifest will cost on the API; exit 0 or 2.

    Example:
        ```bash
        flux-erase estimate s3://bucket/m.parquet --number-results 2 --max-cost 25
        ```
    """
    return run_estimate(estimate_parser(_Parser).parse_args(list(argv)))


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "run": cmd_run,
    "estimate": cmd_estimate,
    "manifest": cmd_manifest,
    "demo": cmd_demo,
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
        parsers: dict[str, Callable[[], argparse.ArgumentParser]] = {
            "run": run_parser,
            "estimate": lambda: estimate_parser(_Parser),
        }
        if command in parsers:
            parsers[command]().print_help()
            return 0
    try:
        return handler(rest)
    except UsageError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except Exception as exc:
        if _is_config_error(exc):
            print(f"flux-erase {command}: {_one_line(exc)}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

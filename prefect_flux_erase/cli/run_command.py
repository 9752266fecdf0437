"""`flux-erase run`: check everything cheap, then set Prefect up and run the flow with a bar.

Everything that needs neither Prefect nor a server is checked first (:func:`check_run`): the
options through :meth:`~prefect_flux_erase.run.spec.RunSpec.check`, the API key, and the
manifest's existence, format and columns from its Parquet footers. A mistake is one line naming
the flag to fix, about a second after the command starts; Prefect is not even imported.

Example:
    ```bash
    flux-erase run m.parquet --output erased/ --backend runware --dilate-pixels 15
    ```
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from prefect_flux_erase.cli.cost_commands import add_money_flags, cap_reached, money_options
from prefect_flux_erase.cli.words import (
    NO_KEY,
    Parser,
    UsageError,
    any_case,
    cli_error,
    for_cli,
    is_config_error,
    json_object,
)
from prefect_flux_erase.shards.job import DEFAULT_POLL_TIMEOUT

if TYPE_CHECKING:
    from prefect_flux_erase.run.spec import RunSpec
    from prefect_flux_erase.runware.options import EraseOptions

__all__ = ["NO_KEY", "check_run", "cmd_run", "erase_with_progress", "run_parser"]


def run_parser() -> argparse.ArgumentParser:
    """The ``flux-erase run`` argument parser.

    Example:
        >>> run_parser().parse_args(["m.parquet", "--output", "out"]).backend
        'local'
    """
    p = Parser(prog="flux-erase run", description="Erase every row of a Parquet manifest.")
    p.add_argument("manifest", help="URI of the Parquet manifest (file, folder or glob)")
    p.add_argument(
        "--output", required=True, help="URI of the output root (a relative path is made absolute)"
    )
    p.add_argument(
        "--backend",
        type=any_case("local", "runware"),
        choices=("local", "runware"),
        default="local",
        help="local: the embedded engine, offline; runware: the API (RUNWARE_API_KEY)",
    )
    p.add_argument("--base-url", help="Runware endpoint (e.g. the emulator); runware backend")
    p.add_argument(
        "--credentials-block",
        metavar="NAME",
        help="a saved Runware Credentials block (API key, endpoint) instead of RUNWARE_API_KEY",
    )
    p.add_argument(
        "--settings-block",
        metavar="NAME",
        help="a saved FLUX Erase Settings block; the option flags below override its values",
    )
    p.add_argument("--dilate-pixels", type=int, help="settings.dilatePixels, 0-50 (default: 10)")
    p.add_argument(
        "--output-format",
        type=any_case("JPG", "PNG", "WEBP"),
        choices=("JPG", "PNG", "WEBP"),
        help="outputFormat of the erased images, any case; PNG/WEBP keep alpha (default: JPG)",
    )
    p.add_argument("--output-quality", type=int, help="outputQuality, 20-99 (default: 95)")
    p.add_argument(
        "--output-type",
        type=any_case("URL", "base64Data", "dataURI"),
        choices=("URL", "base64Data", "dataURI"),
        help="outputType: how the API returns results (default: URL, which a manifest run "
        "asks for inline as base64Data: no download per row)",
    )
    p.add_argument("--number-results", type=int, help="numberResults per row, 1-20 (default: 1)")
    p.add_argument("--concurrency", type=int, default=16, help="rows in flight per shard")
    p.add_argument("--shard-size", type=int, default=100, help="rows per shard")
    p.add_argument("--max-shards-in-flight", type=int, default=4, help="shards processed at once")
    p.add_argument("--storage-options", type=json_object, help="fsspec options as JSON")
    p.add_argument("--output-storage-options", type=json_object, help="fsspec options, output")
    p.add_argument(
        "--poll-timeout",
        type=float,
        default=DEFAULT_POLL_TIMEOUT,
        help="seconds a row may stay unfinished on the server before it fails",
    )
    p.add_argument(
        "--max-failed-fraction",
        type=float,
        default=0.0,
        help="fraction of rows allowed to fail before the run counts as failed",
    )
    p.add_argument("--image-column", default="image_uri", help="column of image URIs")
    p.add_argument("--mask-column", default="mask_uri", help="column of mask URIs")
    p.add_argument("--key-column", help="column of row keys (default: row_key if present)")
    p.add_argument(
        "--retry-failed",
        nargs="*",
        metavar="CODE",
        help="run failed rows again although their code is final: every failed row, or only "
        "those with these error codes (e.g. uploadFailed); retryable rows are always run again",
    )
    p.add_argument("--no-report", action="store_true", help="skip report.html")
    p.add_argument("--engine", default="local", help="engine of the local backend: local or echo")
    add_money_flags(p)
    return p


def _absolute(uri: str) -> str:
    """A local relative path made absolute (results record where files really are)."""
    if "://" in uri or os.path.isabs(uri):
        return uri
    return os.path.abspath(uri)


def _given_options(args: argparse.Namespace) -> dict[str, Any]:
    """The FLUX Erase options set by flags (the others come from the settings block or the
    defaults)."""
    given = {
        "dilate_pixels": args.dilate_pixels,
        "output_format": args.output_format,
        "output_quality": args.output_quality,
        "output_type": args.output_type,
        "number_results": args.number_results,
    }
    return {name: value for name, value in given.items() if value is not None}


def _options(args: argparse.Namespace, base: EraseOptions | None = None) -> EraseOptions:
    from prefect_flux_erase.run.spec import default_options
    from prefect_flux_erase.runware.options import EraseOptions

    start = (base or default_options()).model_dump()
    return EraseOptions(**{**start, **_given_options(args)})


def _spec(args: argparse.Namespace, options: EraseOptions, runware: Any) -> RunSpec:
    from prefect_flux_erase.run.spec import RunSpec

    return RunSpec(
        args.manifest,
        _absolute(args.output),
        backend=args.backend,
        runware=runware,
        options=options,
        image_column=args.image_column,
        mask_column=args.mask_column,
        key_column=args.key_column,
        storage_options=args.storage_options,
        output_storage_options=args.output_storage_options,
        shard_size=args.shard_size,
        concurrency=args.concurrency,
        max_shards_in_flight=args.max_shards_in_flight,
        poll_timeout=args.poll_timeout,
        max_failed_fraction=args.max_failed_fraction,
        report=not args.no_report,
        local_engine=args.engine,
        retry_failed=retry_failed(args),
        **money_options(args),
    )


def retry_failed(args: argparse.Namespace) -> bool | list[str]:
    """``--retry-failed`` as the run's ``retry_failed``: absent False, alone True, else codes.

    Example:
        >>> retry_failed(run_parser().parse_args(["m", "--output", "o", "--retry-failed"]))
        True
    """
    if args.retry_failed is None:
        return False
    return list(args.retry_failed) or True


def check_run(args: argparse.Namespace) -> RunSpec:
    """Every check of ``flux-erase run`` that needs neither Prefect nor a server: the options,
    the API key (unless a credentials block will give it), the manifest's footers.

    Raises:
        UsageError, RunConfigError, ManifestError, InvalidOptionError, ValidationError: the
            first mistake (``main`` words it for the command line).

    Example:
        ```python
        spec = check_run(run_parser().parse_args(["m.parquet", "--output", "out"]))
        ```
    """
    from prefect_flux_erase.manifest.plan import plan_manifest
    from prefect_flux_erase.run.plan import manifest_spec
    from prefect_flux_erase.runware.config import RunwareConfig

    runware: RunwareConfig | None = None
    if args.backend != "runware":
        if args.base_url or args.credentials_block:
            flag = "--base-url" if args.base_url else "--credentials-block"
            raise UsageError(f"{flag} applies to --backend runware only; add --backend runware")
    else:
        fields: dict[str, Any] = {"base_url": args.base_url} if args.base_url else {}
        if args.credentials_block:
            # The key comes from the block, loaded once Prefect is up; check the rest now.
            fields["api_key"] = "(from the credentials block)"
        runware = RunwareConfig(**fields)
    spec = _spec(args, _options(args), runware).check()
    plan_manifest(manifest_spec(spec), shard_size=spec.shard_size)  # footers only
    return spec


def erase_with_progress(
    manifest: str, output: str, label: str, *, resume: str | None = None, **options: Any
) -> tuple[int, Any]:
    """Run the ``erase_manifest`` flow with a progress view; (exit code, summary or None).

    Ctrl-C stops the run cleanly (:mod:`~prefect_flux_erase.cli.stops`); when the run stops
    early, ``resume`` (the command that continues it) is printed.

    Example:
        ```python
        code, summary = erase_with_progress("m.parquet", "/abs/out", "erasing", backend="local")
        ```
    """
    from prefect_flux_erase.cli.progress_view import ProgressView
    from prefect_flux_erase.cli.stops import EXIT_INTERRUPTED, EXIT_STOPPED, stoppable
    from prefect_flux_erase.flows import erase_manifest
    from prefect_flux_erase.run.manifest_run import RunStopped, TooManyFailedRows
    from prefect_flux_erase.run.progress import listen

    with (
        _OutcomesSaidOnce(),
        stoppable() as signals,
        ProgressView(label, on_first=signals.install) as view,
        listen(view),
    ):
        state = erase_manifest(manifest, output, return_state=True, **options)
    try:
        summary = state.result(raise_on_failure=False)
    except Exception:
        summary = None
    if state.is_completed():
        return 0, summary
    exc = summary if isinstance(summary, BaseException) else None
    if exc is not None and is_config_error(exc):
        print(f"flux-erase: {cli_error(exc)}", file=sys.stderr)
        return 2, None
    if isinstance(exc, RunStopped) or (exc is None and signals.received):
        # One message saying what to fix (and how many rows are done), then how to resume.
        print(f"flux-erase: {for_cli(str(exc or state.message))}", file=sys.stderr)
        again = resume or "the same command"
        print(f"resume with: {again}", file=sys.stderr, flush=True)
        fault = isinstance(exc, RunStopped) and exc.is_fault
        return (EXIT_STOPPED if fault else EXIT_INTERRUPTED), None
    capped = cap_reached(exc) if exc is not None else None  # prints why
    if capped is not None:
        return capped
    print(f"flux-erase: {for_cli(str(exc or state.message))}", file=sys.stderr)
    if isinstance(exc, TooManyFailedRows):
        return 1, exc.summary
    return 1, None


class _OutcomesSaidOnce:
    """While a CLI run goes, the terminal does not show Prefect's log of a flow run that ended
    in one of the run's own outcomes (``TooManyFailedRows``, ``ShardsFailed``, a configuration
    error): the CLI says the outcome itself, in one line, and Prefect's version comes with a
    traceback about our code, not the user's data. Only the console handlers drop it: the
    Prefect API (the UI) keeps the record. Any other exception is shown as Prefect logs it.
    """

    def __enter__(self) -> _OutcomesSaidOnce:
        from prefect.logging.handlers import APILogHandler

        self.handlers: list[logging.Handler] = []
        logger: logging.Logger | None = logging.getLogger("prefect.flow_runs")
        while logger is not None:  # the handlers a flow run's record reaches
            self.handlers += [h for h in logger.handlers if not isinstance(h, APILogHandler)]
            logger = logger.parent if logger.propagate else None
        for handler in self.handlers:
            handler.addFilter(self._filter)
        return self

    def __exit__(self, *exc: object) -> None:
        for handler in self.handlers:
            handler.removeFilter(self._filter)

    @staticmethod
    def _filter(record: logging.LogRecord) -> bool:
        from prefect_flux_erase.run.manifest_run import RunStopped, ShardsFailed, TooManyFailedRows

        error = record.exc_info[1] if record.exc_info else None
        return error is None or not (
            isinstance(error, TooManyFailedRows | ShardsFailed | RunStopped)
            or is_config_error(error)
        )


def cmd_run(argv: Sequence[str]) -> int:
    """``flux-erase run``: erase a manifest; exit 0, 1 (too many failed rows) or 2 (usage).

    Example:
        ```bash
        flux-erase run m.parquet --output out/ --backend runware --base-url http://127.0.0.1:8080/v1
        ```
    """
    args = run_parser().parse_args(list(argv))
    spec = check_run(args)
    from prefect_flux_erase.cli.prefect_home import (
        default_prefect_home,
        load_block,
        use_cli_prefect_home,
    )

    blocks = bool(args.credentials_block or args.settings_block)
    where_prefect = use_cli_prefect_home(default_prefect_home(), yours=blocks)
    from prefect_flux_erase.blocks import FluxEraseSettings, RunwareCredentials

    options = spec.options
    if args.settings_block:
        saved = load_block("settings", args.settings_block, "--settings-block")
        options = _options(args, saved.to_options())
    credentials: RunwareCredentials | None = None
    if args.backend == "runware":
        if args.credentials_block:
            saved = load_block("credentials", args.credentials_block, "--credentials-block")
            fields = saved.to_config().model_dump()
            if args.base_url:
                fields["base_url"] = args.base_url
            credentials = RunwareCredentials(**fields)
            if not credentials.has_key:
                raise UsageError(
                    f"--credentials-block {args.credentials_block}: the block has no API key "
                    "and RUNWARE_API_KEY is not set; save the key in the block"
                )
        else:
            assert spec.runware is not None  # check() resolved it
            credentials = RunwareCredentials(**spec.runware.model_dump())
    where = f" at {credentials.base_url}" if credentials is not None else " (offline)"
    print(f"flux-erase: backend {args.backend}{where}", file=sys.stderr)
    print(f"flux-erase: {where_prefect}", file=sys.stderr)
    code, summary = erase_with_progress(
        spec.manifest,
        spec.output,
        "erasing",
        resume=shlex.join(["flux-erase", "run", *argv]),
        retry_failed=retry_failed(args),
        backend=spec.backend,
        credentials=credentials,
        settings=FluxEraseSettings(**options.model_dump()),
        image_column=spec.image_column,
        mask_column=spec.mask_column,
        key_column=spec.key_column,
        storage_options=args.storage_options,
        output_storage_options=args.output_storage_options,
        shard_size=spec.shard_size,
        concurrency=spec.concurrency,
        max_shards_in_flight=spec.max_shards_in_flight,
        max_failed_fraction=spec.max_failed_fraction,
        poll_timeout=spec.poll_timeout,
        report=spec.report,
        local_engine=spec.local_engine,
        **{k: list(v) if isinstance(v, tuple) else v for k, v in money_options(args).items()},
    )
    from prefect_flux_erase.cli.progress_view import print_summary

    print_summary(summary)
    return code

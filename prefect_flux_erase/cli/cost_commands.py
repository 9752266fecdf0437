"""The cost parts of the `flux-erase` command: ``flux-erase estimate`` and the money flags of
``flux-erase run`` (``--max-cost``, ``--cache``, ``--pass-urls``…). Every rule is the core's
(:mod:`prefect_flux_erase.costs`); this module only turns flags into its options.

Exit codes of ``estimate``: 0 the estimate was printed; 2 a usage or configuration error.
``run`` exits 3 when the cost cap left rows unsent (:data:`EXIT_CAP_REACHED`).

Example:
    ```bash
    flux-erase estimate m.parquet --number-results 2
    flux-erase run m.parquet --output out --backend runware --max-cost 25 --cache s3://b/cache
    ```
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from prefect_flux_erase.cli.words import any_case, json_object

#: ``flux-erase run`` exit code when the cost cap (``--max-cost``) left rows unsent.
EXIT_CAP_REACHED = 3


def add_money_flags(p: argparse.ArgumentParser, *, estimate: bool = False) -> None:
    """Add the flags that shape what a run bills (shared by ``run`` and ``estimate``).

    Example:
        >>> p = argparse.ArgumentParser(); add_money_flags(p)
        >>> p.parse_args(["--pass-urls", "--max-cost", "2.5"]).pass_urls
        []
    """
    p.add_argument(
        "--max-cost",
        type=float,
        metavar="USD",
        help="most the run may spend; rows that could take it over are not sent "
        "(budgetExhausted, exit 3 on run); rerun with a higher cap to continue",
    )
    p.add_argument(
        "--cache",
        metavar="URI",
        help="cross-run result cache (any fsspec URI): contents erased before are copied, "
        "not paid for again (default: no cache)",
    )
    p.add_argument(
        "--cache-storage-options", type=json_object, help="fsspec options of --cache, as JSON"
    )
    p.add_argument(
        "--pass-urls",
        nargs="*",
        metavar="COLUMN",
        help="send public http(s) inputs as URLs for the API to fetch, never downloaded by the "
        "pipeline: all input columns, or only the COLUMNs named",
    )
    p.add_argument(
        "--allow-private-host",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="a host whose URLs --pass-urls may pass although it looks private (repeatable)",
    )
    p.add_argument(
        "--no-dedupe",
        action="store_true",
        help="erase (and pay for) rows of identical image, mask and settings once each",
    )
    p.add_argument(
        "--verify-estimate",
        action="store_true",
        help="also ask the API's dry run for the price (one request per image size)",
    )
    if not estimate:
        p.add_argument(
            "--upload-inputs",
            action="store_true",
            help="upload each input once (imageUpload) and send its UUID; retries and shared "
            "masks do not resend the bytes",
        )


def money_options(args: argparse.Namespace) -> dict[str, Any]:
    """The run options the money flags ask for (``RunSpec`` / ``erase_manifest`` names).

    Example:
        >>> p = argparse.ArgumentParser(); add_money_flags(p)
        >>> money_options(p.parse_args(["--pass-urls", "image_uri", "--no-dedupe"]))["pass_urls"]
        ('image_uri',)
    """
    pass_urls: bool | tuple[str, ...] = False
    if args.pass_urls is not None:
        pass_urls = tuple(args.pass_urls) if args.pass_urls else True
    options: dict[str, Any] = {
        "max_cost_usd": args.max_cost,
        "cache": args.cache,
        "cache_storage_options": args.cache_storage_options,
        "pass_urls": pass_urls,
        "allow_private_hosts": tuple(args.allow_private_host),
        "dedupe": not args.no_dedupe,
        "verify_estimate": args.verify_estimate,
    }
    if hasattr(args, "upload_inputs"):
        options["upload_inputs"] = args.upload_inputs
    return options


#: The RunSpec parameters of the money options, as the flags that set them.
FLAGS = {
    "max_cost_usd": "--max-cost",
    "cache": "--cache",
    "cache_storage_options": "--cache-storage-options",
    "pass_urls": "--pass-urls",
    "allow_private_hosts": "--allow-private-host",
    "dedupe": "--no-dedupe",
    "verify_estimate": "--verify-estimate",
    "upload_inputs": "--upload-inputs",
}


def estimate_parser(
    parser: Callable[..., argparse.ArgumentParser] = argparse.ArgumentParser,
) -> argparse.ArgumentParser:
    """The ``flux-erase estimate`` argument parser (made by ``parser``: the CLI's own class).

    Example:
        >>> estimate_parser().parse_args(["m.parquet"]).number_results
        1
    """
    p = parser(
        prog="flux-erase estimate",
        description="What erasing a manifest on the Runware API will cost, from image headers "
        "alone: no API request, no API key.",
    )
    p.add_argument("manifest", help="URI of the Parquet manifest (file, folder or glob)")
    p.add_argument(
        "--output", help="output root of an earlier run: leave out the rows it already did"
    )
    p.add_argument("--base-url", help="Runware endpoint (for --verify-estimate and --cache)")
    p.add_argument("--number-results", type=int, default=1, help="results per row, 1-20")
    p.add_argument("--dilate-pixels", type=int, help="settings.dilatePixels, 0-50 (default 10)")
    p.add_argument(
        "--output-format",
        type=any_case("JPG", "PNG", "WEBP"),
        choices=("JPG", "PNG", "WEBP"),
        default="JPG",
        help="outputFormat, any case",
    )
    p.add_argument("--output-quality", type=int, default=95, help="20-99 (default 95)")
    p.add_argument("--image-column", default="image_uri", help="column of image URIs")
    p.add_argument("--mask-column", default="mask_uri", help="column of mask URIs")
    p.add_argument("--key-column", help="column of row keys (default: row_key if present)")
    p.add_argument("--storage-options", type=json_object, help="fsspec options as JSON")
    p.add_argument("--output-storage-options", type=json_object, help="fsspec options of --output")
    add_money_flags(p, estimate=True)
    p.add_argument("--json", action="store_true", help="print the estimate as one JSON object")
    return p


def run_estimate(args: argparse.Namespace) -> int:
    """``flux-erase estimate`` with parsed arguments: print what a manifest will cost; exit 0
    (a configuration error raises ``RunConfigError``, worded with the flags).

    Example:
        ```python
        run_estimate(estimate_parser().parse_args(["m.parquet", "--json"]))
        ```
    """
    from prefect_flux_erase.run import estimate_cost
    from prefect_flux_erase.run.spec import RunConfigError
    from prefect_flux_erase.runware.config import RunwareConfig
    from prefect_flux_erase.runware.options import EraseOptions

    erase: dict[str, Any] = {
        "include_cost": True,
        "number_results": args.number_results,
        "output_format": args.output_format,
        "output_quality": args.output_quality,
    }
    if args.dilate_pixels is not None:
        erase["dilate_pixels"] = args.dilate_pixels
    runware = RunwareConfig(base_url=args.base_url) if args.base_url else None
    try:
        estimate = estimate_cost(
            args.manifest,
            output=args.output,
            runware=runware,
            options=EraseOptions(**erase),
            image_column=args.image_column,
            mask_column=args.mask_column,
            key_column=args.key_column,
            storage_options=args.storage_options,
            output_storage_options=args.output_storage_options,
            **money_options(args),
        )
    except RunConfigError as exc:
        raise RunConfigError(flag_message(exc), parameter=exc.parameter) from None
    if args.json:
        print(json.dumps(estimate.as_dict()))
        return 0
    print(estimate.describe())
    _print_lines(estimate)
    return 0


def _print_lines(estimate: Any) -> None:
    lines = [
        ("rows", f"{estimate.rows:,}"),
        ("distinct contents", f"{estimate.distinct:,}"),
        ("results billed", f"{estimate.results_billed:,} ({estimate.number_results} per row)"),
        ("output megapixels", f"{estimate.output_megapixels:,}"),
        ("cost, input not billed as a reference image", f"${estimate.low_usd:.4f}"),
        ("cost, input billed as a reference image", f"${estimate.high_usd:.4f}"),
    ]
    if estimate.verified_usd is not None:
        lines.append(("the API's dry-run price", f"${estimate.verified_usd:.4f}"))
    if estimate.max_cost_usd is not None:
        lines.append(("rows the cap leaves for later", f"{estimate.rows_over_cap:,}"))
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        print(f"  {key:<{width}}  {value}")


def flag_message(exc: Any) -> str:
    """A run-option error worded with the CLI flag instead of the Python parameter.

    Example:
        >>> from prefect_flux_erase.run.spec import RunConfigError
        >>> flag_message(RunConfigError("max_cost_usd must be positive", parameter="max_cost_usd"))
        '--max-cost must be positive'
    """
    text = str(exc)
    parameter = getattr(exc, "parameter", None)
    flag = FLAGS.get(parameter or "")
    if flag and parameter and text.startswith(parameter):
        return flag + text[len(parameter) :]
    return text


def cap_reached(exc: BaseException) -> tuple[int, Any] | None:
    """``(exit code, summary)`` when ``exc`` is the cost cap's stop, else ``None``; prints why.

    Example:
        >>> cap_reached(ValueError("other")) is None
        True
    """
    from prefect_flux_erase.costs.budget import BudgetExhausted

    if not isinstance(exc, BudgetExhausted):
        return None
    print(f"flux-erase: {exc}", file=sys.stderr)
    return EXIT_CAP_REACHED, exc.summary

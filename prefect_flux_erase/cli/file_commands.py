"""`flux-erase manifest` (pair files into a manifest) and `flux-erase demo` (the offline demo).

Example:
    ```bash
    flux-erase manifest --images photos/ --masks masks/ --out manifest.parquet
    flux-erase demo
    ```
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence

from prefect_flux_erase.cli.run_command import erase_with_progress
from prefect_flux_erase.cli.words import Parser, for_cli, json_object


def manifest_parser() -> argparse.ArgumentParser:
    """The ``flux-erase manifest`` argument parser.

    Example:
        >>> manifest_parser().parse_args(["--images", "i", "--masks", "m", "--out", "o"]).out
        'o'
    """
    p = Parser(prog="flux-erase manifest", description="Pair images and masks by file stem.")
    p.add_argument("--images", required=True, help="folder URI of the photos")
    p.add_argument("--masks", required=True, help="folder URI of the masks (same stems)")
    p.add_argument("--out", required=True, help="URI of the manifest to write")
    p.add_argument("--storage-options", type=json_object, help="fsspec options as JSON")
    p.add_argument(
        "--skip-unpaired",
        action="store_true",
        help="write the pairs and leave out files that pair with nothing (listed on stderr); "
        "without it such files fail the command (exit 1) and nothing is written",
    )
    return p


def cmd_manifest(argv: Sequence[str]) -> int:
    """``flux-erase manifest``: pair images and masks by file stem into a Parquet manifest.

    Example:
        ```bash
        flux-erase manifest --images photos/ --masks masks/ --out manifest.parquet
        ```
    """
    args = manifest_parser().parse_args(list(argv))
    from prefect_flux_erase.manifest.pairing import PairingError, build_manifest, describe_unpaired

    try:
        result = build_manifest(
            args.images,
            args.masks,
            args.out,
            args.storage_options,
            unpaired="skip" if args.skip_unpaired else "fail",
        )
    except PairingError as exc:
        print(f"flux-erase manifest: {for_cli(exc.message)}", file=sys.stderr)
        return 1 if exc.code == "unpairedFiles" else 2
    print(f"wrote {result.rows} rows to {result.manifest_uri or args.out}")
    for label, items in (
        ("image without a mask", result.unpaired_images),
        ("mask without an image", result.unpaired_masks),
        ("name with several files", result.ambiguous),
    ):
        if items:
            print(f"skipped {describe_unpaired(label, items)}", file=sys.stderr)
    return 0


def demo_parser() -> argparse.ArgumentParser:
    """The ``flux-erase demo`` argument parser.

    Example:
        >>> demo_parser().parse_args([]).out
        'flux-erase-demo'
    """
    p = Parser(prog="flux-erase demo", description="Erase bundled sample photos offline.")
    p.add_argument("--out", default="flux-erase-demo", help="folder for inputs and outputs")
    p.add_argument("--engine", default="local", help="engine of the local backend: local or echo")
    return p


def cmd_demo(argv: Sequence[str]) -> int:
    """``flux-erase demo``: erase the bundled sample photos offline; print where things are.

    Example:
        ```bash
        flux-erase demo --out flux-erase-demo
        ```
    """
    args = demo_parser().parse_args(list(argv))
    from prefect_flux_erase.cli.prefect_home import use_cli_prefect_home

    root = os.path.abspath(args.out)
    # A Prefect home of its own, next to the demo's files (unless you configured Prefect).
    where_prefect = use_cli_prefect_home(os.path.join(root, ".prefect"))
    from prefect_flux_erase.cli.progress_view import print_summary
    from prefect_flux_erase.manifest.samples import prepare_demo_inputs

    inputs = prepare_demo_inputs(root)
    print(
        f"flux-erase demo: backend local (the embedded erase engine; offline, no API key), "
        f"{inputs.rows} sample photos",
        file=sys.stderr,
    )
    print(f"flux-erase demo: {where_prefect}", file=sys.stderr)
    code, summary = erase_with_progress(
        inputs.manifest,
        inputs.output,
        "demo",
        resume=shlex.join(["flux-erase", "demo", *argv]),
        backend="local",
        shard_size=2,
        local_engine=args.engine,
    )
    print_summary(summary)
    print(f"inputs:  {inputs.images} (masks: {inputs.masks})")
    print(f"images:  {inputs.output}/images")
    if summary is not None and not isinstance(summary, BaseException):
        print(f"results: {summary.results_uri}")
    return code

"""Regenerate the documentation's report screenshot: ``make screenshots``.

Runs the sample manifest (two bad rows included) through ``erase_manifest`` on the default
local engine, opens the report in headless Chromium, checks it as the browser test does, and
saves a screenshot of the top of the page, kept under 800 KB.

Example:
    ```bash
    python -m tests.browser.screenshot docs/images/report.png [--engine local]
    ```
"""

from __future__ import annotations

import asyncio
import io
import os
import sys
import tempfile
from pathlib import Path

MAX_BYTES = 800 * 1024


def shrink_png(data: bytes, max_bytes: int = MAX_BYTES) -> bytes:
    """The PNG as is when small enough, else palette-quantised (which photos survive well).

    Example:
        >>> from PIL import Image
        >>> buf = io.BytesIO(); Image.new("RGB", (8, 8), "white").save(buf, "PNG")
        >>> shrink_png(buf.getvalue()) == buf.getvalue()
        True
    """
    if len(data) <= max_bytes:
        return data
    from PIL import Image

    image = Image.open(io.BytesIO(data)).convert("RGB")
    for colors in (256, 128, 64):
        out = io.BytesIO()
        image.quantize(colors=colors, dither=Image.Dither.FLOYDSTEINBERG).save(
            out, "PNG", optimize=True
        )
        if out.tell() <= max_bytes:
            return out.getvalue()
    raise ValueError(f"cannot fit the screenshot in {max_bytes} bytes")


def main(argv: list[str]) -> int:
    """Write the screenshot to the given path; exit non-zero if the report check fails.

    Example:
        ```python
        main(["docs/images/report.png", "--engine", "local"])
        ```
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tests.browser.screenshot")
    parser.add_argument("target", nargs="?", default="docs/images/report.png")
    parser.add_argument("--engine", default="local", help="local engine (default local)")
    args = parser.parse_args(argv)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    from prefect.testing.utilities import prefect_test_harness

    from tests.browser.report_check import check_report, serve_directory
    from tests.browser.sample_run import BAD_ROWS, run_sample

    target = Path(args.target)
    with tempfile.TemporaryDirectory() as tmp, prefect_test_harness(server_startup_timeout=120):
        output = run_sample(Path(tmp) / "run", relative=True, local_engine=args.engine)
        with serve_directory(output) as base_url:
            check = asyncio.run(check_report(f"{base_url}/report.html", screenshot=True))
        if check.broken_images or check.failed_codes != BAD_ROWS:
            print(f"report check failed: {check}", file=sys.stderr)
            return 1
        target.parent.mkdir(parents=True, exist_ok=True)
        assert check.screenshot is not None
        target.write_bytes(shrink_png(check.screenshot))
    print(f"wrote {target} ({target.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

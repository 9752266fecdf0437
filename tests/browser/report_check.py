"""What a person checks on ``report.html``: every thumbnail shows, failed rows are listed.

Example:
    ```python
    with serve_directory(output_dir) as base_url:
        check = asyncio.run(check_report(f"{base_url}/report.html", screenshot=True))
    assert check.broken_images == [] and check.failed_codes == {"missing": "inputNotFound"}
    ```
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.fixtures.chromium import Chromium

#: Loads every image (the report marks thumbnails ``loading="lazy"``, which would leave the
#: ones below the fold unloaded in a screenshot-sized window) and reports each one's state.
IMAGES_JS = """
(async () => {
  const images = [...document.images];
  for (const img of images) img.loading = "eager";
  await Promise.all(images.map((img) => img.decode().catch(() => null)));
  return images.map((img) => ({
    src: img.getAttribute("src"),
    alt: img.getAttribute("alt"),
    ok: img.complete && img.naturalWidth > 0,
  }));
})()
"""

#: The failures table: row key and error code of each listed failed row.
FAILURES_JS = """
[...document.querySelectorAll("table.failures tbody tr")].map((tr) => {
  const cells = tr.querySelectorAll("td");
  return {key: cells[1].innerText.trim(), code: cells[2].innerText.trim()};
})
"""


@dataclass(frozen=True)
class ReportCheck:
    """The browser's view of a report: its images, which failed to decode, the failed rows.

    Example:
        >>> ReportCheck(images=[{"src": "a.jpg", "ok": False}]).broken_images
        ['a.jpg']
    """

    images: list[dict[str, Any]] = field(default_factory=list)
    failed_rows: list[dict[str, str]] = field(default_factory=list)
    title: str = ""
    screenshot: bytes | None = None

    @property
    def broken_images(self) -> list[str]:
        """``src`` of every image the browser could not decode."""
        return [str(i["src"]) for i in self.images if not i["ok"]]

    @property
    def failed_codes(self) -> dict[str, str]:
        """Row key → error code, as the failures table lists them."""
        return {r["key"]: r["code"] for r in self.failed_rows}


async def check_report(url: str, *, screenshot: bool = False) -> ReportCheck:
    """Open the report in headless Chromium, decode every image, read the failures table.

    With ``screenshot``, the check also carries a full-page PNG of what the browser shows.

    Example:
        ```python
        check = await check_report("http://127.0.0.1:PORT/report.html", screenshot=True)
        ```
    """
    async with Chromium.launch(width=1280, height=1000) as browser:
        await browser.open(url)
        images = await browser.evaluate(IMAGES_JS)
        failed = await browser.evaluate(FAILURES_JS)
        title = await browser.evaluate("document.title")
        shot = await browser.screenshot(full_page=True) if screenshot else None
    return ReportCheck(images=images, failed_rows=failed, title=title, screenshot=shot)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve_directory(directory: Path) -> Iterator[str]:
    """Serve ``directory`` over HTTP on 127.0.0.1 (a free port); yield the base URL.

    Example:
        ```python
        with serve_directory(Path("out")) as base_url:
            urllib.request.urlopen(f"{base_url}/report.html")
        ```
    """
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)

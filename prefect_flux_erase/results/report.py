"""`report.html`: a self-contained before/mask/after page for a run, next to its results.

The page has inline CSS and no external assets; thumbnails (JPEG, at most 384 px) go under
``{output}/report/`` and are referenced by relative paths, and each "after" thumbnail links to
the full-size output under ``{output}/images/`` the same way, so the report works opened from a
local disk, served over HTTP or downloaded from a bucket. Row keys and messages are user data:
everything is HTML-escaped and URLs are shown with their signatures redacted. A missing or
broken image becomes a placeholder naming the reason; it never stops the report.

Example:
    ```python
    summary = assemble_results(output, plan, storage_options)
    report_uri = write_report(output, storage_options, title="Nightly erase", summary=summary)
    ```
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import json
import re
import urllib.parse
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from prefect_flux_erase import storage
from prefect_flux_erase.engine.imageio import ImageInputError, decode_image, encode_image
from prefect_flux_erase.results.assemble import (
    IMAGE_COLUMN_METADATA,
    MASK_COLUMN_METADATA,
    RESULTS_FILE,
)
from prefect_flux_erase.results.report_style import CSS
from prefect_flux_erase.results.summary import estimate_text
from prefect_flux_erase.results.tally import ResultsSummary
from prefect_flux_erase.runware.redaction import REDACTED

REPORT_FILE = "report.html"
REPORT_DIR = "report"
#: Longest side of a thumbnail, in pixels.
THUMBNAIL_SIDE = 384
#: Largest input the report reads to make a thumbnail.
MAX_THUMBNAIL_INPUT_BYTES = 50 * 1024 * 1024
_BATCH_ROWS = 64


@dataclass(frozen=True)
class _Thumb:
    """A written thumbnail (``src`` relative to the report) or why there is none (``code``);
    ``href``: the full-size image, relative to the report, when it lies under the output."""

    src: str | None = None
    code: str | None = None
    href: str | None = None


def _relative_link(uri: str, output: str) -> str | None:
    """``uri`` as a link relative to the report (in ``output``), or None when it is elsewhere.

    Example:
        >>> _relative_link("s3://b/out/images/caf\u00e9 1.jpg", "s3://b/out")
        'images/caf%C3%A9%201.jpg'
    """
    root = output.rstrip("/") + "/"
    if not uri.startswith(root) or not storage.is_within(output, uri):
        return None
    return urllib.parse.quote(uri[len(root) :])


def _escape(value: object) -> str:
    return html.escape("" if value is None else storage.redact_url(str(value)), quote=True)


def _thumbnail(
    uri: str | None,
    read_options: Mapping[str, Any] | None,
    output: str,
    write_options: Mapping[str, Any] | None,
    name: str,
) -> _Thumb:
    try:
        data = storage.read_bytes(uri, read_options, max_bytes=MAX_THUMBNAIL_INPUT_BYTES)
        decoded = decode_image(data, parameter="report")
        image = Image.fromarray(decoded.rgb, "RGB")
        image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
        jpeg = encode_image(np.asarray(image, dtype=np.uint8), "JPG", quality=82)
        target = storage.join(output, REPORT_DIR, name)
        if not storage.is_within(output, target):
            return _Thumb(code="unsafeOutputPath")
        storage.write_bytes(target, jpeg, write_options)
    except (storage.InputReadError, ImageInputError) as exc:
        return _Thumb(code=exc.code)
    except Exception:
        # The report is a convenience: any other failure shows a placeholder, not a crash.
        return _Thumb(code="thumbnailFailed")
    return _Thumb(src=f"{REPORT_DIR}/{name}")


def _input_thumbnail(
    uri: str | None,
    read_options: Mapping[str, Any] | None,
    output: str,
    write_options: Mapping[str, Any] | None,
    stem: str,
) -> _Thumb:
    if uri is not None and REDACTED in uri:
        # A presigned input: the results keep it with its signature redacted, so it can no
        # longer be read; a request would only fail.
        return _Thumb(code="signedUrl")
    return _thumbnail(uri, read_options, output, write_options, f"{stem}.jpg")


def _figure(thumb: _Thumb, label: str) -> str:
    if thumb.src is not None:
        figure = (
            f'<figure><img src="{html.escape(thumb.src, quote=True)}" alt="{label}" '
            f'loading="lazy"><figcaption>{label}</figcaption></figure>'
        )
        if thumb.href is None:
            return figure
        return f'<a class="full" href="{html.escape(thumb.href, quote=True)}">{figure}</a>'

    return (
        f'<figure><div class="placeholder"><span>{_escape(thumb.code)}</span></div>'
        f"<figcaption>{label}</figcaption></figure>"
    )


def _iter_rows(
    results_uri: str, options: Mapping[str, Any] | None, max_rows: int
) -> Iterator[tuple[dict[str, Any], str, str]]:
    """Yield up to ``max_rows`` result rows (streamed) with the image and mask column names."""
    fs, path = storage.resolve(results_uri, options)
    with fs.open(path, "rb") as handle:
        parquet = pq.ParquetFile(handle)
        meta = parquet.schema_arrow.metadata or {}
        image_col = meta.get(IMAGE_COLUMN_METADATA, b"image_uri").decode()
        mask_col = meta.get(MASK_COLUMN_METADATA, b"mask_uri").decode()
        wanted = ["row_key", "row_index", "status", "output_uri", "error_code", "error_message"]
        names = parquet.schema_arrow.names
        columns = [c for c in [image_col, mask_col, *wanted] if c in names]
        seen = 0
        for batch in parquet.iter_batches(batch_size=_BATCH_ROWS, columns=columns):
            for row in batch.to_pylist():
                if seen >= max_rows:
                    return
                seen += 1
                yield row, image_col, mask_col


def _gallery_row(
    row: dict[str, Any],
    image_col: str,
    mask_col: str,
    output: str,
    options: Mapping[str, Any] | None,
    input_options: Mapping[str, Any] | None,
) -> str:
    index = int(row.get("row_index") or 0)
    ok = row.get("status") == "succeeded"
    before = _input_thumbnail(row.get(image_col), input_options, output, options, f"{index:08d}-a")
    mask = _input_thumbnail(row.get(mask_col), input_options, output, options, f"{index:08d}-m")
    outputs = row.get("output_uri") or []
    if ok and outputs and REDACTED in str(outputs[0]):
        # Written through a presigned uploadEndpoint: the recorded URL has its signature
        # redacted, so fetching it would only cost a failed request per row.
        after = _Thumb(code="uploaded")
    elif ok and outputs:
        after = _thumbnail(outputs[0], options, output, options, f"{index:08d}-b.jpg")
        if after.src is not None:
            after = replace(after, href=_relative_link(str(outputs[0]), output))
    else:
        after = _Thumb(code=row.get("error_code") or ("noOutput" if ok else "failed"))
    status = "ok" if ok else "failed"
    message = "" if ok else f'<p class="message">{_escape(row.get("error_message"))}</p>'
    return (
        f'<tr class="{status}"><td class="num">{index}</td>'
        f'<td class="key"><code>{_escape(row.get("row_key"))}</code>'
        f'<span class="badge {status}">{_escape(row.get("status"))}</span>'
        f'<p class="uri">{_escape(row.get(image_col))}</p>{message}</td>'
        f'<td class="images">{_figure(before, "before")}{_figure(mask, "mask")}'
        f"{_figure(after, 'after')}</td></tr>"
    )


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} s"


def _summary_html(summary: ResultsSummary, estimate: Mapping[str, Any] | None = None) -> str:
    rate = summary.succeeded / summary.rows if summary.rows else 0.0
    cards = [
        ("Rows", f"{summary.rows:,}", ""),
        ("Succeeded", f"{summary.succeeded:,}", "ok"),
        ("Failed", f"{summary.failed:,}", "failed" if summary.failed else ""),
        ("Resumed", f"{summary.resumed:,}", ""),
        ("Cost", f"${summary.total_cost:,.4f}", ""),
    ]
    if estimate is not None:
        cards.append(("Estimated cost", f"${estimate_text(dict(estimate))}", ""))
    if summary.shared:
        cards.append(("Shared an identical row's erase", f"{summary.shared:,}", ""))
    if summary.cached:
        cards.append(("From the result cache", f"{summary.cached:,}", ""))
    cards += [
        ("Latency p50", _seconds(summary.p50_latency_s), ""),
        ("Latency p95", _seconds(summary.p95_latency_s), ""),
    ]
    items = "".join(
        f'<div class="card {cls}"><div class="value">{value}</div><div class="label">{label}'
        "</div></div>"
        for label, value, cls in cards
    )
    return (
        f'<section class="cards">{items}</section>'
        f'<div class="bar" title="{rate:.1%} succeeded"><div style="width:{rate * 100:.2f}%">'
        f'</div></div><p class="rate">{rate:.1%} of rows succeeded</p>'
    )


def _failures_html(summary: ResultsSummary) -> str:
    if not summary.failed:
        return '<section><h2>Failures</h2><p class="none">No row failed.</p></section>'
    counts = "".join(
        f"<tr><td><code>{_escape(code)}</code></td><td class='num'>{count:,}</td></tr>"
        for code, count in summary.error_counts.items()
    )
    rows = "".join(
        f"<tr><td class='num'>{_escape(f.get('row_index'))}</td>"
        f"<td><code>{_escape(f.get('row_key'))}</code></td>"
        f"<td><code>{_escape(f.get('error_code'))}</code></td>"
        f"<td>{_escape(f.get('error_message'))}</td></tr>"
        for f in summary.failures
    )
    more = ""
    if summary.failed > len(summary.failures):
        more = (
            f'<p class="note">Showing the first {len(summary.failures)} of {summary.failed:,} '
            "failed rows; the results file lists them all.</p>"
        )
    return (
        "<section><h2>Failures</h2><h3>By error code</h3>"
        f'<table class="counts"><thead><tr><th>Code</th><th>Rows</th></tr></thead>'
        f"<tbody>{counts}</tbody></table><h3>Failed rows</h3>"
        '<table class="failures"><thead><tr><th>#</th><th>Row key</th><th>Code</th>'
        f"<th>Message</th></tr></thead><tbody>{rows}</tbody></table>{more}</section>"
    )


_FINGERPRINT_META = "prefect-flux-erase-results"
_FINGERPRINT_RE = re.compile(rb'<meta name="prefect-flux-erase-results" content="([0-9a-f]+)">')


def report_fingerprint(summary: ResultsSummary, *, title: str, max_rows: int) -> str:
    """A short digest of what a report shows: the run, every count, the codes, the options.

    Example:
        >>> s = ResultsSummary(results_uri="out/results.parquet", rows=2, succeeded=2)
        >>> report_fingerprint(s, title="t", max_rows=500) == report_fingerprint(
        ...     s, title="t", max_rows=500), len(report_fingerprint(s, title="t", max_rows=9))
        (True, 32)
    """
    shown = {
        "run_key": summary.run_key,
        "rows": summary.rows,
        "succeeded": summary.succeeded,
        "failed": summary.failed,
        "resumed": summary.resumed,
        "cost": round(summary.total_cost, 6),
        "p50": summary.p50_latency_s,
        "p95": summary.p95_latency_s,
        "errors": summary.error_counts,
        "failures": summary.failures,
        "results": summary.results_uri,
        "title": title,
        "max_rows": max_rows,
    }
    text = json.dumps(shown, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def current_report(
    output: str,
    storage_options: Mapping[str, Any] | None,
    *,
    title: str,
    summary: ResultsSummary,
    max_rows: int = 500,
) -> str | None:
    """The URI of ``{output}/report.html`` if it already shows exactly ``summary``, else None.

    A rerun that found every shard committed reassembles the same results; rewriting the
    report would only redo its thumbnails (seconds for 500 rows).

    Example:
        ```python
        uri = current_report(output, so, title="t", summary=s) or write_report(...)
        ```
    """
    uri = storage.join(output, REPORT_FILE)
    fs, path = storage.resolve(uri, storage_options)
    try:
        with fs.open(path, "rb") as handle:
            head = handle.read(4096)
    except (OSError, ValueError):
        return None
    found = _FINGERPRINT_RE.search(head)
    expected = report_fingerprint(summary, title=title, max_rows=max_rows)
    return uri if found is not None and found.group(1).decode() == expected else None


def write_report(
    output: str,
    storage_options: Mapping[str, Any] | None = None,
    *,
    title: str,
    summary: ResultsSummary,
    max_rows: int = 500,
    input_storage_options: Mapping[str, Any] | None = None,
    estimate: Mapping[str, Any] | None = None,
) -> str:
    """Write ``{output}/report.html`` (and its thumbnails under ``{output}/report/``).

    Args:
        output: the run's output root (where ``results.parquet`` is).
        storage_options: fsspec options of the output (thumbnails, outputs, the report).
        title: the page title.
        summary: what :func:`~prefect_flux_erase.results.assemble.assemble_results` returned.
        max_rows: how many rows get before/mask/after thumbnails (read by streaming).
        input_storage_options: fsspec options for the manifest's images and masks when they
            live elsewhere (default: ``storage_options``).
        estimate: the run's cost estimate (``CostEstimate.as_dict()``), shown next to the
            cost it actually had.

    Returns:
        The report's URI.

    Example:
        ```python
        uri = write_report("s3://bucket/batch-42/out", {"profile": "prod"},
                           title="Nightly erase", summary=summary)
        ```
    """
    if max_rows < 0:
        raise ValueError(f"max_rows must be >= 0; got {max_rows}")
    results_uri = summary.results_uri or storage.join(output, RESULTS_FILE)
    inputs = storage_options if input_storage_options is None else input_storage_options
    gallery: list[str] = []
    shown = 0
    # Two workers: decoding a large photo takes a few hundred MB; keep the peak bounded.
    with ThreadPoolExecutor(max_workers=2) as pool:
        pending: list[Any] = []
        for row, image_col, mask_col in _iter_rows(results_uri, storage_options, max_rows):
            args = (row, image_col, mask_col, output, storage_options, inputs)
            pending.append(pool.submit(_gallery_row, *args))
            if len(pending) >= _BATCH_ROWS:  # bound the rows in flight
                gallery.extend(f.result() for f in pending)
                pending = []
        gallery.extend(f.result() for f in pending)
    shown = len(gallery)
    note = f"Showing {shown:,} of {summary.rows:,} rows" + (
        f" (the first {max_rows:,})." if shown < summary.rows else "."
    )
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    run = f" · run <code>{_escape(summary.run_key)}</code>" if summary.run_key else ""
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="{_FINGERPRINT_META}" content="'
        f'{report_fingerprint(summary, title=title, max_rows=max_rows)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_escape(title)}</title><style>{CSS}</style></head><body><main>"
        f'<header><p class="eyebrow">FLUX Erase · bfl:flux@erase</p><h1>{_escape(title)}</h1>'
        f'<p class="meta">Generated {generated}{run} · results '
        f"<code>{_escape(results_uri)}</code></p></header>"
        f"{_summary_html(summary, estimate)}{_failures_html(summary)}"
        f'<section><h2>Rows</h2><p class="note">{note}</p>'
        '<table class="gallery"><thead><tr><th>#</th><th>Row</th>'
        "<th>Before · Mask · After</th></tr></thead><tbody>"
        + "".join(gallery)
        + "</tbody></table></section></main></body></html>\n"
    )
    report_uri = storage.join(output, REPORT_FILE)
    if not storage.is_within(output, report_uri):
        raise ValueError(f"refusing to write {storage.redact_url(report_uri)} outside {output!r}")
    storage.write_bytes(report_uri, page.encode("utf-8"), storage_options)
    return report_uri

"""report.html on real backends: escaping, thumbnails, placeholders, redaction, limits."""

from __future__ import annotations

import html
import io
import re
import urllib.parse
from pathlib import Path

import numpy as np
import pyarrow as pa
from PIL import Image

from prefect_flux_erase import storage
from prefect_flux_erase.engine.imageio import encode_image
from prefect_flux_erase.manifest.plan import ManifestSpec, plan_manifest, read_shard
from prefect_flux_erase.results.assemble import assemble_results, write_part
from prefect_flux_erase.results.report import THUMBNAIL_SIDE, write_report
from prefect_flux_erase.results.row_outcome import RowOutcome
from prefect_flux_erase.results.tally import ResultsSummary
from tests.fixtures.manifests import put_parquet
from tests.fixtures.roots import Root, root, serve_directory

__all__ = ["root"]

NASTY_KEYS = [
    "<script>alert(1)</script>",
    "a & b \"quoted\" 'single'",
    "../../etc/passwd",
    "café 猫",
    "missing-input",
    "broken-input",
]


def png(width: int, height: int, seed: int, mode: str = "RGB") -> bytes:
    """A smooth gradient image (or a disc mask): small files, quick to encode and decode."""
    yy, xx = np.mgrid[0:height, 0:width]
    if mode == "L":
        disc = (yy - height / 2) ** 2 + (xx - width / 2 - seed) ** 2 < (height / 4) ** 2
        buf = io.BytesIO()
        Image.fromarray(disc.astype(np.uint8) * 255, "L").save(buf, "PNG")
        return buf.getvalue()
    rgb = np.stack([xx * 255 // width, yy * 255 // height, np.full_like(xx, seed * 40)], axis=2)
    return encode_image(rgb.astype(np.uint8), "PNG")


def build_run(root: Root) -> tuple[str, ResultsSummary]:
    """A small run: real images and masks, outputs for successes, a few kinds of failure."""
    output = root.join("out")
    images, masks = [], []
    for i, key in enumerate(NASTY_KEYS):
        image, mask = root.join("in", f"{i}.png"), root.join("in", f"{i}-mask.png")
        if key == "missing-input":
            image = root.join("in", "does-not-exist.png")
        elif key == "broken-input":
            storage.write_bytes(image, b"not an image at all", root.options)
        else:
            storage.write_bytes(image, png(320, 240, i), root.options)
        storage.write_bytes(mask, png(320, 240, i, "L"), root.options)
        images.append(image)
        masks.append(mask)
    table = pa.table({"image_uri": images, "mask_uri": masks, "row_key": NASTY_KEYS})
    put_parquet(root.join("in", "manifest.parquet"), table, root.options)
    spec = ManifestSpec(root.join("in", "manifest.parquet"), storage_options=root.options)
    plan = plan_manifest(spec, shard_size=4)
    for shard in plan.shards:
        rows = read_shard(spec, shard)
        outcomes = []
        for row in rows:
            if row.key in ("missing-input", "broken-input", "../../etc/passwd"):
                code = {"missing-input": "inputNotFound", "broken-input": "invalidImage"}.get(
                    row.key, "invalidMaskDimensions"
                )
                outcomes.append(
                    RowOutcome(
                        row_key=row.key,
                        row_index=row.index,
                        status="failed",
                        error_code=code,
                        error_message="see https://h.example/a.png?X-Amz-Signature=s3cr3t <b>",
                    )
                )
                continue
            after = storage.join(output, "images", f"{storage.safe_key(row.key)}.jpg")
            storage.write_bytes(
                after, encode_image(np.full((240, 320, 3), 90, np.uint8)), root.options
            )
            outcomes.append(
                RowOutcome(
                    row_key=row.key,
                    row_index=row.index,
                    status="succeeded",
                    output_uri=[after],
                    cost=0.01,
                    latency_s=2.0,
                )
            )
        write_part(output, shard.index, "run-r", rows, outcomes, root.options)
    return output, assemble_results(output, plan, root.options)


def test_report_escapes_every_key_and_links_existing_thumbnails(root: Root) -> None:
    output, summary = build_run(root)
    uri = write_report(output, root.options, title="Nightly <erase> & co", summary=summary)
    assert uri == storage.join(output, "report.html")
    page = storage.read_bytes(uri, root.options).decode("utf-8")
    for key in NASTY_KEYS:
        assert html.escape(key, quote=True) in page
    assert "<script>alert(1)</script>" not in page
    assert "Nightly &lt;erase&gt; &amp; co" in page
    sources = re.findall(r'<img src="([^"]+)"', page)
    # 4 readable rows x (before + mask) + 3 successes x after + masks of the 2 unreadable rows
    assert len(sources) == 4 * 2 + 3 + 2
    for src in sources:
        assert src.startswith("report/")  # relative: works from any storage
        data = storage.read_bytes(storage.join(output, src), root.options)
        assert data[:3] == b"\xff\xd8\xff"
        with Image.open(io.BytesIO(data)) as thumb:
            assert max(thumb.size) <= THUMBNAIL_SIDE


def test_report_shows_codes_for_failures_and_placeholders_for_broken_inputs(root: Root) -> None:
    output, summary = build_run(root)
    page = storage.read_bytes(write_report(output, root.options, title="t", summary=summary),
                              root.options).decode()  # fmt: skip
    placeholders = re.findall(r'<div class="placeholder"><span>([^<]*)</span>', page)
    # missing: before placeholder + after code; broken: before + after; mask-size failure: after
    assert sorted(placeholders) == sorted(
        ["inputNotFound", "inputNotFound", "invalidImage", "invalidImage", "invalidMaskDimensions"]
    )
    assert "s3cr3t" not in page
    assert "X-Amz-Signature=REDACTED" in page
    assert "&lt;b&gt;" in page
    assert re.search(r"(?i)<(link|script)|src=\"(https?:)?//", page) is None  # self-contained
    assert '>3</div><div class="label">Failed' in page


def test_report_limits_thumbnails_to_max_rows(tmp_path: object) -> None:
    local = Root("local", str(tmp_path))
    output, summary = build_run(local)
    page = storage.read_bytes(write_report(output, None, title="t", summary=summary, max_rows=2))
    assert page.decode().count('<tr class="') == 2
    assert b"Showing 2 of 6 rows" in page


def test_report_does_not_fetch_outputs_uploaded_through_presigned_urls(tmp_path: object) -> None:
    """A redacted presigned URL cannot be fetched: the report shows `uploaded`, not a failure."""
    local = Root("local", str(tmp_path))
    output = local.join("out")
    image, mask = local.join("in", "a.png"), local.join("in", "a-mask.png")
    storage.write_bytes(image, png(320, 240, 1), local.options)
    storage.write_bytes(mask, png(320, 240, 1, "L"), local.options)
    put_parquet(
        local.join("in", "m.parquet"),
        pa.table({"image_uri": [image], "mask_uri": [mask], "row_key": ["a"]}),
        local.options,
    )
    spec = ManifestSpec(local.join("in", "m.parquet"), storage_options=local.options)
    plan = plan_manifest(spec, shard_size=4)
    (shard,) = plan.shards
    rows = read_shard(spec, shard)
    uploaded = "https://b.s3.amazonaws.com/a.jpg?X-Amz-Expires=60&X-Amz-Signature=REDACTED"
    outcome = RowOutcome(row_key="a", row_index=0, status="succeeded", output_uri=[uploaded])
    write_part(output, shard.index, "run-u", rows, [outcome], local.options)
    summary = assemble_results(output, plan, local.options)
    page = storage.read_bytes(
        write_report(output, local.options, title="t", summary=summary), local.options
    ).decode()
    placeholders = re.findall(r'<div class="placeholder"><span>([^<]*)</span>', page)
    assert placeholders == ["uploaded"]
    assert not storage.exists(storage.join(output, "report", "00000000-b.jpg"), local.options)


def test_a_report_that_already_shows_the_summary_is_recognised(root: Root) -> None:
    from dataclasses import replace

    from prefect_flux_erase.results.report import current_report

    output, summary = build_run(root)
    assert current_report(output, root.options, title="t", summary=summary) is None  # none yet
    uri = write_report(output, root.options, title="t", summary=summary)

    assert current_report(output, root.options, title="t", summary=summary) == uri
    assert current_report(output, root.options, title="other", summary=summary) is None
    changed = replace(summary, failed=summary.failed + 1)
    assert current_report(output, root.options, title="t", summary=changed) is None
    another_run = replace(summary, run_key="another-run")
    assert current_report(output, root.options, title="t", summary=another_run) is None


def test_after_thumbnails_link_to_the_full_size_images_from_disk_and_over_http(
    tmp_path: Path,
) -> None:
    import httpx

    local = Root("local", str(tmp_path))
    output, summary = build_run(local)
    page = storage.read_bytes(write_report(output, None, title="t", summary=summary)).decode()

    links = re.findall(r'<a class="full" href="([^"]+)"><figure><img src="report/', page)
    assert len(links) == 3  # one per succeeded row
    for link in links:
        assert link.startswith("images/")  # relative to the report: works wherever it is
        full = Path(output) / urllib.parse.unquote(html.unescape(link))
        with Image.open(full) as image:
            assert image.size == (320, 240)  # the output itself, not a thumbnail
    with serve_directory(Path(output), ranges=False) as base:
        for link in links:
            reply = httpx.get(f"{base}/{html.unescape(link)}")
            assert reply.status_code == 200
            assert reply.content[:3] == b"\xff\xd8\xff"

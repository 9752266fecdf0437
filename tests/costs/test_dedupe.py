"""Dedupe within a run: rows whose image bytes, mask bytes and settings are identical are erased
and billed once; every row still gets its own readable output. The emulator's ledger judges."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

from PIL import Image

from prefect_flux_erase import storage
from prefect_flux_erase.emulator import EmulatorServer
from tests.costs.common import erase, manifest_of, results, write_rows


def test_a_thousand_rows_of_a_hundred_contents_bill_a_hundred_results(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    contents = [i % 100 for i in range(1000)]  # each content under ten keys and ten file names
    manifest = manifest_of(tmp_path, write_rows(tmp_path, contents))
    output = f"{tmp_path}/out"

    summary = erase(manifest, output, emu, shard_size=100, concurrency=32)

    stats = emu.stats()
    assert stats["results_billed"] == 100
    assert summary.succeeded == 1000
    assert summary.total_cost == stats["total_usd"] == 3.0
    rows = results(output)
    # Every row has an output file of its own, readable as an image.
    assert len({r["output_uri"][0] for r in rows}) == 1000
    for row in rows[::97]:
        with Image.open(io.BytesIO(storage.read_bytes(row["output_uri"][0]))) as img:
            assert img.size == (256, 256)
    # The first row with a content erased it (and paid); the others say whose result they share.
    first = {c: i for i, c in reversed(list(enumerate(contents)))}
    for i, row in enumerate(rows):
        leader = first[contents[i]]
        if i == leader:
            assert row["shared_with"] is None
            assert row["cost"] == 0.03
        else:
            assert row["shared_with"] == leader, row
            assert row["cost"] == 0.0
    assert Counter(r["shared_with"] is None for r in rows) == {True: 100, False: 900}


def test_rows_with_other_settings_are_not_shared(tmp_path: Path, emu: EmulatorServer) -> None:
    rows = write_rows(tmp_path, [0, 0, 0])
    rows[2]["dilate_pixels"] = 20  # same pixels, another dilation: another erase
    manifest = manifest_of(tmp_path, rows)

    erase(manifest, f"{tmp_path}/out", emu)

    assert emu.stats()["results_billed"] == 2
    assert [r["shared_with"] for r in results(f"{tmp_path}/out")] == [None, 0, None]


def test_dedupe_can_be_turned_off(tmp_path: Path, emu: EmulatorServer) -> None:
    manifest = manifest_of(tmp_path, write_rows(tmp_path, [0, 0, 0]))

    erase(manifest, f"{tmp_path}/out", emu, dedupe=False)

    assert emu.stats()["results_billed"] == 3

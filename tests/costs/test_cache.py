"""The cross-run result cache: contents erased before are copied, not paid for again; entries
are whole or absent, also when runs write them at once; the cache is off unless given."""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from prefect_flux_erase import storage
from prefect_flux_erase.emulator import EmulatorServer
from prefect_flux_erase.results.cache import ResultCache
from prefect_flux_erase.run import estimate_cost
from tests.costs.common import config_for, erase, manifest_of, results, write_rows


def test_a_manifest_repeating_fifty_erased_contents_bills_the_fifty_new_ones(
    tmp_path: Path, emu: EmulatorServer, s3_options: dict[str, Any], s3_bucket: str
) -> None:
    cache = f"s3://{s3_bucket}/flux-erase-cache"
    first = manifest_of(tmp_path / "a", write_rows(tmp_path / "a", range(100)))
    second = manifest_of(tmp_path / "b", write_rows(tmp_path / "b", range(50, 150)))
    erase(first, f"{tmp_path}/out-a", emu, cache=cache, cache_storage_options=s3_options)
    assert emu.stats()["results_billed"] == 100

    estimate = estimate_cost(
        second, runware=config_for(emu), cache=cache, cache_storage_options=s3_options
    )
    summary = erase(second, f"{tmp_path}/out-b", emu, cache=cache, cache_storage_options=s3_options)

    assert (estimate.cached_rows, estimate.billed_rows) == (50, 50)
    assert emu.stats()["results_billed"] == 150  # 50 more: the new contents only
    assert summary.succeeded == 100
    assert summary.cached == 50
    rows = results(f"{tmp_path}/out-b")
    assert [r["cached"] for r in rows] == [True] * 50 + [False] * 50
    assert {r["cost"] for r in rows[:50]} == {0.0}
    for row in rows[::10]:  # every row has its own readable output, cached or not
        assert "out-b/images/" in row["output_uri"][0]
        with Image.open(io.BytesIO(storage.read_bytes(row["output_uri"][0]))) as img:
            assert img.size == (256, 256)


def test_without_a_cache_nothing_is_served_from_one(tmp_path: Path, emu: EmulatorServer) -> None:
    manifest = manifest_of(tmp_path, write_rows(tmp_path, range(3)))
    erase(manifest, f"{tmp_path}/out-1", emu, cache=f"{tmp_path}/cache")

    summary = erase(manifest, f"{tmp_path}/out-2", emu)  # the cache is off: paid again

    assert summary.cached == 0
    assert emu.stats()["results_billed"] == 6


def test_runs_writing_the_same_entries_at_once_leave_whole_entries(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    cache = f"{tmp_path}/cache"
    manifest = manifest_of(tmp_path, write_rows(tmp_path, range(20)))
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            erase(manifest, f"{tmp_path}/{name}", emu, cache=cache, shard_size=5)
        except BaseException as exc:  # reported below, with the other run's
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f"out-{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert not errors
    store = ResultCache(cache)
    entries = sorted(Path(cache).glob("*/*.json"))
    assert len(entries) == 20
    for entry_file in entries:
        entry = store.get(entry_file.stem)
        assert entry is not None
        assert all(Path(uri).is_file() for uri in entry.results)
    billed = emu.stats()["results_billed"]
    summary = erase(manifest, f"{tmp_path}/out-3", emu, cache=cache)
    assert summary.cached == 20
    assert emu.stats()["results_billed"] == billed  # a third run pays nothing


def test_an_entry_is_invisible_until_published_and_a_lost_object_is_a_miss(
    tmp_path: Path,
) -> None:
    store = ResultCache(f"{tmp_path}/cache")
    key = "0f" * 16
    store.put_result(key, "task-a", 0, "jpg", b"bytes")
    assert store.get(key) is None  # results written, entry not yet: a miss, never half an entry
    store.publish(key, "task-a", count=2, ext="jpg")
    entry = store.get(key)
    assert entry is not None
    assert store.read_result(entry, 0) == b"bytes"
    with pytest.raises(storage.InputReadError) as gone:
        store.read_result(entry, 1)  # published with an object that is gone
    assert gone.value.code == "inputNotFound"

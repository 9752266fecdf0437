"""`erase_image` / `aerase_image`: one image, both backends, bytes or a written URI."""

from __future__ import annotations

from pathlib import Path

import pytest

from prefect_flux_erase import storage
from prefect_flux_erase.blocks import FluxEraseSettings
from prefect_flux_erase.emulator import EmulatorServer
from prefect_flux_erase.engine.imageio import ImageInputError
from prefect_flux_erase.tasks import aerase_image, erase_image
from tests.fixtures.builders import mask_bytes, photo_bytes
from tests.fixtures.jobs import credentials_for


async def test_aerase_image_local_returns_the_erased_bytes() -> None:
    data = await aerase_image.fn(
        photo_bytes(1),
        mask_bytes(),
        settings=FluxEraseSettings(output_format="PNG"),
        local_engine="echo",
    )

    assert isinstance(data, bytes)
    assert data[:4] == b"\x89PNG"


def test_erase_image_runware_writes_the_output_and_is_idempotent(
    tmp_path: Path, emu: EmulatorServer
) -> None:
    storage.write_bytes(f"{tmp_path}/in.png", photo_bytes(2))
    storage.write_bytes(f"{tmp_path}/mask.png", mask_bytes())
    options = {
        "output": f"{tmp_path}/out/erased.jpg",
        "backend": "runware",
        "credentials": credentials_for(emu.url),
        "dilate_pixels": 15,
    }

    first = erase_image.fn(f"{tmp_path}/in.png", f"{tmp_path}/mask.png", **options)
    second = erase_image.fn(f"{tmp_path}/in.png", f"{tmp_path}/mask.png", **options)

    assert first == second == f"{tmp_path}/out/erased.jpg"
    assert (tmp_path / "out" / "erased.jpg").read_bytes()[:3] == b"\xff\xd8\xff"
    stats = emu.stats()
    assert stats["results_billed"] == 1  # the repeat was answered from the first task
    assert stats["conflicts"] == 1


def test_erase_image_rejects_a_mask_of_another_size_before_any_request(
    emu: EmulatorServer,
) -> None:
    with pytest.raises(ImageInputError) as caught:
        erase_image.fn(
            photo_bytes(3),
            mask_bytes((64, 64)),
            backend="runware",
            credentials=credentials_for(emu.url),
        )

    assert caught.value.code == "invalidMaskDimensions"
    assert emu.stats()["requests_total"] == 0


def test_single_image_tasks_are_configured_for_safe_retries() -> None:
    from prefect.cache_policies import NO_CACHE

    from prefect_flux_erase.tasks.stage_options import retry_if_transient

    for single in (erase_image, aerase_image):
        assert single.retries == 3
        assert single.retry_delay_seconds == [2.0, 4.0, 8.0]
        assert single.retry_jitter_factor == 0.5
        assert single.retry_condition_fn is retry_if_transient
        assert single.cache_policy is NO_CACHE
        assert single.cache_result_in_memory is False
    assert aerase_image.timeout_seconds == 900.0  # erase_image enforces it on its own loop

"""`erase_image` / `aerase_image`: one image, both backends, bytes or a written URI."""

from __future__ import annotations

from pathlib import Path

import pytest

from prefect_flux_erase import storage
from prefect_flux_erase.blocks import FluxEraseSettings
from prefect_flux_erase.emulator import EmulatorServer
from prefect_flux_erase.engine.imageio import ImageInputError
from prefect_flux_erase.runware.errors import InvalidOptionError
from prefect_flux_erase.shards.rows import RowTicket, prepare_row
from prefect_flux_erase.tasks import aerase_image, erase_image
from tests.fixtures.builders import mask_bytes, photo_bytes
from tests.fixtures.corpus import mask as corpus_mask
from tests.fixtures.corpus import png_bomb
from tests.fixtures.jobs import credentials_for, job_over


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


# --------------------------------------------------------------------------- one row path

#: An input per code (image, mask, dilate_pixels): a manifest row with it fails with the code.
BAD_SINGLES: dict[str, tuple[bytes | None, bytes | None, int | None]] = {
    "emptyMask": (photo_bytes(4), corpus_mask(empty=True), None),
    "imageTooSmall": (photo_bytes(5, (320, 240)), mask_bytes((320, 240)), None),
    "invalidMaskDimensions": (photo_bytes(6), mask_bytes((64, 64)), None),
    "invalidImage": (b"<html>404 Not Found</html>", mask_bytes(), None),
    "emptyInput": (b"", mask_bytes(), None),
    "imageTooLarge": (png_bomb(), mask_bytes(), None),
    "inputNotFound": (None, mask_bytes(), None),
    "invalidOption": (photo_bytes(7), mask_bytes(), 99),
}


@pytest.mark.parametrize("backend", ["local", "runware"])
@pytest.mark.parametrize("code", sorted(BAD_SINGLES))
async def test_erase_image_refuses_what_a_manifest_row_fails_for_with_the_same_code(
    code: str, backend: str, tmp_path: Path, emu: EmulatorServer
) -> None:
    image, mask, dilate = BAD_SINGLES[code]
    image_uri, mask_uri = f"{tmp_path}/in/photo.png", f"{tmp_path}/in/mask.png"
    if image is not None:  # None: the file is missing
        storage.write_bytes(image_uri, image)
    assert mask is not None
    storage.write_bytes(mask_uri, mask)
    row = {"row_key": "r", "image_uri": image_uri, "mask_uri": mask_uri, "dilate_pixels": dilate}
    job = job_over(tmp_path, [row], backend=backend, url=emu.url if backend == "runware" else None)
    ticket = RowTicket(
        row_index=0, row_key="r", image_uri=image_uri, mask_uri=mask_uri, dilate_pixels=dilate
    )

    as_row = await prepare_row(ticket, job, delivery=None, keep_decoded=backend == "local")
    with pytest.raises(Exception) as caught:  # noqa: PT011 - the code is what is compared
        await aerase_image.fn(
            image_uri,
            mask_uri,
            backend=backend,
            credentials=credentials_for(emu.url) if backend == "runware" else None,
            dilate_pixels=dilate,
            local_engine="echo",
        )

    assert isinstance(as_row, RowTicket)
    assert as_row.error_code == code
    assert getattr(caught.value, "code", None) == code, repr(caught.value)
    assert emu.stats()["requests_total"] == 0


async def test_erase_image_refuses_bytes_inputs_with_the_same_codes() -> None:
    for code in ("emptyMask", "imageTooSmall"):
        image, mask, _ = BAD_SINGLES[code]
        assert image is not None
        assert mask is not None
        with pytest.raises(ImageInputError) as caught:
            await aerase_image.fn(image, mask, local_engine="echo")
        assert caught.value.code == code


@pytest.mark.parametrize(
    ("name", "magic"),
    [("astro.png", b"\x89PNG"), ("astro.JPEG", b"\xff\xd8\xff"), ("a.webp", b"RIFF")],
)
def test_erase_image_writes_the_format_the_output_name_asks_for(
    name: str, magic: bytes, tmp_path: Path
) -> None:
    written = erase_image.fn(
        photo_bytes(8), mask_bytes(), output=f"{tmp_path}/{name}", local_engine="echo"
    )

    assert (tmp_path / name).read_bytes()[: len(magic)] == magic
    assert written == f"{tmp_path}/{name}"


def test_erase_image_refuses_an_output_name_of_another_format_than_the_settings(
    tmp_path: Path,
) -> None:
    with pytest.raises(InvalidOptionError) as caught:
        erase_image.fn(
            photo_bytes(8),
            mask_bytes(),
            output=f"{tmp_path}/astro.png",
            settings=FluxEraseSettings(output_format="JPG"),
            local_engine="echo",
        )

    assert "astro.png" in str(caught.value)
    assert "output_format='PNG'" in str(caught.value)
    assert not (tmp_path / "astro.png").exists()


def test_the_same_image_with_another_dilation_is_another_task(emu: EmulatorServer) -> None:
    options = {"backend": "runware", "credentials": credentials_for(emu.url)}

    erase_image.fn(photo_bytes(9), mask_bytes(), dilate_pixels=5, **options)
    erase_image.fn(photo_bytes(9), mask_bytes(), dilate_pixels=30, **options)

    assert emu.stats()["results_billed"] == 2
    assert emu.stats()["conflicts"] == 0


@pytest.mark.usefixtures("prefect_harness")
def test_erase_image_outside_a_flow_warns_nothing(tmp_path: Path) -> None:
    import warnings

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        erase_image(photo_bytes(10), mask_bytes(), output=f"{tmp_path}/a.jpg", local_engine="echo")
        erase_image(photo_bytes(11), mask_bytes(), output=f"{tmp_path}/b.jpg", local_engine="echo")

    assert [str(w.message) for w in seen] == []
    assert (tmp_path / "b.jpg").read_bytes()[:3] == b"\xff\xd8\xff"

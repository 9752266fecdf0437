"""The echo engine and engine resolution."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import pytest

from prefect_flux_erase.emulator import EmulatorConfig, EngineUnavailableError, resolve_engine
from prefect_flux_erase.engine.echo import DITHER, echo_fill
from prefect_flux_erase.engine.regions import dilate as dilate_mask


def _scene() -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[:, :] = (10, 120, 240)
    rgb[28:36, 28:36] = 255
    mask = np.zeros((64, 64), bool)
    mask[28:36, 28:36] = True
    return rgb, mask


def test_echo_fills_the_dilated_mask_with_the_ring_colour_and_keeps_the_rest() -> None:
    rgb, mask = _scene()
    out = echo_fill(rgb, mask, dilate_pixels=4, seed=5)
    hole = dilate_mask(mask, 4)
    assert np.abs(out[hole].astype(int) - (10, 120, 240)).max() <= DITHER
    assert (out[~hole] == rgb[~hole]).all()
    assert out is not rgb


def test_dilate_pixels_grows_the_changed_area() -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    _, mask = _scene()
    changed = [int((echo_fill(rgb, mask, d, 0) != rgb).any(axis=2).sum()) for d in (0, 5, 10)]
    assert changed[0] <= 64 < changed[1] < changed[2]
    assert (echo_fill(rgb, mask, 10, 0) != rgb).any(axis=2)[~dilate_mask(mask, 10)].sum() == 0


def test_echo_is_deterministic_per_seed_and_varies_across_seeds() -> None:
    rgb, mask = _scene()
    assert (echo_fill(rgb, mask, 2, 7) == echo_fill(rgb, mask, 2, 7)).all()
    assert (echo_fill(rgb, mask, 2, 7) != echo_fill(rgb, mask, 2, 8)).any()


def test_echo_with_an_empty_or_full_mask() -> None:
    rgb, _ = _scene()
    assert (echo_fill(rgb, np.zeros((64, 64), bool), 10, 0) == rgb).all()
    full = echo_fill(rgb, np.ones((64, 64), bool), 0, 0)
    assert np.abs(full.astype(int) - 127).max() <= DITHER


def test_resolve_engine_names_and_callables() -> None:
    assert resolve_engine("echo") is echo_fill

    def mine(rgb: Any, mask: Any, dilate: int, seed: int) -> Any:
        return rgb

    assert resolve_engine(mine) is mine
    with pytest.raises(EngineUnavailableError):
        resolve_engine("nope")  # type: ignore[arg-type]


def test_local_engine_resolves_or_fails_clearly() -> None:
    engine_pkg = importlib.import_module("prefect_flux_erase.engine")
    if not hasattr(engine_pkg, "get_engine"):
        with pytest.raises(EngineUnavailableError, match="get_engine"):
            resolve_engine("local")
        return
    rgb, mask = _scene()
    out = resolve_engine("local")(rgb, mask, 2, 0)
    assert out.shape == rgb.shape
    assert out.dtype == np.uint8


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="latency"):
        EmulatorConfig(latency=(0.3, 0.1))
    with pytest.raises(ValueError, match="unknown fault"):
        EmulatorConfig(faults={"gremlins": 0.1})
    with pytest.raises(ValueError, match="engine"):
        EmulatorConfig(engine="gpu")


def test_a_local_engine_with_keyword_only_options_is_called_by_keyword(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[int, int]] = []

    def erase(rgb: Any, mask: Any, *, dilate_pixels: int = 10, seed: int = 0) -> Any:
        calls.append((dilate_pixels, seed))
        return rgb

    engine_pkg = importlib.import_module("prefect_flux_erase.engine")
    monkeypatch.setattr(engine_pkg, "get_engine", lambda name: erase, raising=False)
    rgb, mask = _scene()
    assert resolve_engine("local")(rgb, mask, 7, 3) is rgb
    assert calls == [(7, 3)]

"""Which erase engine the emulator runs: a name or a callable, resolved in one place.

Example:
    >>> resolve_engine("echo").__name__
    'echo_fill'
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from prefect_flux_erase.emulator.config import EngineFn
from prefect_flux_erase.engine.echo import echo_fill


def _by_keyword(engine: Callable[..., Any]) -> EngineFn:
    """Call ``engine`` with ``dilate_pixels=`` and ``seed=`` keywords when it names them.

    The local engine takes them keyword-only (``erase(rgb, mask, *, dilate_pixels, seed)``);
    other callables get them positionally.
    """
    try:
        params = inspect.signature(engine).parameters
    except (TypeError, ValueError):
        return cast(EngineFn, engine)
    if not {"dilate_pixels", "seed"} <= set(params):
        return cast(EngineFn, engine)

    def call(
        rgb: NDArray[np.uint8], mask: NDArray[np.bool_], dilate_pixels: int, seed: int
    ) -> NDArray[np.uint8]:
        return cast(NDArray[np.uint8], engine(rgb, mask, dilate_pixels=dilate_pixels, seed=seed))

    call.__name__ = getattr(engine, "__name__", "local")
    return call


class EngineUnavailableError(RuntimeError):
    """The configured engine cannot be loaded (for example the local engine is not installed).

    Example:
        >>> try:
        ...     resolve_engine("gpu")  # type: ignore[arg-type]
        ... except EngineUnavailableError as exc:
        ...     "unknown engine" in str(exc)
        True
    """


def resolve_engine(spec: str | EngineFn) -> EngineFn:
    """Return the engine callable for ``"echo"``, ``"local"`` or a callable given as is.

    ``"local"`` is imported lazily through ``prefect_flux_erase.engine.get_engine`` so that the
    emulator starts quickly and does not need the local engine's heavier dependencies.

    Example:
        >>> fn = lambda rgb, mask, dilate, seed: rgb
        >>> resolve_engine(fn) is fn
        True
    """
    if callable(spec):
        return spec
    if spec == "echo":
        return echo_fill
    if spec == "local":
        try:
            module = importlib.import_module("prefect_flux_erase.engine")
            get_engine = module.get_engine
        except (ImportError, AttributeError) as exc:
            raise EngineUnavailableError(
                "the 'local' engine is not available: prefect_flux_erase.engine.get_engine "
                f"could not be imported ({exc}); use engine='echo' or pass a callable"
            ) from exc
        engine = get_engine("local")
        if not callable(engine) and callable(getattr(engine, "erase", None)):
            engine = engine.erase
        if not callable(engine):
            raise EngineUnavailableError(
                f"get_engine('local') returned {type(engine).__name__}, which is not callable"
            )
        return _by_keyword(engine)
    raise EngineUnavailableError(f"unknown engine {spec!r}; use 'echo', 'local' or a callable")

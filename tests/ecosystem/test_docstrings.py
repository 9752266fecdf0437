"""Every public name is documented with an example, because the API reference is built from them.

Public means: every name in the ``__all__`` of the package, of each subpackage and of each module
that declares one, and every
Prefect task, flow and block the package defines (whether exported or not: they show up in the
Prefect UI). A docstring "has an example" when it has an ``Example:``/``Examples:`` section, a
doctest (``>>>``) or a fenced code block.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
import re
from types import ModuleType
from typing import Any

import pytest

import prefect_flux_erase

_HAS_AIRFLOW = importlib.util.find_spec("airflow") is not None
EXAMPLE = re.compile(r"^\s*(Examples?:\s*$|>>> |```)", re.MULTILINE)


def _modules() -> list[ModuleType]:
    """The package and every importable module under it (optional-dependency failures skipped)."""
    found = [prefect_flux_erase]
    for info in pkgutil.walk_packages(prefect_flux_erase.__path__, "prefect_flux_erase."):
        if ".emulator." in info.name and info.name.endswith("__main__"):
            continue
        if info.name.startswith("prefect_flux_erase.airflow") and not _HAS_AIRFLOW:
            continue  # the Airflow face needs Airflow: checked in its own environment
        found.append(importlib.import_module(info.name))
    return found


def _prefect_objects() -> dict[str, Any]:
    """Every task, flow and block class defined in the package, by qualified name."""
    from prefect import Flow, Task
    from prefect.blocks.core import Block

    objects: dict[str, Any] = {}
    for module in _modules():
        for name, value in vars(module).items():
            if isinstance(value, Task | Flow):
                if value.fn.__module__ == module.__name__:
                    objects[f"{module.__name__}.{name}"] = value
            elif (
                inspect.isclass(value)
                and issubclass(value, Block)
                and value.__module__ == module.__name__
            ):
                objects[f"{module.__name__}.{name}"] = value
    return objects


def _public_names() -> dict[str, Any]:
    names: dict[str, Any] = {}
    for module in _modules():
        for name in getattr(module, "__all__", ()):
            if name.startswith("__"):  # __version__ is a string, documented by the package
                continue
            names[f"{module.__name__}.{name}"] = getattr(module, name)
    return names


def docstring_of(obj: Any) -> str | None:
    """The docstring a reader sees: a task's or flow's function's, else the object's own.

    Example:
        >>> docstring_of(docstring_of).splitlines()[0]
        "The docstring a reader sees: a task's or flow's function's, else the object's own."
    """
    from prefect import Flow, Task

    if isinstance(obj, Task | Flow):
        return inspect.getdoc(obj.fn)
    if not (inspect.isclass(obj) or inspect.isroutine(obj) or inspect.ismodule(obj)):
        return None  # constants and type aliases: documented where they are defined
    return inspect.getdoc(obj)


def problem(obj: Any) -> str | None:
    """Why ``obj``'s docstring does not pass, or ``None`` when it does.

    Example:
        >>> problem(problem) is None
        True
    """
    from prefect import Flow, Task

    if not (
        isinstance(obj, Task | Flow)
        or inspect.isclass(obj)
        or inspect.isroutine(obj)
        or inspect.ismodule(obj)
    ):
        return None
    doc = docstring_of(obj)
    if not doc or not doc.strip():
        return "no docstring"
    if not EXAMPLE.search(doc):
        return "docstring has no example (an Example section, a >>> line or a fenced block)"
    return None


PUBLIC = _public_names()
PREFECT = _prefect_objects()


def _cases(names: dict[str, Any]) -> list[str]:
    return sorted(names)


def test_the_walk_finds_the_package_public_surface() -> None:
    # A walk that silently found nothing would make every other test here vacuous.
    assert "prefect_flux_erase.blocks.RunwareCredentials" in PUBLIC
    assert "prefect_flux_erase.runware.RunwareClient" in PUBLIC
    assert "prefect_flux_erase.emulator.EmulatorConfig" in PUBLIC
    assert "prefect_flux_erase.storage.files.read_bytes" in PUBLIC  # a module's own __all__
    assert "prefect_flux_erase.flows.manifest_flow.erase_manifest" in PREFECT
    assert "prefect_flux_erase.tasks.stages.submit_erase" in PREFECT
    assert "prefect_flux_erase.blocks.settings.FluxEraseSettings" in PREFECT


def test_the_check_rejects_a_docstring_without_an_example() -> None:
    def documented_without_example() -> None:
        """Says what it does, and nothing more."""

    def undocumented() -> None:
        pass

    assert problem(documented_without_example) == (
        "docstring has no example (an Example section, a >>> line or a fenced block)"
    )
    assert problem(undocumented) == "no docstring"


@pytest.mark.parametrize("name", _cases(PUBLIC))
def test_public_name_has_a_docstring_with_an_example(name: str) -> None:
    assert problem(PUBLIC[name]) is None, f"{name}: {problem(PUBLIC[name])}"


@pytest.mark.parametrize("name", _cases(PREFECT))
def test_prefect_task_flow_and_block_has_a_docstring_with_an_example(name: str) -> None:
    assert problem(PREFECT[name]) is None, f"{name}: {problem(PREFECT[name])}"

"""The Airflow face follows the package's docstring rule (the main environment cannot import it,
so the rule is applied here): every module and public name has a docstring with an example."""

from __future__ import annotations

import importlib
import inspect

import pytest

import prefect_flux_erase.airflow as face
from tests.ecosystem.test_docstrings import problem

MODULES = ("hooks", "triggers", "operators", "manifest", "single_image", "provider_info")


def _public() -> dict[str, object]:
    found: dict[str, object] = {name: getattr(face, name) for name in face.__all__}
    for short in MODULES:
        module = importlib.import_module(f"{face.__name__}.{short}")
        found[module.__name__] = module
        for name, value in vars(module).items():
            defined_here = getattr(value, "__module__", None) == module.__name__
            kind = inspect.isroutine(value) or inspect.isclass(value)
            if not name.startswith("_") and defined_here and kind:
                found[f"{module.__name__}.{name}"] = value
    return found


PUBLIC = _public()


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_public_name_has_a_docstring_with_an_example(name: str) -> None:
    assert problem(PUBLIC[name]) is None, f"{name}: {problem(PUBLIC[name])}"

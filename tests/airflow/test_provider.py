"""The provider as Airflow sees it: its metadata, its CLI listings, and a package that stays
importable (and Airflow-free) without Airflow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from prefect_flux_erase.airflow.provider_info import get_provider_info
from tests.airflow.conftest import CANARY_KEY


def _airflow(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, **(env or {})},
        check=False,
    )


def _schema(name: str) -> dict[str, Any]:
    import airflow

    return json.loads((Path(airflow.__file__).parent / name).read_text(encoding="utf-8"))


def test_provider_info_validates_against_the_installed_airflow_schemas() -> None:
    import jsonschema

    info = get_provider_info()
    jsonschema.Draft7Validator(_schema("provider_info.schema.json")).validate(info)
    # The runtime schema lets any connection-type keys through; the provider.yaml schema is the
    # one that says what conn-fields and ui-field-behaviour may hold.
    strict = _schema("provider.yaml.schema.json")["properties"]["connection-types"]
    jsonschema.Draft7Validator(strict).validate(info["connection-types"])
    # Every module named there imports and holds the classes the connection type names.
    for kind in ("hooks", "triggers", "operators"):
        for module in info[kind][0]["python-modules"]:
            __import__(module)
    hook_path = info["connection-types"][0]["hook-class-name"]
    module, _, name = hook_path.rpartition(".")
    assert getattr(sys.modules[module], name).conn_type == "flux_erase"


def test_the_schema_check_catches_a_bad_connection_field() -> None:
    import jsonschema

    strict = _schema("provider.yaml.schema.json")["properties"]["connection-types"]
    bad = get_provider_info()["connection-types"]
    bad[0]["conn-fields"]["timeout"]["schema"]["format"] = "seconds"  # not a known format
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(strict).validate(bad)


def test_airflow_providers_cli_lists_the_provider_and_its_connection_type() -> None:
    providers = _airflow("providers", "list", "-o", "json")
    assert providers.returncode == 0, providers.stderr
    listed = {p["package_name"]: p for p in json.loads(providers.stdout.strip().splitlines()[-1])}
    assert listed["prefect-flux-erase"]["version"] == get_provider_info()["versions"][0]

    hooks = _airflow("providers", "hooks", "-o", "json")
    assert hooks.returncode == 0, hooks.stderr
    by_type = {h["connection_type"]: h for h in json.loads(hooks.stdout.strip().splitlines()[-1])}
    assert by_type["flux_erase"]["class"] == "prefect_flux_erase.airflow.hooks.FluxEraseHook"
    assert by_type["flux_erase"]["hook_name"] == "FLUX Erase (Runware)"


def test_connection_form_comes_from_the_provider_info() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    widgets = manager.connection_form_widgets
    assert {
        f"extra__flux_erase__{n}" for n in ("timeout", "connect_timeout", "max_retries")
    } <= set(widgets)
    behaviour = manager.field_behaviours["flux_erase"]
    assert behaviour["relabeling"] == {"host": "Base URL", "password": "API key"}
    assert set(behaviour["hidden_fields"]) == {"schema", "port", "login"}


def test_airflow_connections_test_reaches_the_emulator_through_the_hook(emu: Any) -> None:
    conn = json.dumps({"conn_type": "flux_erase", "host": emu.url, "password": CANARY_KEY})
    env = {"AIRFLOW_CONN_FLUX_ERASE_CLI": conn, "AIRFLOW__CORE__TEST_CONNECTION": "Enabled"}

    good = _airflow("connections", "test", "flux_erase_cli", env=env)
    asked = emu.stats()["requests_by_task_type"].get("getResponse", 0)
    emu.configure(api_keys={"another-key"})
    refused = _airflow("connections", "test", "flux_erase_cli", env=env)

    assert good.returncode == 0, good.stdout + good.stderr
    assert "Connection success!" in good.stdout
    assert asked == 1  # one getResponse, nothing submitted, nothing billed
    assert emu.stats()["results_billed"] == 0
    assert "Connection failed" in refused.stdout
    assert "AuthenticationError" in refused.stdout
    assert CANARY_KEY not in good.stdout + good.stderr + refused.stdout + refused.stderr


_NO_AIRFLOW = """
import importlib.abc, sys

class NoAirflow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "airflow" or name.startswith("airflow."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoAirflow())
import prefect_flux_erase, prefect_flux_erase.airflow
from prefect_flux_erase.airflow.provider_info import get_provider_info
assert get_provider_info()["package-name"] == "prefect-flux-erase"
try:
    from prefect_flux_erase.airflow import FluxEraseHook
except ModuleNotFoundError as exc:
    print("ERROR:", exc)
print("AIRFLOW LOADED:", any(m == "airflow" or m.startswith("airflow.") for m in sys.modules))
"""


def test_without_airflow_the_package_imports_and_the_face_says_what_to_install() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _NO_AIRFLOW], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "ERROR: FluxEraseHook needs Apache Airflow" in done.stdout
    assert "pip install 'prefect-flux-erase[airflow]'" in done.stdout
    assert "AIRFLOW LOADED: False" in done.stdout


def test_importing_the_package_and_its_provider_info_imports_no_airflow() -> None:
    code = (
        "import sys, prefect_flux_erase, prefect_flux_erase.airflow.provider_info\n"
        "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"

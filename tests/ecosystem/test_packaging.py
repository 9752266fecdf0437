"""The built wheel is what `pip install prefect-flux-erase` gets: typed, with its data and hooks."""

from __future__ import annotations

import email
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from email.message import Message
from pathlib import Path

import pytest

from prefect_flux_erase._version import __version__

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_FILES = {
    f"prefect_flux_erase/sample_data/{kind}/{name}.{ext}"
    for kind, ext in (("images", "jpg"), ("masks", "png"))
    for name in ("astronaut", "chelsea", "coffee", "rocket")
} | {"prefect_flux_erase/sample_data/LICENSES.md"}
EXTRAS = {"s3", "gcs", "azure", "dask", "ray", "airflow", "docs", "examples", "dev"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """Build the wheel from a clean copy of the sources (the work tree stays untouched)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "prefect_flux_erase",
        src / "prefect_flux_erase",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    dist = tmp_path_factory.mktemp("dist")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    proc = subprocess.run(
        [*command, "-w", str(dist), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (built,) = dist.glob("*.whl")
    assert built.name == f"prefect_flux_erase-{__version__}-py3-none-any.whl"
    return zipfile.ZipFile(built)


def _dist_info(wheel: zipfile.ZipFile, name: str) -> str:
    return wheel.read(f"prefect_flux_erase-{__version__}.dist-info/{name}").decode()


def _metadata(wheel: zipfile.ZipFile) -> Message:
    return email.message_from_string(_dist_info(wheel, "METADATA"))


def test_wheel_ships_py_typed_and_the_sample_data(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    assert "prefect_flux_erase/py.typed" in names
    assert names >= SAMPLE_FILES, sorted(SAMPLE_FILES - names)
    assert not any("__pycache__" in n or n.startswith("tests/") for n in names)


def test_wheel_declares_the_console_script_and_the_prefect_collection(
    wheel: zipfile.ZipFile,
) -> None:
    entry_points = _dist_info(wheel, "entry_points.txt")
    sections = dict(re.findall(r"\[([^\]]+)\]\n((?:[^\[\n][^\n]*\n?)*)", entry_points))
    assert "flux-erase = prefect_flux_erase.cli:main" in sections["console_scripts"]
    assert "prefect_flux_erase = prefect_flux_erase.blocks" in sections["prefect.collections"]
    # Airflow finds the provider (connection type, hook, operators) through this entry point.
    provider = "provider_info = prefect_flux_erase.airflow.provider_info:get_provider_info"
    assert provider in sections["apache_airflow_provider"]


def test_metadata_has_the_version_extras_and_licence(wheel: zipfile.ZipFile) -> None:
    meta = _metadata(wheel)
    assert meta["Name"] == "prefect-flux-erase"
    assert meta["Version"] == __version__
    assert meta["Requires-Python"] == ">=3.11"
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta.get_all("License-File") == ["LICENSE"]
    licence = next(n for n in wheel.namelist() if n.endswith(".dist-info/licenses/LICENSE"))
    assert b"Apache License" in wheel.read(licence)
    assert set(meta.get_all("Provides-Extra") or []) >= EXTRAS
    requires = meta.get_all("Requires-Dist") or []
    assert any(r.startswith("s3fs") and 'extra == "s3"' in r for r in requires)
    assert any(r.startswith("prefect-dask") and 'extra == "dask"' in r for r in requires)
    assert any(r.startswith("apache-airflow") and 'extra == "airflow"' in r for r in requires)
    assert any(r.startswith("prefect<4") or r.startswith("prefect>=") for r in requires)
    # The README is the long description PyPI shows.
    assert "make demo" in (meta.get_payload() or "")


def test_every_classifier_is_a_known_trove_classifier() -> None:
    from trove_classifiers import classifiers as known

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    unknown = [c for c in project["classifiers"] if c not in known]
    assert not unknown
    assert "Typing :: Typed" in project["classifiers"]


def test_version_is_defined_once_and_the_changelog_names_it() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" in project["project"]["dynamic"]
    assert "version" not in project["project"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "prefect_flux_erase._version.__version__"
    }
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## [{__version__}]" in changelog


def _make_plan(target: str, venv: Path) -> str:
    """The commands ``make <target>`` would run on a fresh clone (``make -n``, nothing runs)."""
    proc = subprocess.run(
        ["make", "-n", target, f"VENV={venv}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return proc.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_demo_installs_the_runtime_only_and_make_test_the_dev_extras(
    tmp_path: Path,
) -> None:
    demo = _make_plan("demo", tmp_path / "venv")
    test = _make_plan("test", tmp_path / "venv")

    assert "pip install -q -e .\n" in demo
    assert "[dev]" not in demo
    assert "npm" not in demo
    assert "flux-erase demo" in demo
    assert "pip install -q -e '.[dev]'" in test
    assert "pytest" in test


def test_the_front_doors_names_import_from_the_package_without_prefect() -> None:
    script = (
        "import sys; from prefect_flux_erase import EraseSummary, ShardsFailed, "
        "TooManyFailedRows, run_manifest; "
        "print(run_manifest.__module__, TooManyFailedRows.__module__, EraseSummary.__module__, "
        "ShardsFailed.__name__, 'prefect' in sys.modules)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )

    assert proc.stdout.split() == [
        "prefect_flux_erase.run.manifest_run",
        "prefect_flux_erase.run.manifest_run",
        "prefect_flux_erase.results.summary",
        "ShardsFailed",
        "False",
    ]

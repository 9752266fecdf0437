"""The documentation keeps up with the code: every CLI flag, every error code, every reference.

`mkdocs build --strict` (CI's `make docs`) catches broken links and API references; these tests
catch what a build cannot: a new flag or error code that nobody documented.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PACKAGE = ROOT / "prefect_flux_erase"
COMMANDS = ("run", "estimate", "manifest", "demo", "emulator")

# Where the code gives a row or run a stable error code. Doctest lines are ignored.
CODE_PATTERNS = (
    re.compile(r'\.failed\(\s*"(\w+)"'),
    re.compile(r'\b(?:default_)?code\s*=\s*"(\w+)"(?:\s+if\b[^\n]*?\belse\s+"(\w+)")?'),
    re.compile(r'\berror_code\s*=\s*"(\w+)"'),
    re.compile(r'\.code\s+or\s+"(\w+)"'),
)
# Docstrings that list an exception's codes: "Codes: ``a``, ``b``."
CODES_SECTION = re.compile(r"Codes:(.*?)(?:\n\s*\n|Example)", re.S)


def _hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cli_help_hook", DOCS / "hooks" / "cli_help.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def code_error_codes() -> dict[str, str]:
    """Every error code the package (emulator aside: it speaks Runware's) can produce → file.

    Example:
        >>> codes = code_error_codes()
        >>> codes["inputNotFound"].endswith("storage/files.py")
        True
    """
    found: dict[str, str] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "emulator" in path.relative_to(PACKAGE).parts:
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        text = "\n".join(ln for ln in lines if not ln.lstrip().startswith((">>>", "...")))
        for pattern in CODE_PATTERNS:
            for match in pattern.finditer(text):
                for code in filter(None, match.groups()):
                    found.setdefault(code, str(path.relative_to(ROOT)))
        for section in CODES_SECTION.finditer(text):
            for code in re.findall(r"``(\w+)``", section.group(1)):
                found.setdefault(code, str(path.relative_to(ROOT)))
    return found


def _flags(help_text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", help_text))


def _section(page: str, command: str) -> str:
    """The hand-written part of a command's section: from its heading to its help marker."""
    start = page.index(f"## `flux-erase {command}`")
    end = page.index(f"<!-- flux-erase-help: {command} -->", start)
    return page[start:end]


def test_the_code_scan_finds_codes_of_every_kind() -> None:
    codes = code_error_codes()
    # One from each source: a failed ticket, a storage error, an image error, a manifest error,
    # a default code of an error class; a scan that finds none would make the next test vacuous.
    for code in (
        "unsafeRowKey",
        "inputNotFound",
        "invalidMaskDimensions",
        "manifestNotFound",
        "invalidRunOption",
    ):
        assert code in codes


def test_every_error_code_in_the_code_is_documented() -> None:
    page = (DOCS / "concepts" / "error-codes.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`(\w+)`", page))
    missing = {code: where for code, where in code_error_codes().items() if code not in documented}
    assert not missing, f"add these to docs/concepts/error-codes.md: {missing}"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_cli_flag_is_documented_in_its_section(command: str) -> None:
    page = (DOCS / "cli.md").read_text(encoding="utf-8")
    flags = _flags(_hook().command_help(command))
    assert "--help" in flags  # the help was read, so an empty difference below means something
    section = _section(page, command)
    missing = sorted(f for f in flags if f"`{f}`" not in section)
    assert not missing, f"document these flags of `flux-erase {command}` in docs/cli.md"


def test_every_command_of_the_usage_has_a_section() -> None:
    page = (DOCS / "cli.md").read_text(encoding="utf-8")
    usage = _hook().command_help("")
    (listed,) = re.findall(r"\{([a-z,]+)\}", usage.splitlines()[0])
    assert set(listed.split(",")) == set(COMMANDS)
    rendered = _hook().render_markers(page)
    assert "<!-- flux-erase-help" not in rendered
    for command in COMMANDS:
        assert f"usage: flux-erase {command}" in rendered


def test_every_fault_kind_is_documented() -> None:
    from prefect_flux_erase.emulator import FAULT_KINDS

    for page in ("cli.md", "concepts/backends.md"):
        text = (DOCS / page).read_text(encoding="utf-8")
        assert [k for k in FAULT_KINDS if f"`{k}`" not in text] == [], page


def _nav_pages(nav: list[object]) -> list[str]:
    pages: list[str] = []
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        if isinstance(value, list):
            pages.extend(_nav_pages(value))
        else:
            pages.append(str(value))
    return pages


def test_nav_pages_snippets_and_api_references_exist() -> None:
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=yaml.SafeLoader)
    pages = _nav_pages(config["nav"])
    assert len(pages) >= 20
    for page in pages:
        assert (DOCS / page).is_file(), page
    for path in DOCS.rglob("*.md"):
        text = path.read_text(encoding="utf-8")
        for snippet in re.findall(r'^--8<-- "([^"]+)"', text, re.MULTILINE):
            assert (ROOT / snippet).is_file(), f"{path.name}: {snippet}"
        for target in re.findall(r"^::: ([\w.]+)", text, re.MULTILINE):
            module, _, name = target.rpartition(".")
            try:
                importlib.import_module(target)
            except ModuleNotFoundError:
                assert hasattr(importlib.import_module(module), name), f"{path.name}: {target}"


def test_docs_and_readme_name_no_machine_specific_paths() -> None:
    texts = [p.read_text(encoding="utf-8") for p in DOCS.rglob("*.md")]
    texts.append((ROOT / "README.md").read_text(encoding="utf-8"))
    for text in texts:
        assert not re.search(r"/(work|home|root|Users)/\w", text)


def test_the_readme_names_every_results_column_and_the_emulators_engines() -> None:
    from prefect_flux_erase.engine import ENGINE_NAMES
    from prefect_flux_erase.results.row_outcome import RESULT_COLUMNS

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    outputs = readme.split("What you get under the output root:", 1)[1].split("\n\n", 2)[1]
    assert [c for c in RESULT_COLUMNS if f"`{c}`" not in outputs] == []
    assert "`row_index` (the row's 0-based position in the manifest" in outputs
    emulator = readme.split("The emulator erases with", 1)[1].split("\n\n", 1)[0]
    assert [e for e in ENGINE_NAMES if f"`{e}`" not in emulator] == []

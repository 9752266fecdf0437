# The README's commands. `make demo` and `make test` work on a fresh machine with Python 3.11+.
VENV ?= .venv
PY := $(VENV)/bin/python
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export DO_NOT_TRACK ?= 1

.PHONY: setup demo test lint typecheck check bench bench-engine docs docs-serve screenshots clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

demo: setup
	$(VENV)/bin/flux-erase demo

test: setup
	$(PY) -m pytest -q -p no:cacheprovider

lint: setup
	$(VENV)/bin/ruff check prefect_flux_erase tests benchmarks examples docs/hooks
	$(VENV)/bin/ruff format --check prefect_flux_erase tests benchmarks examples docs/hooks

typecheck: setup
	$(VENV)/bin/mypy prefect_flux_erase
	$(VENV)/bin/mypy examples

check: lint typecheck test

# The benchmarks behind the README's "Performance and guarantees" (benchmarks/RESULTS.md):
# throughput, memory and resume (~30 min on 2 cores), and the local engine's quality.
bench: setup
	$(PY) benchmarks/throughput.py
	$(PY) benchmarks/memory.py
	$(PY) benchmarks/resume.py

bench-engine: setup
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) benchmarks/engine_quality.py --sheet docs/images/engine-contact-sheet.png

# The documentation site: `mkdocs build --strict` fails on any broken link or reference.
$(VENV)/.docs-installed: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install -q -e '.[docs]'
	touch $@

docs: $(VENV)/.docs-installed
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

docs-serve: $(VENV)/.docs-installed
	$(VENV)/bin/mkdocs serve --dev-addr 127.0.0.1:8000

# Regenerate docs/images/report.png from a sample run (needs chromium).
screenshots: setup
	$(PY) -m tests.browser.screenshot docs/images/report.png

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache site

# The README's commands. `make demo` and `make test` work on a fresh machine with Python 3.11+.
VENV ?= .venv
PY := $(VENV)/bin/python
RUNTIME_STAMP := $(VENV)/.runtime-installed
AZURITE_STAMP := $(VENV)/node/.installed
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export DO_NOT_TRACK ?= 1

.PHONY: setup demo test lint typecheck check bench bench-engine docs docs-serve screenshots clean \
	airflow-setup airflow-test airflow-typecheck

setup: $(VENV)/.installed $(AZURITE_STAMP)

$(PY):
	python3 -m venv $(VENV)

# The project and its runtime dependencies only: all the demo needs.
$(RUNTIME_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e .
	touch $@

# The development toolchain on top (pytest, moto, the storage emulators' clients, mypy, ruff…).
$(VENV)/.installed: pyproject.toml $(RUNTIME_STAMP)
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

# Azurite, Microsoft's Azure Storage emulator, for the az:// tests (tests/fixtures/azure.py finds
# it under $(VENV)/node). It comes from npm, every package pinned by tests/tools/package-lock.json
# (`npm ci`); 3.35.0 is the newest Azurite that runs on Node 20 (3.36 needs Node 21, 3.37 Node
# 22). Without npm the setup still succeeds and those tests skip, except under CI=true, where
# they fail.
$(AZURITE_STAMP): tests/tools/package.json tests/tools/package-lock.json | $(VENV)/.installed
	@if command -v npm >/dev/null 2>&1; then \
		echo "npm ci: Azurite (tests/tools/package-lock.json) into $(VENV)/node"; \
		mkdir -p $(VENV)/node && cp tests/tools/package.json tests/tools/package-lock.json $(VENV)/node/ && \
		npm ci --prefix $(VENV)/node --no-audit --no-fund --loglevel=error && touch $@; \
	else \
		echo "note: npm not found, so Azurite is not installed: the az:// tests will skip" \
			"(install Node.js and npm, then run make setup again)"; \
	fi

# The demo needs the project only: not the development toolchain, not the test suite's Azurite.
demo: $(RUNTIME_STAMP)
	$(VENV)/bin/flux-erase demo

test: setup airflow-setup
	$(PY) -m pytest -q -p no:cacheprovider
	$(MAKE) airflow-test

# The Airflow provider (prefect_flux_erase.airflow) lives in an environment of its own: Airflow
# and Prefect side by side are heavy, and Airflow's constraints cannot be fetched offline, so the
# environment is installed from requirements/airflow.txt (every package pinned, checked with
# pip check), then the project itself without dependencies. Its tests are their own pytest run
# (the main environment has no Airflow and leaves them out).
AIRFLOW_VENV ?= .venv-airflow
AIRFLOW_PY := $(AIRFLOW_VENV)/bin/python

$(AIRFLOW_VENV)/.installed: requirements/airflow.txt pyproject.toml
	python3 -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_PY) -m pip install -q --upgrade pip
	$(AIRFLOW_PY) -m pip install -q -r requirements/airflow.txt
	$(AIRFLOW_PY) -m pip install -q --no-deps -e .
	$(AIRFLOW_PY) -m pip check
	touch $@

airflow-setup: $(AIRFLOW_VENV)/.installed

airflow-test: airflow-setup
	$(AIRFLOW_PY) -m pytest -q -p no:cacheprovider tests/airflow prefect_flux_erase/airflow

airflow-typecheck: airflow-setup
	$(AIRFLOW_VENV)/bin/mypy --follow-imports=silent prefect_flux_erase/airflow examples/airflow_nightly.py

lint: setup
	$(VENV)/bin/ruff check prefect_flux_erase tests benchmarks examples docs/hooks
	$(VENV)/bin/ruff format --check prefect_flux_erase tests benchmarks examples docs/hooks
	$(VENV)/bin/lint-imports

typecheck: setup
	$(VENV)/bin/mypy prefect_flux_erase
	$(VENV)/bin/mypy examples
	$(MAKE) airflow-typecheck

check: lint typecheck test

# The benchmarks behind the README's "Performance and guarantees" (benchmarks/RESULTS.md):
# throughput against the official SDK, memory, resume, scale (512 in flight; a million-row
# manifest) and Dask workers (~60 min on 2 cores), and the local engine's quality.
bench: setup
	$(PY) benchmarks/throughput.py
	$(PY) benchmarks/memory.py
	$(PY) benchmarks/resume.py
	$(PY) benchmarks/scale.py
	$(PY) benchmarks/dask_workers.py

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
	rm -rf $(VENV) $(AIRFLOW_VENV) .pytest_cache .mypy_cache .ruff_cache site

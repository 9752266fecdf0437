"""Repository-wide collection rule: the Airflow face is tested only where Airflow is installed.

The main environment (``make setup``) has no Airflow; the Airflow provider and its tests run in
their own environment (``make airflow-test``, pinned by requirements/airflow.txt). Without
Airflow, neither ``tests/airflow`` nor the doctests of ``prefect_flux_erase/airflow`` are
collected, so ``make test`` neither fails on them nor imports Airflow.
"""

from __future__ import annotations

import importlib.util

collect_ignore_glob = (
    []
    if importlib.util.find_spec("airflow") is not None
    else ["prefect_flux_erase/airflow/*", "tests/airflow/*"]
)

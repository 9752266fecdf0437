"""Airflow tests: Airflow's settings in the environment before the first ``import airflow``.

``dag.test()`` only runs a DAG that its DAG processor also finds in ``DAGS_FOLDER``, so the DAG
files the tests run (``tests/airflow/dags/`` and the example DAG) are copied into a temporary
DAGS_FOLDER, with a SQLite metadata database next to it; a DAG file reads what it needs
(manifest, output, retries…) from environment variables, which :func:`run_dag` sets.

These tests need Airflow (``make airflow-test`` builds its environment); the repository's root
``conftest.py`` leaves them out where Airflow is not installed.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DAG_FILES = (HERE / "dags" / "flux_erase_test_dags.py", REPO / "examples" / "airflow_nightly.py")

if "airflow" in sys.modules:  # pragma: no cover - a guard for whoever reorders the imports
    raise RuntimeError("airflow was imported before tests/airflow/conftest.py configured it")

AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="flux-erase-airflow-"))
DAGS_FOLDER = AIRFLOW_HOME / "dags"
DAGS_FOLDER.mkdir()
for _file in DAG_FILES:
    shutil.copy(_file, DAGS_FOLDER / _file.name)
os.environ.update(
    {
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME}/airflow.db",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(AIRFLOW_HOME / "logs"),
    }
)
sys.path.insert(0, str(DAGS_FOLDER))

#: The API key every test connection carries: no log line, XCom or result may contain it.
CANARY_KEY = "rk-canary-5f1d0c2e9a7b"
CONFIG_ENV = "FLUX_ERASE_TEST_DAGS"


@pytest.fixture(scope="session", autouse=True)
def airflow_db() -> Iterator[Path]:
    """A fresh SQLite metadata database for the session (``airflow db migrate``)."""
    from airflow.utils import db

    db.initdb()
    yield AIRFLOW_HOME
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture
def flux_conn(emu: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """``flux_erase_default`` as an ``AIRFLOW_CONN_`` variable: the emulator, the canary key."""
    value = json.dumps(
        {
            "conn_type": "flux_erase",
            "host": emu.url,
            "password": CANARY_KEY,
            "extra": {"timeout": 30, "max_retries": 3},
        }
    )
    monkeypatch.setenv("AIRFLOW_CONN_FLUX_ERASE_DEFAULT", value)
    return "flux_erase_default"


def run_dag(
    module: str, dag_id: str, config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> Any:
    """Parse ``module`` (a file in DAGS_FOLDER) with ``config`` in its environment variable and
    run ``dag_id`` once with ``dag.test()``; return the finished DagRun."""
    monkeypatch.setenv(CONFIG_ENV, json.dumps(config))
    loaded = importlib.reload(importlib.import_module(module))
    dag = next(d for d in vars(loaded).values() if getattr(d, "dag_id", None) == dag_id)
    return dag.test()


def task_states(dag_run: Any) -> dict[tuple[str, int], str]:
    """``(task_id, map_index) -> state`` of every task instance of a DAG run."""
    return {(ti.task_id, ti.map_index): str(ti.state) for ti in dag_run.get_task_instances()}


def xcom(dag_run: Any, task_id: str, map_index: int = -1) -> Any:
    """The ``return_value`` XCom a task instance of ``dag_run`` pushed."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalar(
            XComModel.get_many(
                run_id=dag_run.run_id,
                key="return_value",
                dag_ids=dag_run.dag_id,
                task_ids=task_id,
                map_indexes=map_index,
            ).with_only_columns(XComModel.value)
        )
    return None if row is None else XComModel.deserialize_value(_Value(row))


class _Value:
    def __init__(self, value: Any) -> None:
        self.value = value

"""Airflow for the DAG tests: a throwaway AIRFLOW_HOME with a migrated metadata DB, shared by the session.

Airflow reads its configuration when first imported, so the environment is set here before any
test imports it; ``airflow db migrate`` is slow (~30 s) and runs once.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"


def airflow_env(home: Path) -> dict[str, str]:
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    }


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """AIRFLOW_HOME with a migrated SQLite metadata DB, set in this process's environment."""
    if "airflow" in sys.modules:
        pytest.fail("airflow was imported before the DAG tests set AIRFLOW_HOME")
    home = tmp_path_factory.mktemp("airflow")
    env = airflow_env(home)
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    airflow = Path(sys.executable).with_name("airflow")
    migrated = subprocess.run([str(airflow), "db", "migrate"], env={**os.environ}, capture_output=True,
                              text=True, timeout=600, check=False)
    if migrated.returncode != 0:
        pytest.fail(f"airflow db migrate failed:\n{migrated.stderr[-3000:]}")
    yield home
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value

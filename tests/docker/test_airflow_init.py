"""docker/airflow-init.sh for real: Airflow's metadata database migrated (SQLite in a temp folder
here, PostgreSQL in compose) and the admin's password taken from the environment."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "docker" / "airflow-init.sh"


def run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    base = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'airflow.db'}",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(tmp_path / "passwords.json")}
    return subprocess.run([str(SCRIPT)], env={**base, **env}, capture_output=True, text=True, timeout=600,
                          check=False)


def test_without_an_admin_password_it_stops_before_touching_anything(tmp_path: Path):
    done = run(tmp_path)
    assert done.returncode != 0
    assert "AIRFLOW_ADMIN_PASSWORD must be set (see .env.example)" in done.stderr
    assert not (tmp_path / "airflow.db").exists()


@pytest.mark.slow
def test_it_migrates_and_sets_the_admin_password_from_the_environment(tmp_path: Path):
    done = run(tmp_path, AIRFLOW_ADMIN_USER="ops", AIRFLOW_ADMIN_PASSWORD='with "quotes" and spaces')
    assert done.returncode == 0, done.stderr[-2000:]
    assert "user 'ops' can log in" in done.stdout
    passwords = tmp_path / "passwords.json"
    assert json.loads(passwords.read_text()) == {"ops": 'with "quotes" and spaces'}
    assert stat.S_IMODE(passwords.stat().st_mode) == 0o600
    assert (tmp_path / "airflow.db").stat().st_size > 0

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
    assert "AIRFLOW_ADMIN_PASSWORD_FILE (or AIRFLOW_ADMIN_PASSWORD) must be set" in done.stderr
    assert not (tmp_path / "airflow.db").exists()


def test_an_empty_password_file_stops_it_before_touching_anything(tmp_path: Path):
    empty = tmp_path / "airflow_admin_password"
    empty.write_text("")
    done = run(tmp_path, AIRFLOW_ADMIN_PASSWORD_FILE=str(empty))
    assert done.returncode != 0 and "is missing or empty" in done.stderr
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


@pytest.mark.slow
def test_the_admin_password_comes_from_its_secret_file(tmp_path: Path):
    secret = tmp_path / "airflow_admin_password"
    secret.write_text("from-a-secret-file\n")
    done = run(tmp_path, AIRFLOW_ADMIN_PASSWORD_FILE=str(secret))
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((tmp_path / "passwords.json").read_text()) == {"admin": "from-a-secret-file"}
    assert "from-a-secret-file" not in done.stdout + done.stderr

"""docker-compose.yml's secrets, checked on the file and its scripts (no Docker engine here): every
secret is a file made by docker/make_secrets.py and mounted only into the services that need it
(the table below is the need-to-know list); every *_FILE / *_CMD variable reads a secret the
service is given; no variable holds a password; the MLflow and PostgreSQL start scripts read
their secrets from files (run for real, with a stand-in ``mlflow`` / ``psql`` on PATH)."""

from __future__ import annotations

import configparser
import importlib.util
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.test_compose import COMPOSE, REPO, resolve

MAKE_SECRETS = REPO / "docker" / "make_secrets.py"
MOUNTED_FILES = {"VIGIL_ALERT_ROUTES_FILE": "/etc/vigil/alert-routes.toml",
                 "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": "/opt/airflow/auth/passwords.json"}
AIRFLOW = {"airflow_database_url", "airflow_fernet_key", "airflow_jwt_secret", "airflow_api_secret_key"}
OWNER = {"vigil_database_url", "mlflow_admin_password"}
DELIVERY = {"slack_bot_token", "slack_webhook_url", "alert_webhook_secret", "pagerduty_routing_key",
            "smtp_password"}
NEED_TO_KNOW = {
    "postgres": {"postgres_password", "db_password_vigil", "db_password_vigil_reader", "db_password_mlflow",
                 "db_password_airflow"},
    "vigil-migrate": {"vigil_database_url"},
    "vigil-grants": {"vigil_database_url"},
    "mlflow": {"mlflow_database_url", "mlflow_admin_password", "mlflow_flask_secret_key"},
    "api": OWNER | {"vigil_operator_token"},
    "api-balancer": set(),  # passes requests on; holds no secret
    "gradio": {"vigil_database_read_url"},
    "dashboard": OWNER | {"vigil_database_read_url", "vigil_operator_token"},
    "watchdog": OWNER | DELIVERY,
    "airflow-init": AIRFLOW | {"airflow_admin_password"},
    "airflow-api-server": AIRFLOW,
    "airflow-scheduler": AIRFLOW | OWNER | DELIVERY,
    "airflow-dag-processor": AIRFLOW,
    "airflow-triggerer": AIRFLOW,
    "airflow-worker": AIRFLOW | OWNER | DELIVERY,  # with the CeleryExecutor, the tasks run here
    "redis": set(),
    "demo-train": OWNER,
    "demo-traffic": set(),
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _make(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(MAKE_SECRETS), "--dir", str(folder)], capture_output=True,
                          text=True, timeout=60, check=False)


def test_each_service_gets_only_the_secrets_it_needs(compose):
    given = {name: set(s.get("secrets", [])) for name, s in compose["services"].items()}
    assert given == NEED_TO_KNOW


def test_every_file_and_cmd_variable_reads_a_secret_the_service_is_given_and_every_secret_is_read(compose):
    for name, service in compose["services"].items():
        secrets = set(service.get("secrets", []))
        read = set()
        for key, value in service.get("environment", {}).items():
            value = str(value)
            if key in MOUNTED_FILES:
                assert value == MOUNTED_FILES[key], f"{name}: {key}"
            elif key.endswith("_FILE"):
                assert value.startswith("/run/secrets/"), f"{name}: {key}={value} is not a secret file"
                read.add(value.removeprefix("/run/secrets/"))
            elif key.endswith("_CMD"):
                assert value.startswith("cat /run/secrets/"), f"{name}: {key}={value}"
                read.add(value.removeprefix("cat /run/secrets/"))
        assert read <= secrets, f"{name} reads secrets it is not given: {sorted(read - secrets)}"
        assert secrets <= read, f"{name} is given secrets it never reads: {sorted(secrets - read)}"


def test_no_variable_holds_a_password_or_a_database_url(compose):
    for name, service in compose["services"].items():
        for key, value in service.get("environment", {}).items():
            assert not re.match(r"^postgres(ql)?(\+\w+)?://", resolve(str(value))), \
                f"{name}: {key} holds a database URL: it belongs in a secret file"
            assert not key.endswith(("_PASSWORD", "_TOKEN", "_SECRET", "_KEY")), f"{name}: {key} is a secret"


def test_every_declared_secret_is_a_file_make_secrets_makes(compose, tmp_path):
    assert _make(tmp_path / "secrets").returncode == 0
    declared = compose["secrets"]
    assert {name: spec["file"] for name, spec in declared.items()} == {
        name: f"./secrets/{name}" for name in declared}
    assert set(declared) == {path.name for path in (tmp_path / "secrets").iterdir()}
    used = set().union(*NEED_TO_KNOW.values())
    assert used == set(declared), f"declared but given to no service: {sorted(set(declared) - used)}"
    ignored = subprocess.run(["git", "check-ignore", "-q", "secrets/x"], cwd=REPO, check=False)
    assert ignored.returncode == 0, "secrets/ must be in .gitignore"


def test_airflow_reads_each_cmd_variable_because_the_option_is_sensitive(compose):
    spec = importlib.util.find_spec("airflow")
    config = yaml.safe_load((Path(spec.origin).parent / "config_templates" / "config.yml").read_text())
    commands = {key for s in compose["services"].values() for key in s.get("environment", {})
                if key.endswith("_CMD")}
    assert len(commands) == 4
    for key in commands:
        section, option = key.removeprefix("AIRFLOW__").removesuffix("_CMD").lower().split("__")
        assert config[section]["options"][option].get("sensitive") is True, \
            f"Airflow ignores {key}: [{section}] {option} is not a sensitive option"


def test_make_secrets_makes_fresh_consistent_files_and_keeps_what_exists(tmp_path):
    folder = tmp_path / "secrets"
    first = _make(folder)
    assert first.returncode == 0 and "made " in first.stdout
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    values = {p.name: p.read_text() for p in folder.iterdir()}
    assert all(stat.S_IMODE((folder / n).stat().st_mode) == 0o644 for n in values)
    assert values["slack_bot_token"] == "" and values["pagerduty_routing_key"] == ""  # optional: unused
    assert len(set(values[n] for n in ("postgres_password", "db_password_vigil", "db_password_mlflow",
                                        "mlflow_admin_password"))) == 4
    password = values["db_password_vigil"].strip()
    assert values["vigil_database_url"].strip() == f"postgresql+psycopg2://vigil:{password}@postgres:5432/vigil"
    for value in values.values():
        assert value.strip() not in first.stdout or not value.strip()  # names printed, never values
    from monitoring.token_strength import weakness

    assert weakness(values["vigil_operator_token"].strip()) is None
    (folder / "slack_bot_token").write_text("xoxb-mine\n")
    (folder / "mlflow_flask_secret_key").unlink()
    second = _make(folder)
    assert "made mlflow_flask_secret_key" in second.stdout
    again = {p.name: p.read_text() for p in folder.iterdir()}
    assert again["slack_bot_token"] == "xoxb-mine\n"
    assert {n: v for n, v in again.items() if n not in ("slack_bot_token", "mlflow_flask_secret_key")} == \
        {n: v for n, v in values.items() if n not in ("slack_bot_token", "mlflow_flask_secret_key")}


# -- the start scripts, run with a stand-in for the program they start ----------------------------

def _stand_in(folder: Path, program: str) -> Path:
    """An executable ``program`` that writes its arguments, stdin and chosen variables to a file."""
    folder.mkdir(exist_ok=True)
    script = folder / program
    script.write_text("#!/bin/sh\n{ echo \"ARGS $*\"; env | grep -E '^(MLFLOW|PG)' | sort; cat; } "
                      f">> {folder / 'seen.txt'}\n")
    script.chmod(0o755)
    return folder / "seen.txt"


def test_the_mlflow_script_hands_its_secrets_from_files_to_mlflow_alone(compose, tmp_path):
    seen = _stand_in(tmp_path / "bin", "mlflow")
    secrets = {"MLFLOW_BACKEND_STORE_URI": "postgresql+psycopg2://mlflow:pw1@postgres:5432/mlflow",
               "MLFLOW_AUTH_ADMIN_PASSWORD": "admin-pw-2", "MLFLOW_FLASK_SERVER_SECRET_KEY": "key-3"}
    env = {"PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}", "MLFLOW_AUTH_ADMIN_USERNAME": "vigil",
           "MLFLOW_AUTH_CONFIG_PATH": str(REPO / "docker" / "mlflow-basic-auth.ini")}
    for variable, value in secrets.items():
        (tmp_path / variable).write_text(value + "\n")
        env[f"{variable}_FILE"] = str(tmp_path / variable)
    service = compose["services"]["mlflow"]
    command = [str(REPO / service["command"][0].removeprefix("/opt/vigil/")), *service["command"][1:]]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30, check=False,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    text = seen.read_text()
    assert "ARGS server --app-name basic-auth --host 0.0.0.0 --port 5000" in text
    for variable, value in secrets.items():
        assert f"{variable}={value}\n" in text  # no trailing newline from the file
    (tmp_path / "MLFLOW_AUTH_ADMIN_PASSWORD").write_text("")
    refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30, check=False)
    assert refused.returncode == 1 and "MLFLOW_AUTH_ADMIN_PASSWORD_FILE" in refused.stderr
    assert "pw1" not in refused.stderr + done.stderr + done.stdout


def test_the_mlflow_auth_store_is_off_the_served_artifacts_and_denies_by_default(compose):
    config = configparser.ConfigParser()
    config.read(REPO / "docker" / "mlflow-basic-auth.ini")
    assert config["mlflow"]["default_permission"] == "NO_PERMISSIONS"
    assert 0 < int(config["mlflow"]["auth_cache_ttl_seconds"]) <= 60  # see the file: hashing is slow
    database = config["mlflow"]["database_uri"].removeprefix("sqlite:///")
    mounts = dict(reversed(v.split(":")[:2]) for v in compose["services"]["mlflow"]["volumes"])
    assert str(Path(database).parent) in mounts and mounts[str(Path(database).parent)] == "mlflow-auth"
    assert not database.startswith("/mlartifacts")
    from importlib.metadata import entry_points

    assert "basic-auth" in {e.name for e in entry_points(group="mlflow.app")}
    importlib.import_module("flask_wtf")  # the basic-auth app's dependency is installed


def test_the_postgres_init_script_takes_every_password_from_its_file(compose, tmp_path):
    seen = _stand_in(tmp_path / "bin", "psql")
    env = {"PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}", "POSTGRES_USER": "postgres"}
    for key, value in compose["services"]["postgres"]["environment"].items():
        if key.startswith("DB_PASSWORD_"):
            name = value.rsplit("/", 1)[1]
            (tmp_path / name).write_text(f"pw-of-{name}\n")
            env[key] = str(tmp_path / name)
    script = REPO / "docker" / "postgres" / "init-databases.sh"
    done = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=30, check=False,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    text = seen.read_text()
    for role in ("vigil", "mlflow", "airflow", "vigil_reader"):
        assert f"--set name={role} --set password=pw-of-db_password_{role}" in text
    assert "REVOKE CONNECT, TEMPORARY ON DATABASE" in text and "NOSUPERUSER" in text
    os.unlink(tmp_path / "db_password_mlflow")
    seen.unlink()
    missing = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=30, check=False,
                             stdin=subprocess.DEVNULL)
    assert missing.returncode != 0 and "DB_PASSWORD_MLFLOW_FILE" in missing.stderr
    assert not seen.exists(), "a role was made before the script found a password missing"


def test_the_default_routes_file_lists_none_and_its_examples_are_valid_routes(compose, tmp_path):
    from monitoring.alerts.routes import load_routes

    default = REPO / "docker" / "alert-routes.toml"
    assert load_routes(default) == ()
    lines = default.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# [[routes]]"))
    example = [line.removeprefix("# ").split("  #")[0] for line in lines[start:] if line.startswith("# ")]
    (tmp_path / "routes.toml").write_text("\n".join(example))
    routes = load_routes(tmp_path / "routes.toml")
    assert [route.kind for route in routes] == ["slack", "pagerduty", "webhook"]
    filled = {key.removesuffix("_FILE") for key in compose["services"]["watchdog"]["environment"]
              if key.endswith("_FILE")}
    named = {getattr(route, field) for route in routes
             for field in ("token_env", "routing_key_env", "secret_env") if hasattr(route, field)}
    assert named <= filled, f"the examples name variables compose does not fill: {sorted(named - filled)}"

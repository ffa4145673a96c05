"""Attack table on docker-compose.yml: what an outsider on the network reaches, and what the public
Gradio container holds. Checked on the file itself (no Docker engine in the tests)."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.test_compose import COMPOSE, resolve

PUBLISHED = re.compile(r"^(?P<host>[^:]+):(?P<port>[^:]+):(?P<target>\d+)$")


@pytest.fixture(scope="module")
def services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def _published(service: dict) -> list[str]:
    return [resolve(str(port)) for port in service.get("ports", [])]


def test_mlflow_is_not_published_to_the_host(services):
    assert _published(services["mlflow"]) == []


@pytest.mark.parametrize("name", ["api-balancer", "gradio", "dashboard", "airflow-api-server"])
def test_every_published_port_is_bound_to_loopback_by_default(services, name):
    ports = _published(services[name])
    assert ports, f"{name} publishes nothing"
    for port in ports:
        match = PUBLISHED.match(port)
        assert match and match["host"] == "127.0.0.1", f"{name} publishes {port} beyond 127.0.0.1"


def test_no_service_publishes_on_every_interface(services):
    for name, service in services.items():
        for port in _published(service):
            assert PUBLISHED.match(port), f"{name}: {port} listens on every interface of the host"


@pytest.mark.parametrize("secret", ["vigil_operator_token", "slack_bot_token", "slack_webhook_url",
                                    "vigil_database_url", "mlflow_admin_password"])
def test_the_public_gradio_container_gets_no_operator_slack_owner_or_mlflow_secret(services, secret):
    assert secret not in services["gradio"].get("secrets", [])
    assert services["gradio"]["secrets"] == ["vigil_database_read_url"]  # reads, as vigil_reader
    assert not [k for k in services["gradio"]["environment"] if k.endswith(("_FILE", "_CMD", "PASSWORD"))
                and k != "VIGIL_DATABASE_URL_FILE"]


def test_mlflow_runs_behind_basic_auth_and_its_clients_log_in(services):
    from tests.test_compose import mlflow_arguments

    arguments = mlflow_arguments(services["mlflow"])
    assert arguments[:3] == ["server", "--app-name", "basic-auth"]
    env = services["mlflow"]["environment"]
    assert {"MLFLOW_AUTH_ADMIN_USERNAME", "MLFLOW_AUTH_ADMIN_PASSWORD_FILE", "MLFLOW_AUTH_CONFIG_PATH"} <= set(env)
    clients = [name for name, s in services.items()
               if s.get("environment", {}).get("MLFLOW_TRACKING_URI") == "http://mlflow:5000"]
    logged_in = [name for name in clients if "MLFLOW_TRACKING_PASSWORD_FILE" in services[name]["environment"]]
    # everyone who acts through MLflow logs in as the admin; the public page and the traffic do not
    assert sorted(set(clients) - set(logged_in)) == ["demo-traffic", "gradio"]
    for name in logged_in:
        assert services[name]["environment"]["MLFLOW_TRACKING_USERNAME"] == env["MLFLOW_AUTH_ADMIN_USERNAME"]
        assert "mlflow_admin_password" in services[name]["secrets"]

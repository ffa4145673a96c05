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


@pytest.mark.parametrize("name", ["api", "gradio", "dashboard", "airflow-api-server"])
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


@pytest.mark.parametrize("secret", ["VIGIL_OPERATOR_TOKEN", "VIGIL_SLACK_BOT_TOKEN", "VIGIL_SLACK_WEBHOOK_URL"])
def test_the_public_gradio_container_gets_no_operator_or_slack_secret(services, secret):
    assert secret not in services["gradio"].get("environment", {})
    assert secret in services["api"]["environment"]  # the ones that act still get it

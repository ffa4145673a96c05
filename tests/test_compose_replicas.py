"""docker-compose.yml's API replicas and their balancer, checked on the files (no Docker engine here):
API_REPLICAS replicas that publish nothing, an nginx in front that finds them through Docker's DNS,
passes the client's address on for the lockout, waits as long as /feedback may, takes the bodies
the API takes, and is the only way any container reaches the API. The configuration itself runs
in front of two real replicas in tests/api/test_replicas.py (Debian's nginx 1.22 lacks the
upstream ``resolve`` of the image's 1.28, which that test rewrites).
"""

from __future__ import annotations

import re

import pytest

from api.feedback import BACKLOG_WAIT_SECONDS
from monitoring.settings import Settings
from tests.test_compose import (  # noqa: F401 - fixtures
    command_of,
    compose,
    listening_port,
    nginx_config,
    resolve,
    services,
)

RESOLVE_SINCE = (1, 27, 3)  # the first open-source nginx with `resolve` on an upstream server


def _directives(text: str, name: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(rf"^\s*{name}\s+([^;{{]*);", text, re.MULTILINE)]


def _seconds(value: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(ms|s|m)?", value).groups()
    return float(number) * {"ms": 0.001, "s": 1, "m": 60, None: 1}[unit]


def _bytes(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kKmM])?", value).groups()
    return int(number) * {"k": 1024, "m": 1024 ** 2, None: 1}[unit.lower() if unit else None]


@pytest.fixture(scope="module")
def balancer(services) -> str:  # noqa: F811
    return nginx_config(services["api-balancer"]).read_text()


def test_the_api_runs_as_replicas_that_publish_no_port(services):  # noqa: F811
    api = services["api"]
    assert api["deploy"]["replicas"] == "${API_REPLICAS:-2}" and resolve(api["deploy"]["replicas"]) == "2"
    assert "ports" not in api, "replicas cannot share one host port: the balancer publishes API_PORT"
    assert "container_name" not in api
    assert services["api-balancer"]["ports"] == ["${BIND_ADDRESS:-127.0.0.1}:${API_PORT:-8000}:8000"]


def test_the_balancer_is_a_pinned_nginx_that_finds_every_replica_through_docker_dns(services, balancer):  # noqa: F811
    image = services["api-balancer"]["image"]
    name, _, tag = image.partition(":")
    assert name == "nginx" and tuple(int(p) for p in tag.split(".")) >= RESOLVE_SINCE, image
    assert _directives(balancer, "resolver") == ["127.0.0.11 valid=5s ipv6=off"]  # Docker's embedded DNS
    servers = _directives(balancer, "server")
    assert len(servers) == 1
    address, *options = servers[0].split()
    host, port = address.split(":")
    assert host == "api" and int(port) == listening_port(services["api"])
    assert "resolve" in options
    assert _directives(balancer, "zone"), "resolve needs the upstream's shared memory zone"
    assert _directives(balancer, "proxy_pass") == ["http://vigil_api"]


def test_the_balancer_replaces_the_client_address_and_the_api_trusts_it(services, balancer):  # noqa: F811
    headers = {h.split()[0]: h.split(None, 1)[1] for h in _directives(balancer, "proxy_set_header")}
    assert headers["X-Forwarded-For"] == "$remote_addr", "appending would let a client name its own address"
    assert services["api"]["environment"]["FORWARDED_ALLOW_IPS"] == "*"  # read by uvicorn


def test_the_balancer_waits_as_long_as_feedback_and_takes_the_bodies_the_api_takes(balancer):
    assert _seconds(_directives(balancer, "proxy_read_timeout")[0]) > BACKLOG_WAIT_SECONDS
    assert _bytes(_directives(balancer, "client_max_body_size")[0]) > Settings.model_fields["max_body_bytes"].default
    assert _directives(balancer, "proxy_next_upstream") == ["error timeout"]  # never a POST twice


def test_every_container_reaches_the_api_through_the_balancer(services):  # noqa: F811
    for name, service in services.items():
        values = [str(v) for v in service.get("environment", {}).values()] + command_of(service)
        assert not [v for v in values if "//api:" in v], f"{name} bypasses the balancer"
        if name != "api-balancer":
            assert "api" not in service.get("depends_on", {}), f"{name} waits for the replicas, not the balancer"
    assert services["api-balancer"]["depends_on"] == {"api": {"condition": "service_healthy"}}

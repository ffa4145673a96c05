"""Operator endpoints: token required, every attempt in the access log, the alias really moves."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.main import create_app
from monitoring.registry.mlflow_registry import Registry
from monitoring.store.engine import session_scope
from monitoring.store.tables import AccessLog, RegistryEvent
from tests.api.conftest import OPERATOR_TOKEN, demo_rows, train_version

AUTH = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


def _access(url: str) -> list[tuple]:
    with session_scope(url) as session:
        return [(a.actor, a.action, a.allowed, a.channel, a.detail)
                for a in session.scalars(select(AccessLog).order_by(AccessLog.id))]


def _wait_for_version(client: TestClient, version: int, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        answer = client.post("/predict", json=demo_rows(1)[0]).json()
        if answer["model_version"] == version or time.monotonic() > deadline:
            return answer
        time.sleep(0.05)


@pytest.mark.slow
def test_promote_and_rollback_with_the_token_move_the_alias_and_the_answers(api_settings):
    train_version(api_settings, seed=0)
    train_version(api_settings, seed=1, promote=False)
    url, name = api_settings.database_url, api_settings.model_name
    with TestClient(create_app(api_settings)) as client:
        assert client.post("/predict", json=demo_rows(1)[0]).json()["model_version"] == 1

        moved = client.post("/operator/promote", headers=AUTH,
                            json={"version": 2, "reason": "better on the holdout", "operator": "alice"})
        assert moved.status_code == 200, moved.text
        assert moved.json()["from_version"] == 1 and moved.json()["to_version"] == 2
        assert moved.json()["actor"] == "api:alice"
        assert Registry(api_settings).alias_version(name, "champion") == 2
        assert _wait_for_version(client, 2)["model_version"] == 2

        back = client.post("/operator/rollback", headers=AUTH, json={"reason": "complaints", "operator": "bob"})
        assert back.status_code == 200, back.text
        assert back.json()["to_version"] == 1 and back.json()["kind"] == "manual_rollback"
        assert _wait_for_version(client, 1)["model_version"] == 1

        again = client.post("/operator/promote", headers=AUTH,
                            json={"version": 99, "reason": "typo", "operator": "alice"})
        assert again.status_code == 404
        assert "99" in again.json()["detail"]
    with session_scope(url) as session:
        kinds = [(e.kind, e.actor, e.to_version) for e in session.scalars(
            select(RegistryEvent).where(RegistryEvent.model_name == name, RegistryEvent.alias.is_not(None))
            .order_by(RegistryEvent.id))]
    assert kinds[-2:] == [("promote", "api:alice", 2), ("manual_rollback", "api:bob", 1)]
    allowed = [(actor, action) for actor, action, ok, channel, _ in _access(url) if ok and channel == "api"]
    assert allowed == [("api:alice", "promote"), ("api:bob", "rollback")]


@pytest.mark.parametrize(("headers", "status", "why"), [
    ({}, 401, "Bearer"),
    ({"Authorization": "Bearer wrong"}, 403, "wrong operator token"),
    ({"Authorization": OPERATOR_TOKEN}, 401, "Bearer"),
])
def test_refused_without_the_right_token_and_recorded(shared_client, shared_settings, headers, status, why):
    before = len(_access(shared_settings.database_url))
    response = shared_client.post("/operator/promote", headers=headers,
                                  json={"version": 1, "reason": "try", "operator": "mallory"})
    assert response.status_code == status
    assert why in response.json()["detail"]
    assert Registry(shared_settings).alias_version(shared_settings.model_name, "champion") == 1
    log = _access(shared_settings.database_url)
    assert len(log) == before + 1
    actor, action, allowed, channel, detail = log[-1]
    assert (actor, action, allowed, channel) == ("api:mallory", "promote", False, "api")
    assert OPERATOR_TOKEN not in detail


def test_refused_when_no_token_is_configured(api_settings):
    settings = api_settings.model_copy(update={"operator_token": None})
    with TestClient(create_app(settings)) as client:
        response = client.post("/operator/rollback", headers=AUTH, json={"reason": "x", "operator": "eve"})
        assert response.status_code == 403
        assert "VIGIL_OPERATOR_TOKEN is not set" in response.json()["detail"]
    assert _access(settings.database_url)[-1][:3] == ("api:eve", "rollback", False)


@pytest.mark.parametrize("body", [
    {"version": 2, "reason": "", "operator": "alice"},
    {"version": 0, "reason": "x", "operator": "alice"},
    {"version": 2, "reason": "x", "operator": "no spaces allowed"},
    {"version": 2, "reason": "x"},
])
def test_malformed_operator_requests_get_422(shared_client, body):
    assert shared_client.post("/operator/promote", headers=AUTH, json=body).status_code == 422


def test_a_move_while_mlflow_is_unreachable_is_a_503_and_changes_nothing(api_settings, monkeypatch):
    from monitoring.settings import ReliabilityPolicy
    from tests.net import free_port

    for name in ("MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
                 "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"):
        monkeypatch.delenv(name, raising=False)  # the app's registry sets them for the process
    down = api_settings.model_copy(update={
        "mlflow_tracking_uri": f"http://127.0.0.1:{free_port()}",
        "reliability": ReliabilityPolicy(mlflow_timeout_seconds=1, mlflow_max_retries=0)})
    with TestClient(create_app(down)) as client:
        ready = client.get("/health/ready").json()
        assert ready["registry_reachable"] is False and "MLflow is unreachable" in ready["notes"][0]
        moved = client.post("/operator/promote", headers=AUTH,
                            json={"version": 1, "reason": "try", "operator": "alice"})
    assert moved.status_code == 503 and "MLflow unreachable" in moved.json()["detail"], moved.text
    with session_scope(down.database_url) as session:
        assert session.scalars(select(RegistryEvent)).all() == []


def test_token_brute_force_is_locked_out_after_n_in_every_worker_and_rows_are_capped(shared_settings):
    """Attack: guess the token from one address. After 5 wrong ones: 429, even with the right token,
    and from a second app (another worker) on the same store; other addresses are not affected."""
    url = shared_settings.database_url
    guesser, other = ("203.0.113.9", 4000), ("198.51.100.2", 4000)
    before = len(_access(url))
    wrong = {"Authorization": "Bearer guess"}
    body = {"version": 1, "reason": "guess", "operator": "mallory"}
    with TestClient(create_app(shared_settings), client=guesser) as first, \
            TestClient(create_app(shared_settings), client=guesser) as second, \
            TestClient(create_app(shared_settings), client=other) as bystander:
        codes = [first.post("/operator/promote", headers=wrong, json=body).status_code for _ in range(5)]
        assert codes == [403] * 5
        for _ in range(20):
            locked = first.post("/operator/promote", headers=wrong, json=body)
            assert locked.status_code == 429
        assert 0 < int(locked.headers["Retry-After"]) <= 900
        assert second.post("/operator/rollback", headers=AUTH, json={"reason": "x", "operator": "m"}).status_code == 429
        assert bystander.post("/operator/promote", headers=wrong, json=body).status_code == 403
    rows = _access(url)[before:]
    guessed = [r for r in rows if "203.0.113.9" in r[4]]
    assert len(guessed) == 5  # capped: 26 attempts, 5 rows
    assert Registry(shared_settings).alias_version(shared_settings.model_name, "champion") == 1

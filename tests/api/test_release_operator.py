"""Releases driven from the operator API on a real MLflow store and SQLite store: a canary started,
seen with the judge's evidence in ``GET /releases``, aborted (``@challenger`` gone, every move in the
access log and the registry events, as ``vigil canary`` records them); refusals change nothing."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.main import create_app
from monitoring.registry.mlflow_registry import Registry
from monitoring.store.engine import session_scope
from monitoring.store.tables import AccessLog, RegistryEvent, Release
from tests.api.conftest import OPERATOR_TOKEN, make_settings, train_version

AUTH = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory, mlflow_store):
    """A store and a model with version 1 as champion and version 2 registered beside it."""
    from monitoring.store.engine import dispose_engines
    from monitoring.store.migrations import upgrade

    root = tmp_path_factory.mktemp("release-operator")
    settings = make_settings(f"sqlite:///{root / 'vigil.db'}", mlflow_store, root / "var")
    upgrade(settings.database_url)
    train_version(settings, seed=0)
    train_version(settings, seed=1, promote=False)
    yield settings
    dispose_engines()


@pytest.fixture
def client(two_versions):
    with TestClient(create_app(two_versions)) as client:
        yield client


def _state(settings) -> tuple:
    """Everything a refused request must leave as it was."""
    with session_scope(settings.database_url) as session:
        releases = [(r.id, r.state, r.share) for r in session.scalars(select(Release).order_by(Release.id))]
        events = session.scalars(select(RegistryEvent.id).order_by(RegistryEvent.id.desc())).first()
    registry = Registry(settings)
    return (releases, events, registry.alias_version(settings.model_name, "challenger"),
            registry.alias_version(settings.model_name, "champion"))


def _allowed(settings) -> list[tuple]:
    with session_scope(settings.database_url) as session:
        return [(a.actor, a.action, a.model_name) for a in session.scalars(
            select(AccessLog).where(AccessLog.allowed.is_(True), AccessLog.channel == "api").order_by(AccessLog.id))]


def test_a_canary_started_seen_and_aborted_through_the_api(client, two_versions):
    settings, name = two_versions, two_versions.model_name
    started = client.post("/operator/canary", headers=AUTH, json={
        "version": 2, "share": 0.2, "bake_minutes": 30, "reason": "try v2 on a fifth", "operator": "alice"})
    assert started.status_code == 200, started.text
    assert started.json()["actor"] == "api:alice"
    assert started.json()["release"]["state"] == "running"
    assert Registry(settings).alias_version(name, "challenger") == 2

    seen = client.get("/releases").json()
    running = seen["running"]
    assert seen["model_name"] == name
    assert (running["mode"], running["challenger_version"], running["champion_version"], running["share"]) == \
        ("canary", 2, 1, 0.2)
    assert 29 < running["bake_minutes_left"] <= 30
    assert running["evidence"]["decision"] == "continue"
    assert running["evidence"]["reason"] == "waiting for labels of both arms"
    assert running["evidence"]["challenger_labels"] == 0
    assert client.get("/releases", params={"model_name": "some-other-model"}).json()["running"] is None

    aborted = client.post("/operator/release/abort", headers=AUTH,
                          json={"reason": "seen enough", "operator": "bob"})
    assert aborted.status_code == 200, aborted.text
    assert (aborted.json()["release"]["state"], aborted.json()["release"]["ended_by"]) == ("aborted", "api:bob")
    assert Registry(settings).alias_version(name, "challenger") is None
    assert Registry(settings).alias_version(name, "champion") == 1

    after = client.get("/releases").json()
    assert after["running"] is None
    assert [(r["state"], r["evidence"]["reason"]) for r in after["ended"]][0] == ("aborted", "seen enough")
    assert _allowed(settings)[-2:] == [("api:alice", "canary_start", name), ("api:bob", "release_abort", name)]
    with session_scope(settings.database_url) as session:
        events = [(e.kind, e.actor, e.to_version) for e in session.scalars(
            select(RegistryEvent).where(RegistryEvent.model_name == name,
                                        RegistryEvent.kind.in_(["release_start", "release_end"]))
            .order_by(RegistryEvent.id))]
    assert events[-2:] == [("release_start", "api:alice", 2), ("release_end", "api:bob", None)]


@pytest.mark.parametrize(("path", "body", "headers", "status", "why"), [
    ("/operator/canary", {"version": 2, "reason": "r", "operator": "m"}, {}, 401, "Bearer"),
    ("/operator/canary", {"version": 2, "reason": "r", "operator": "m"},
     {"Authorization": "Bearer wrong"}, 403, "wrong operator token"),
    ("/operator/release/abort", {"reason": "r", "operator": "m"}, {}, 401, "Bearer"),
    ("/operator/canary", {"version": 2, "share": 1.0, "reason": "r", "operator": "m"}, AUTH, 422, "less than 1"),
    ("/operator/shadow", {"version": 2, "share": 0, "reason": "r", "operator": "m"}, AUTH, 422, "greater than 0"),
    ("/operator/canary", {"version": 2, "reason": "", "operator": "m"}, AUTH, 422, "at least 1"),
    ("/operator/canary", {"version": 99, "reason": "r", "operator": "m"}, AUTH, 404, "99"),
    ("/operator/canary", {"version": 1, "reason": "r", "operator": "m"}, AUTH, 409, "champion already"),
    ("/operator/release/promote", {"reason": "r", "operator": "m"}, AUTH, 409, "no running release"),
    ("/operator/release/abort", {"reason": "r", "operator": "m"}, AUTH, 409, "no running release"),
], ids=["no-token", "wrong-token", "abort-no-token", "canary-share-1", "shadow-share-0", "no-reason",
        "unknown-version", "champion-itself", "promote-nothing", "abort-nothing"])
def test_a_refused_request_says_why_and_changes_nothing(client, two_versions, path, body, headers, status, why):
    before = _state(two_versions)
    response = client.post(path, headers=headers, json=body)
    assert response.status_code == status, response.text
    assert why in str(response.json()["detail"])
    assert _state(two_versions) == before


def test_a_second_start_while_one_runs_is_refused(client, two_versions):
    first = client.post("/operator/shadow", headers=AUTH, json={"version": 2, "reason": "shadow it", "operator": "a"})
    assert first.status_code == 200, first.text
    assert first.json()["release"]["share"] == 1.0
    try:
        before = _state(two_versions)
        again = client.post("/operator/canary", headers=AUTH, json={"version": 2, "reason": "again", "operator": "a"})
        assert again.status_code == 409 and "already has a running shadow" in again.json()["detail"]
        assert _state(two_versions) == before
        assert client.get("/releases").json()["running"]["mode"] == "shadow"
    finally:
        ended = client.post("/operator/release/abort", headers=AUTH, json={"reason": "done", "operator": "a"})
        assert ended.status_code == 200, ended.text

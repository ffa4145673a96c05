"""The attack table of client keys, against the real app and store: missing, unknown, revoked and
wrong-scope keys; forged, replayed, unknown-id and ill-fitting labels; operator keys."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.main import create_app
from monitoring.store.client_keys import create_key, revoke_keys
from monitoring.store.engine import dispose_engines, session_scope
from monitoring.store.migrations import upgrade
from monitoring.store.tables import AccessLog, Feedback, Prediction
from tests.api.conftest import demo_rows, make_settings, train_version


@pytest.fixture(scope="module")
def closed(tmp_path_factory, mlflow_store):
    """A closed API (the default) with keys for two clients, an auditor, a corrector and an operator."""
    root = tmp_path_factory.mktemp("closed")
    settings = make_settings(f"sqlite:///{root / 'vigil.db'}", mlflow_store, root / "var", open_access=False)
    upgrade(settings.database_url)
    train_version(settings)
    url = settings.database_url
    keys = {name: create_key(url, name=name, scopes=scopes, actor="test", channel="cli")[1]
            for name, scopes in {"shop": ["predict", "feedback", "trusted"], "rival": ["predict", "feedback"],
                                 "auditor": ["feedback", "feedback_all", "correct", "trusted"],
                                 "reader": ["feedback"], "alice": ["operator"]}.items()}
    with TestClient(create_app(settings)) as client:
        yield client, settings, keys
    dispose_engines()


def _as(keys, name):
    return {"X-Vigil-Key": keys[name]}


def _predict(client, keys, name="shop") -> str:
    answer = client.post("/predict", json=demo_rows(1)[0], headers=_as(keys, name))
    assert answer.status_code == 200, answer.text
    return answer.json()["prediction_id"]


def _stored(url, pid):
    with session_scope(url) as session:
        return session.get(Feedback, pid)


def test_a_missing_or_unknown_key_is_401_and_a_wrong_scope_403(closed):
    client, _, keys = closed
    missing = client.post("/predict", json=demo_rows(1)[0])
    assert missing.status_code == 401 and "X-Vigil-Key" in missing.json()["detail"]
    assert client.get("/health").json()["open_access"] is False
    forged = keys["shop"][:-4] + "AAAA"
    assert client.post("/predict", json=demo_rows(1)[0], headers={"X-Vigil-Key": forged}).status_code == 401
    assert client.post("/predict", json=demo_rows(1)[0], headers={"X-Vigil-Key": "guess"}).status_code == 401
    wrong = client.post("/predict", json=demo_rows(1)[0], headers=_as(keys, "reader"))
    assert wrong.status_code == 403 and "'predict'" in wrong.json()["detail"]
    assert client.post("/feedback", json={"prediction_id": "x", "label": 1},
                       headers=_as(keys, "alice")).status_code == 403


def test_each_prediction_and_label_records_its_client(closed):
    client, settings, keys = closed
    pid = _predict(client, keys)
    assert client.post("/feedback", json={"prediction_id": pid, "label": 1}, headers=_as(keys, "shop")).status_code == 200
    with session_scope(settings.database_url) as session:
        [(who, key_id)] = session.execute(select(Prediction.client, Prediction.key_id).where(Prediction.id == pid)).all()
    label = _stored(settings.database_url, pid)
    assert who == label.client == "shop" and key_id == label.key_id is not None
    assert label.trusted is True


def test_forged_labels_from_another_client_are_refused_and_nothing_is_stored(closed):
    client, settings, keys = closed
    pid = _predict(client, keys, "shop")
    forged = client.post("/feedback", json={"prediction_id": pid, "label": 0}, headers=_as(keys, "rival"))
    assert forged.status_code == 404 and "made for rival" in forged.json()["detail"]
    assert _stored(settings.database_url, pid) is None
    audited = client.post("/feedback", json={"prediction_id": pid, "label": 0}, headers=_as(keys, "auditor"))
    assert audited.status_code == 200  # feedback_all may label any client's prediction
    assert _stored(settings.database_url, pid).client == "auditor"


def test_a_replayed_label_is_409_and_the_first_stands_a_correction_needs_its_scope(closed):
    client, settings, keys = closed
    pid = _predict(client, keys)
    first = {"prediction_id": pid, "label": 1}
    assert client.post("/feedback", json=first, headers=_as(keys, "shop")).status_code == 200
    replay = client.post("/feedback", json={**first, "label": 0}, headers=_as(keys, "shop"))
    assert replay.status_code == 409 and "first label stands" in replay.json()["detail"]
    again = client.post("/feedback", json=first, headers=_as(keys, "shop"))
    assert again.status_code == 409
    correction = {**first, "label": 0, "correction": True, "reason": "repaid"}
    assert client.post("/feedback", json=correction, headers=_as(keys, "shop")).status_code == 403
    assert _stored(settings.database_url, pid).label == "1"
    assert client.post("/feedback", json=correction, headers=_as(keys, "auditor")).status_code == 200
    assert _stored(settings.database_url, pid).label == "0"
    with session_scope(settings.database_url) as session:
        actor = session.scalars(select(AccessLog.actor).where(AccessLog.action == "label_correction",
                                                              AccessLog.detail.contains(pid))).one()
    assert actor == "api:key:auditor"


def test_a_label_for_an_unknown_id_is_404_and_nothing_is_stored(closed):
    client, settings, keys = closed
    started = time.monotonic()
    answer = client.post("/feedback", json={"prediction_id": "0190-not-a-prediction", "label": 1},
                         headers=_as(keys, "auditor"))
    assert answer.status_code == 404
    assert time.monotonic() - started >= settings.feedback_wait_seconds  # it waited for the log first
    with session_scope(settings.database_url) as session:
        assert session.scalar(select(func.count()).select_from(Feedback)
                              .where(Feedback.prediction_id == "0190-not-a-prediction")) == 0


@pytest.mark.parametrize("label", [b"NaN", b"Infinity", b"-Infinity", b'"yes"', b"2", b"0.5"])
def test_non_finite_and_wrong_class_labels_are_422(closed, label):
    client, settings, keys = closed
    pid = _predict(client, keys)
    body = b'{"prediction_id": "%s", "label": %s}' % (pid.encode(), label)
    answer = client.post("/feedback", content=body, headers={**_as(keys, "shop"), "Content-Type": "application/json"})
    assert answer.status_code == 422, answer.text
    assert _stored(settings.database_url, pid) is None


def test_a_revoked_key_is_refused_within_the_refresh_delay(closed):
    client, settings, keys = closed
    _, text = create_key(settings.database_url, name="temp", scopes=["predict"], actor="test", channel="cli")
    deadline = time.monotonic() + 5
    while client.post("/predict", json=demo_rows(1)[0], headers={"X-Vigil-Key": text}).status_code != 200:
        assert time.monotonic() < deadline, "a new key was not taken within the refresh delay"
        time.sleep(0.1)
    revoke_keys(settings.database_url, "temp", actor="test", channel="cli")
    revoked_at = time.monotonic()
    while (answer := client.post("/predict", json=demo_rows(1)[0], headers={"X-Vigil-Key": text})).status_code == 200:
        assert time.monotonic() - revoked_at < settings.key_refresh_seconds + 1.0
        time.sleep(0.05)
    assert answer.status_code == 401 and "revoked" in answer.json()["detail"]


def test_an_operator_key_acts_under_its_own_name_and_not_once_revoked(closed):
    client, settings, keys = closed
    body = {"reason": "test", "operator": "someone-else"}
    refused = client.post("/operator/rollback", json=body, headers={"Authorization": f"Bearer {keys['shop']}"})
    assert refused.status_code == 403 and "'operator'" in refused.json()["detail"]
    version = train_version(settings, seed=3, promote=False)
    answer = client.post("/operator/promote", json={"version": version, **body},
                         headers={"Authorization": f"Bearer {keys['alice']}"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["actor"] == "api:key:alice"  # the key's name, not the typed one
    with session_scope(settings.database_url) as session:
        actor = session.scalars(select(AccessLog.actor).where(AccessLog.action == "promote", AccessLog.allowed)
                                .order_by(AccessLog.id.desc())).first()
    assert actor == "api:key:alice"
    revoke_keys(settings.database_url, "alice", actor="test", channel="cli")
    time.sleep(settings.key_refresh_seconds + 0.5)
    gone = client.post("/operator/rollback", json=body, headers={"Authorization": f"Bearer {keys['alice']}"})
    assert gone.status_code == 403 and "revoked" in gone.json()["detail"]

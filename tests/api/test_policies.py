"""``/operator/policies``: an operator credential for reading and writing; a PUT validated, stored,
audited as the operator, and refused whole (recorded, nothing changed) for a bad value."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from api.main import create_app
from monitoring.store.engine import session_scope
from monitoring.store.tables import AccessLog
from tests.api.conftest import OPERATOR_TOKEN
from tests.monitoring.watchdog.test_model_policy import known

AUTH = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
ALICE = {"operator": "alice"}


def test_policies_need_an_operator_and_a_put_is_checked_stored_and_audited(api_settings, model_name):
    url = api_settings.database_url
    known(url, model_name)
    path = f"/operator/policies/{model_name}"
    with TestClient(create_app(api_settings)) as client:
        assert client.get(path).status_code == 401
        assert client.get(path, params=ALICE, headers={"Authorization": "Bearer not-the-token-0123"}).status_code == 403
        assert client.put(path, json={"overrides": {"min_labels": 120}, **ALICE}).status_code == 401

        before = client.get(path, params=ALICE, headers=AUTH)
        assert before.status_code == 200, before.text
        assert before.json()["fields"]["min_labels"] == {"value": 30, "default": 30, "override": False}

        put = client.put(path, headers=AUTH, json={"overrides": {"min_labels": 120, "error_rate_limit": 0.02},
                                                   "reason": "a quiet model", **ALICE})
        assert put.status_code == 200, put.text
        assert put.json()["changes"] == ["min_labels: 30 (default) -> 120", "error_rate_limit: 0.05 (default) -> 0.02"]
        assert put.json()["actor"] == "api:alice"
        assert put.json()["policy"]["overrides"] == {"min_labels": 120, "error_rate_limit": 0.02}

        for overrides, status, said in [({"min_labels": 0}, 422, "min_labels=0: input should be greater than"),
                                        ({"min_labels": 10, "budget": 1}, 422, "no such policy field: budget")]:
            refused = client.put(path, headers=AUTH, json={"overrides": overrides, **ALICE})
            assert (refused.status_code, said in refused.json()["detail"]) == (status, True), refused.text
        assert client.put(path, headers=AUTH, json={"overrides": {"min_labels": "many"}, **ALICE}).status_code == 422
        assert client.put("/operator/policies/no-such-model", headers=AUTH,
                          json={"overrides": {"min_labels": 10}, **ALICE}).status_code == 404
        assert client.get("/operator/policies/no-such-model", params=ALICE, headers=AUTH).status_code == 404

        listed = client.get("/operator/policies", params=ALICE, headers=AUTH)
        assert listed.status_code == 200, listed.text
        [mine] = [policy for policy in listed.json() if policy["model_name"] == model_name]
        assert mine["overrides"] == {"min_labels": 120, "error_rate_limit": 0.02}  # the refusals changed nothing
        assert mine["fields"]["error_rate_limit"] == {"value": 0.02, "default": 0.05, "override": True}
        assert mine["updated_by"] == "api:alice"

        back = client.put(path, headers=AUTH, json={"overrides": {"error_rate_limit": 0.02}, **ALICE})
        assert back.json()["changes"] == ["min_labels: 120 -> 30 (default)"]  # left out: back to the default
    with session_scope(url) as session:
        audit = [(a.actor, a.action, a.allowed, a.channel)
                 for a in session.scalars(select(AccessLog).where(AccessLog.action.like("policy%")).order_by(AccessLog.id))]
    assert audit == [("api:anonymous", "policy_read", False, "api"), ("api:alice", "policy_read", False, "api"),
                     ("api:alice", "policy_set", False, "api"), ("api:alice", "policy_set", True, "api"),
                     ("api:alice", "policy_set", False, "api"), ("api:alice", "policy_set", False, "api"),
                     ("api:alice", "policy_set", False, "api"), ("api:alice", "policy_set", True, "api")]

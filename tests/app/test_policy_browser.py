"""The Policy page in chromium: a viewer reads the model's policy without a form; an operator's bad
value is refused with nothing stored, and a good one typed into the form is stored as the model's
own, audited as the operator and shown as an override."""

from __future__ import annotations

import pytest

from monitoring.store.engine import session_scope
from monitoring.store.tables import AccessLog, ModelPolicy
from tests.app.browser_support import OPERATOR_TOKEN, exceptions, open_page, settle
from tests.app.conftest import serve_dashboard
from tests.monitoring.watchdog.test_model_policy import known

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_an_operator_edits_a_threshold_in_the_form_and_it_is_stored(sqlite_url, browser, tmp_path, model_name):
    known(sqlite_url, model_name)
    env = {"VIGIL_DATABASE_URL": sqlite_url, "VIGIL_MODEL_NAME": model_name, "VIGIL_OPERATOR_TOKEN": OPERATOR_TOKEN,
           "VIGIL_DASHBOARD_ACCESS": "open", "VIGIL_VAR_DIR": str(tmp_path / "var")}
    with serve_dashboard(env) as base:
        page = open_page(browser, f"{base}/policy")
        settle(page)
        assert exceptions(page) == []
        page.get_by_text("Changing the policy needs an operator login").wait_for()
        assert page.get_by_role("button", name="Save").count() == 0

        page.get_by_label("Your name (with the shared token)").fill("alice")
        page.get_by_label("Operator key or token").fill(OPERATOR_TOKEN)
        page.get_by_role("button", name="Log in").click()
        page.get_by_text("Operator: alice").wait_for()
        settle(page)
        field = page.get_by_label("min_labels", exact=True)
        field.fill("0")
        page.get_by_role("button", name="Save").click()
        page.get_by_text("Refused, nothing changed: min_labels=0: input should be greater than or equal to 1").wait_for()
        with session_scope(sqlite_url) as session:
            assert session.get(ModelPolicy, model_name) is None

        field.fill("75")
        page.get_by_label("Reason (goes into the audit trail)").fill("a slow trickle of labels")
        page.get_by_role("button", name="Save").click()
        page.get_by_text("min_labels: 30 (default) → 75 (by dashboard:alice)").wait_for()  # markdown's arrow
        settle(page)
        assert exceptions(page) == []
        assert page.get_by_role("button", name="Reset to the defaults").count() == 1
        page.context.close()
    with session_scope(sqlite_url) as session:
        assert session.get(ModelPolicy, model_name).overrides == {"min_labels": 75}
        audit = [(a.actor, a.action, a.allowed, a.detail) for a in session.query(AccessLog).order_by(AccessLog.id)
                 if a.action.startswith("policy")]
    assert audit == [
        ("dashboard:alice", "policy_set", False, "refused: min_labels=0: input should be greater than or equal to 1"),
        ("dashboard:alice", "policy_set", True, "min_labels: 30 (default) -> 75 (reason: a slow trickle of labels)")]

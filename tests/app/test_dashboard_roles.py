"""The dashboard with a read-only role and the Acknowledge button, rendered headless (AppTest) on
seeded data in the real PostgreSQL: every page reads through VIGIL_DATABASE_READ_URL (take its
SELECT on alerts away and the Alerts page fails), while an operator's action still writes as the
owner; an anonymous Acknowledge is refused and recorded, an operator's is done and shown."""

from __future__ import annotations

import uuid

import pytest
import streamlit as st
from sqlalchemy import select
from sqlalchemy.engine import make_url

from monitoring.store.engine import dispose_engines, session_scope, utcnow
from monitoring.store.roles import grant_reader
from monitoring.store.tables import AccessLog, Alert, ModelControl, OutboxMessage
from tests.app import test_dashboard_pages
from tests.app.test_dashboard_pages import _alert, _app
from tests.conftest import _admin_execute

pytestmark = pytest.mark.postgres
seeded = test_dashboard_pages.seeded  # the fixture: two models' history in the real PostgreSQL
PAGES = ["overview", "quality", "service_health", "drift", "registry", "policy", "alerts"]


@pytest.fixture
def reader(seeded, postgres_admin_url, monkeypatch):
    """A read-only role with ``vigil db roles``' grants; the dashboard's pages read through it."""
    from monitoring.settings import reset_settings

    name = f"dash_reader_{uuid.uuid4().hex[:8]}"
    _admin_execute(postgres_admin_url, f"CREATE ROLE {name} LOGIN NOINHERIT")
    grant_reader(seeded, name)
    url = make_url(seeded).set(username=name, password=None).render_as_string(hide_password=False)
    monkeypatch.setenv("VIGIL_DATABASE_READ_URL", url)
    reset_settings()
    yield name
    dispose_engines()
    _admin_execute(seeded, f"DROP OWNED BY {name}")  # its grants, here and on the database
    _admin_execute(postgres_admin_url, f"DROP ROLE {name}")


@pytest.mark.slow
def test_every_page_reads_as_the_reader_and_an_action_still_writes_as_the_owner(seeded, reader, model_name):
    for page in PAGES:
        _app(page)  # no exception on any page
    operator = _app("registry", operator="dashboard:alice")
    operator.text_input(key="control_reason").input("maintenance window").run()
    operator.button(key="control_button").click().run()
    assert not operator.exception, [e.value for e in operator.exception]
    with session_scope(seeded) as session:
        assert session.get(ModelControl, model_name).frozen is True
    # the pages really read as the reader: without its SELECT on alerts the Alerts page fails
    _admin_execute(seeded, f"REVOKE SELECT ON alerts FROM {reader}")
    st.cache_data.clear()
    with pytest.raises(AssertionError, match="permission denied for table alerts"):
        _app("alerts")


def test_acknowledge_is_an_operators_action_audited_and_announced(seeded, model_name):
    key = f"{model_name}:2:degraded"
    _alert(seeded, model_name, key, "version 2 degraded", opened=utcnow())
    anonymous = _app("alerts")
    anonymous.button(key=f"ack_{_alert_id(seeded, key)}").click().run()
    assert any("acknowledge needs an operator login" in error.value for error in anonymous.error)
    operator = _app("alerts", operator="dashboard:alice")
    operator.button(key=f"ack_{_alert_id(seeded, key)}").click().run()
    assert not operator.exception, [e.value for e in operator.exception]
    again = _app("alerts", operator="dashboard:alice")
    assert any("Acknowledged by dashboard:alice" in caption.value for caption in again.caption)
    assert not [b for b in again.button if b.key == f"ack_{_alert_id(seeded, key)}"]
    with session_scope(seeded) as session:
        log = session.execute(select(AccessLog.actor, AccessLog.action, AccessLog.allowed, AccessLog.channel)
                              .where(AccessLog.action == "acknowledge").order_by(AccessLog.id)).all()
        kinds = session.scalars(select(OutboxMessage.kind).join(Alert, Alert.id == OutboxMessage.alert_id)
                                .where(Alert.alert_key == key).order_by(OutboxMessage.id)).all()
    assert log == [("dashboard:anonymous", "acknowledge", False, "dashboard"),
                   ("dashboard:alice", "acknowledge", True, "dashboard")]
    assert kinds == ["firing", "acknowledged"]


def _alert_id(url: str, key: str) -> int:
    with session_scope(url) as session:
        return session.scalar(select(Alert.id).where(Alert.alert_key == key))

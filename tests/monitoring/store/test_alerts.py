"""The alert lifecycle on real stores (SQLite and PostgreSQL): de-dup by key, messages, threads."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from monitoring.settings import reset_settings
from monitoring.store.alerts import add_followup, raise_alert, renotify_due, resolve_alert
from monitoring.store.engine import session_scope
from monitoring.store.tables import Alert, OutboxMessage

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
KEY = "loan-default:degradation"


@pytest.fixture(autouse=True)
def dashboard(monkeypatch):
    monkeypatch.setenv("VIGIL_DASHBOARD_URL", "http://dash.test:8501")
    reset_settings()
    yield
    reset_settings()


def _raise(session, *, now=T0, severity="critical", facts=None, key=KEY, model="loan-default"):
    return raise_alert(session, key=key, model_name=model, kind="degradation", severity=severity,
                       title="Accuracy dropped on v7", facts=facts or {"accuracy": 0.61}, text="3 breaches",
                       now=now)


def _outbox(url):
    with session_scope(url) as session:
        return [(m.kind, m.alert_id, m.payload) for m in session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))]


def test_new_key_opens_an_alert_with_one_firing_message(store_url):
    with session_scope(store_url) as session:
        alert = _raise(session)
        alert_id = alert.id

    with session_scope(store_url) as session:
        stored = session.scalars(select(Alert)).one()
        assert (stored.alert_key, stored.state, stored.severity, stored.kind) == (KEY, "firing", "critical", "degradation")
        assert stored.opened_at == T0 and stored.last_notified_at == T0 and stored.resolved_at is None
        assert stored.details == {"facts": {"accuracy": 0.61}, "text": "3 breaches"}
    assert _outbox(store_url) == [("firing", alert_id, {
        "title": "Accuracy dropped on v7", "severity": "critical", "facts": {"accuracy": 0.61},
        "text": "3 breaches", "link": "http://dash.test:8501"})]


def test_raising_a_firing_key_again_updates_it_without_a_message(store_url):
    with session_scope(store_url) as session:
        _raise(session)
    with session_scope(store_url) as session:
        _raise(session, now=T0 + timedelta(minutes=1), facts={"accuracy": 0.55}, severity="warning")

    with session_scope(store_url) as session:
        alert = session.scalars(select(Alert)).one()
        assert alert.details["facts"] == {"accuracy": 0.55} and alert.severity == "warning"
        assert alert.opened_at == T0 and alert.updated_at == T0 + timedelta(minutes=1)
    assert [kind for kind, _, _ in _outbox(store_url)] == ["firing"]


def test_resolve_then_raise_again_is_a_new_incident_on_the_same_row(store_url):
    with session_scope(store_url) as session:
        _raise(session)
    with session_scope(store_url) as session:
        resolved = resolve_alert(session, key=KEY, facts={"accuracy": 0.9}, text="back to normal",
                                 now=T0 + timedelta(minutes=5))
        assert resolved is not None and resolved.state == "resolved"
    with session_scope(store_url) as session:
        assert resolve_alert(session, key=KEY, facts={}) is None  # already resolved: nothing
        assert resolve_alert(session, key="no-such-key", facts={}) is None
    with session_scope(store_url) as session:
        _raise(session, now=T0 + timedelta(minutes=30))

    with session_scope(store_url) as session:
        alert = session.scalars(select(Alert)).one()
        assert alert.state == "firing" and alert.opened_at == T0 + timedelta(minutes=30)
        assert alert.resolved_at is None
    messages = _outbox(store_url)
    assert [kind for kind, _, _ in messages] == ["firing", "resolved", "firing"]
    assert messages[1][2]["title"] == "Resolved: Accuracy dropped on v7"
    assert messages[1][2]["severity"] == "info"
    assert messages[1][2]["facts"] == {"accuracy": 0.9}
    assert len({alert_id for _, alert_id, _ in messages}) == 1


def test_followup_goes_to_the_alert_and_unknown_key_is_refused(store_url):
    with session_scope(store_url) as session:
        alert_id = _raise(session).id
        add_followup(session, key=KEY, title="Recovered after rollback", facts={"accuracy": 0.9},
                     severity="info", now=T0 + timedelta(minutes=10))
    with pytest.raises(LookupError, match="no alert"), session_scope(store_url) as session:
        add_followup(session, key="missing", title="x", facts={})

    messages = _outbox(store_url)
    assert [(kind, a) for kind, a, _ in messages] == [("firing", alert_id), ("followup", alert_id)]
    assert messages[1][2]["title"] == "Recovered after rollback"


def test_bad_input_is_refused_and_changes_nothing(store_url):
    with session_scope(store_url) as session:
        _raise(session)
    for bad in ({"severity": "fatal"}, {"key": ""}, {"key": "x" * 301}):
        with pytest.raises(ValueError), session_scope(store_url) as session:
            _raise(session, **bad)
    with pytest.raises(ValueError, match="belongs to model"), session_scope(store_url) as session:
        _raise(session, model="other-model")
    with pytest.raises(ValueError, match="positive"), session_scope(store_url) as session:
        renotify_due(session, now=T0, interval=timedelta(0))

    with session_scope(store_url) as session:
        assert session.scalars(select(Alert)).one().model_name == "loan-default"
    assert len(_outbox(store_url)) == 1


def test_renotify_only_when_due_and_not_while_a_message_is_undelivered(store_url):
    with session_scope(store_url) as session:
        _raise(session)
        _raise(session, key="loan-default:drift", now=T0 + timedelta(minutes=50))
    with session_scope(store_url) as session:  # pretend the firing messages were delivered
        for message in session.scalars(select(OutboxMessage)):
            message.delivered_at = T0 + timedelta(minutes=50)

    with session_scope(store_url) as session:
        assert renotify_due(session, now=T0 + timedelta(minutes=59), interval=timedelta(minutes=60)) == 0
    with session_scope(store_url) as session:
        assert renotify_due(session, now=T0 + timedelta(minutes=60), interval=timedelta(minutes=60)) == 1
    with session_scope(store_url) as session:  # its reminder is not delivered yet: no second one
        assert renotify_due(session, now=T0 + timedelta(minutes=200), interval=timedelta(minutes=60)) == 1

    messages = _outbox(store_url)
    reminders = [p for kind, _, p in messages if kind == "renotify"]
    assert [p["title"] for p in reminders] == ["Still firing: Accuracy dropped on v7"] * 2
    assert reminders[0]["text"] == "Firing for 60 min, since 2026-11-27 12:00 UTC. 3 breaches"
    assert reminders[0]["severity"] == "critical" and reminders[0]["facts"] == {"accuracy": 0.61}
    with session_scope(store_url) as session:
        keys = {m.alert_id for m in session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "renotify"))}
        drift = session.scalars(select(Alert).where(Alert.alert_key == "loan-default:drift")).one()
        assert drift.id in keys and len(keys) == 2


def test_resolved_alerts_are_not_renotified(store_url):
    with session_scope(store_url) as session:
        _raise(session)
        resolve_alert(session, key=KEY, facts={}, now=T0 + timedelta(minutes=1))
        for message in session.scalars(select(OutboxMessage)):
            message.delivered_at = T0 + timedelta(minutes=1)
    with session_scope(store_url) as session:
        assert renotify_due(session, now=T0 + timedelta(days=1), interval=timedelta(minutes=60)) == 0


def test_concurrent_raises_of_one_key_make_one_alert_and_one_message(store_url):
    barrier = threading.Barrier(4)
    errors = []

    def worker():
        try:
            barrier.wait()
            with session_scope(store_url) as session:
                _raise(session)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    with session_scope(store_url) as session:
        assert len(session.scalars(select(Alert)).all()) == 1
    assert [kind for kind, _, _ in _outbox(store_url)] == ["firing"]


def test_concurrent_renotifiers_send_one_reminder(store_url):
    with session_scope(store_url) as session:
        _raise(session)
        session.scalars(select(OutboxMessage)).one().delivered_at = T0
    barrier = threading.Barrier(3)
    counts = []

    def worker():
        barrier.wait()
        with session_scope(store_url) as session:
            counts.append(renotify_due(session, now=T0 + timedelta(hours=2), interval=timedelta(hours=1)))

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(counts) == [0, 0, 1]
    assert [kind for kind, _, _ in _outbox(store_url)] == ["firing", "renotify"]

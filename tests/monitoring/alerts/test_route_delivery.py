"""Alert routes against real local servers: signed webhook with retry, PagerDuty trigger/resolve,
a down route holding back only itself, and no loss or duplicate across a deliverer restart."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

import pytest

from monitoring.alerts.route_delivery import deliver_routes
from monitoring.alerts.routes import PagerDutyRoute, WebhookRoute
from monitoring.store import alerts, outbox, route_deliveries
from monitoring.store.engine import session_scope, utcnow
from tests.fakes.fake_receiver import start_receiver

SECRET = "s3cret-for-tests"


@pytest.fixture
def receiver():
    state, server = start_receiver()
    yield state
    server.shutdown()


@pytest.fixture
def other_receiver():
    state, server = start_receiver()
    yield state
    server.shutdown()


@pytest.fixture(autouse=True)
def _secrets(monkeypatch):
    monkeypatch.setenv("TEST_HOOK_SECRET", SECRET)
    monkeypatch.setenv("TEST_PD_KEY", "routing-key-1")


def _hook(url: str, name: str = "hook", **kw) -> WebhookRoute:
    return WebhookRoute(name=name, kind="webhook", url=url, secret_env="TEST_HOOK_SECRET", **kw)


def _enqueue(url: str, title: str, *, severity: str = "warning", model: str = "churn") -> int:
    with session_scope(url) as session:
        return outbox.enqueue(session, model_name=model, kind="promotion", title=title,
                              severity=severity).id


def _valid(request) -> bool:
    expected = "sha256=" + hmac.new(
        SECRET.encode(), request.headers["X-Vigil-Timestamp"].encode() + b"." + request.raw,
        hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, request.headers["X-Vigil-Signature"])


def test_webhook_is_signed_retried_after_a_500_and_delivered_once(store_url, receiver):
    message_id = _enqueue(store_url, "v2 promoted")
    receiver.answers = [500]
    route = _hook(receiver.url)
    now = utcnow()
    (first,) = deliver_routes(store_url, (route,), now=now)
    assert (first.delivered, first.failed, first.pending) == (0, 1, 1)
    (early,) = deliver_routes(store_url, (route,), now=now + timedelta(seconds=5))
    assert len(receiver.requests) == 1 and early.pending == 1  # backoff: not before 10 s
    (second,) = deliver_routes(store_url, (route,), now=now + timedelta(seconds=11))
    assert (second.delivered, second.pending) == (1, 0)
    deliver_routes(store_url, (route,), now=now + timedelta(seconds=60))
    assert len(receiver.requests) == 2  # delivered once, never again
    keys = {r.headers["Idempotency-Key"] for r in receiver.requests}
    assert keys == {f"vigil-{message_id}"}
    assert all(_valid(r) for r in receiver.requests)
    assert receiver.requests[1].body["title"] == "v2 promoted"
    assert receiver.requests[1].body["model"] == "churn"
    (row,) = route_deliveries.recent_deliveries(store_url)
    assert row.attempts == 1 and row.delivered_at is not None and row.last_error is None


def test_a_wrong_secret_fails_the_receivers_check(store_url, receiver, monkeypatch):
    monkeypatch.setenv("TEST_HOOK_SECRET", "another")
    _enqueue(store_url, "x")
    deliver_routes(store_url, (_hook(receiver.url),))
    assert not _valid(receiver.requests[0])


def test_severity_and_model_filters_choose_the_route(store_url, receiver):
    _enqueue(store_url, "info churn", severity="info")
    _enqueue(store_url, "critical fraud", severity="critical", model="fraud")
    _enqueue(store_url, "critical churn", severity="critical")
    route = _hook(receiver.url, severities=("critical",), models=("churn",))
    deliver_routes(store_url, (route,))
    assert [r.body["title"] for r in receiver.requests] == ["critical churn"]


def test_pagerduty_triggers_then_resolves_with_one_dedup_key(store_url, receiver):
    with session_scope(store_url) as session:
        alert = alerts.raise_alert(session, key="churn:degradation", model_name="churn",
                                   kind="degradation", severity="critical", title="F1 fell",
                                   facts={"f1": 0.61})
    route = PagerDutyRoute(name="pager", kind="pagerduty", routing_key_env="TEST_PD_KEY",
                           events_url=receiver.url)
    deliver_routes(store_url, (route,))
    with session_scope(store_url) as session:
        alerts.resolve_alert(session, key="churn:degradation", facts={"f1": 0.8})
    deliver_routes(store_url, (route,))
    trigger, resolve = (r.body for r in receiver.requests)
    assert trigger["event_action"] == "trigger" and resolve["event_action"] == "resolve"
    assert trigger["dedup_key"] == resolve["dedup_key"] == f"vigil-alert-{alert.id}"
    assert trigger["routing_key"] == "routing-key-1"
    assert trigger["payload"]["severity"] == "critical"
    assert "F1 fell" in trigger["payload"]["summary"]


def test_a_down_route_delays_only_its_own_messages(store_url, receiver, other_receiver):
    receiver.down = True
    for n in range(3):
        _enqueue(store_url, f"m{n}")
    down, up = _hook(receiver.url, "down"), _hook(other_receiver.url, "up")
    reports = deliver_routes(store_url, (down, up))
    assert [(r.route, r.delivered, r.pending) for r in reports] == [("down", 0, 3), ("up", 3, 0)]
    assert len(receiver.requests) == 1  # stopped at the first failure, order kept
    receiver.down = False
    (back,) = deliver_routes(store_url, (down,), now=utcnow() + timedelta(seconds=11))
    assert back.delivered == 3
    assert [r.body["title"] for r in receiver.requests[1:]] == ["m0", "m1", "m2"]


def test_no_loss_or_duplicate_across_a_deliverer_restart(store_url, receiver):
    ids = [_enqueue(store_url, f"m{n}") for n in range(3)]
    route = _hook(receiver.url)
    now = utcnow()
    # a deliverer claims the batch and dies before sending anything
    lost = route_deliveries.claim(store_url, "hook", lambda s, m: True, now=now,
                                  since=now - timedelta(days=1), limit=100,
                                  lease=timedelta(minutes=2))
    assert len(lost) == 3
    (during,) = deliver_routes(store_url, (route,), now=now + timedelta(seconds=30))
    assert during.delivered == 0 and not receiver.requests  # the lease still holds
    (after,) = deliver_routes(store_url, (route,), now=now + timedelta(minutes=3))
    assert after.delivered == 3
    deliver_routes(store_url, (route,), now=now + timedelta(minutes=10))
    assert [r.headers["Idempotency-Key"] for r in receiver.requests] == [f"vigil-{i}" for i in ids]


def test_retention_keeps_a_message_until_every_route_delivered_it(store_url, receiver):
    from sqlalchemy import func, select, update

    from monitoring.store.retention import delete_due
    from monitoring.store.tables import OutboxMessage, RouteDelivery

    receiver.down = True
    _enqueue(store_url, "m")
    now = utcnow()
    deliver_routes(store_url, (_hook(receiver.url),), now=now)
    with session_scope(store_url) as session:  # Slack delivered it long ago
        session.execute(update(OutboxMessage).values(delivered_at=now - timedelta(days=30)))
    assert delete_due(store_url, "outbox", now - timedelta(days=7), batch_rows=10) == 0
    receiver.down = False
    deliver_routes(store_url, (_hook(receiver.url),), now=now + timedelta(minutes=1))
    assert delete_due(store_url, "outbox", now - timedelta(days=7), batch_rows=10) == 1
    with session_scope(store_url) as session:
        assert session.scalar(select(func.count()).select_from(RouteDelivery)) == 0

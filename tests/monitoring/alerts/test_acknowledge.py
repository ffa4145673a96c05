"""Acknowledging an alert, through ``vigil alerts ack KEY`` as an operator runs it: PagerDuty (a
local server standing in for its events endpoint) gets trigger, acknowledge, resolve with one
dedup key, even on a critical-only route; the default Slack channel gets it in the alert's
thread; it is audited; a second, unknown or resolved acknowledgement is refused, changing nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from monitoring.alerts.delivery import deliver_pending
from monitoring.alerts.route_delivery import deliver_routes
from monitoring.alerts.routes import PagerDutyRoute
from monitoring.settings import Settings
from monitoring.store.alerts import raise_alert, resolve_alert
from monitoring.store.engine import session_scope, utcnow
from monitoring.store.tables import AccessLog, OutboxMessage
from tests.fakes.fake_receiver import start_receiver

VIGIL = [sys.executable, "-c", "from cli.main import main; main()"]


@pytest.fixture
def pagerduty(monkeypatch):
    state, server = start_receiver()
    monkeypatch.setenv("TEST_PD_KEY", "routing-key-1")
    yield state
    server.shutdown()


def vigil(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VIGIL_DATABASE_URL": url}
    return subprocess.run([*VIGIL, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def _raise(url: str, key: str = "churn-quality") -> None:
    with session_scope(url) as session:
        raise_alert(session, key=key, model_name="churn", kind="degradation", severity="critical",
                    title="Quality dropped", facts={"accuracy": 0.61})


def _messages(url: str) -> int:
    with session_scope(url) as session:
        return session.scalar(select(func.count()).select_from(OutboxMessage))


def test_pagerduty_is_triggered_acknowledged_and_resolved_with_one_dedup_key(store_url, pagerduty):
    route = PagerDutyRoute(name="pager", kind="pagerduty", routing_key_env="TEST_PD_KEY",
                           events_url=pagerduty.url, severities=("critical",))
    _raise(store_url)
    deliver_routes(store_url, (route,))
    done = vigil(store_url, "alerts", "ack", "churn-quality")
    assert done.returncode == 0, done.stderr
    assert "alert 'churn-quality' acknowledged by cli:" in done.stdout
    deliver_routes(store_url, (route,), now=utcnow() + timedelta(seconds=1))
    with session_scope(store_url) as session:
        resolve_alert(session, key="churn-quality", facts={"accuracy": 0.9})
    deliver_routes(store_url, (route,), now=utcnow() + timedelta(seconds=2))
    bodies = [r.body for r in pagerduty.requests]
    assert [b["event_action"] for b in bodies] == ["trigger", "acknowledge", "resolve"]
    assert len({b["dedup_key"] for b in bodies}) == 1 and bodies[0]["payload"]["severity"] == "critical"
    assert {b["routing_key"] for b in bodies} == {"routing-key-1"}
    with session_scope(store_url) as session:
        audit = session.scalars(select(AccessLog).where(AccessLog.action == "acknowledge")).one()
        assert audit.allowed and audit.channel == "cli" and audit.model_name == "churn"
        assert audit.actor.startswith("cli:") and audit.detail == "alert churn-quality"


def test_a_second_unknown_or_resolved_acknowledgement_is_refused_and_changes_nothing(store_url):
    _raise(store_url)
    assert vigil(store_url, "alerts", "ack", "churn-quality").returncode == 0
    before = _messages(store_url)
    again = vigil(store_url, "alerts", "ack", "churn-quality")
    assert again.returncode == 2 and "was acknowledged by cli:" in again.stderr
    _raise(store_url)  # raised again while firing: the same incident, still acknowledged
    assert vigil(store_url, "alerts", "ack", "churn-quality").returncode == 2
    unknown = vigil(store_url, "alerts", "ack", "no-such-alert")
    assert unknown.returncode == 2 and "no alert with key 'no-such-alert'" in unknown.stderr
    with session_scope(store_url) as session:
        resolve_alert(session, key="churn-quality", facts={})
    resolved = vigil(store_url, "alerts", "ack", "churn-quality")
    assert resolved.returncode == 2 and "is resolved" in resolved.stderr
    assert _messages(store_url) == before + 1  # only the resolve
    _raise(store_url)  # a new incident may be acknowledged again
    assert vigil(store_url, "alerts", "ack", "churn-quality").returncode == 0


def test_the_default_slack_channel_gets_the_acknowledgement_in_the_alerts_thread(sqlite_url, fake_slack):
    settings = Settings(slack_bot_token=fake_slack.token, slack_base_url=fake_slack.base_url,
                        slack_channel="#oncall")
    _raise(sqlite_url)
    deliver_pending(sqlite_url, settings=settings)
    assert vigil(sqlite_url, "alerts", "ack", "churn-quality").returncode == 0
    report = deliver_pending(sqlite_url, settings=settings)
    assert report.delivered == 1
    opened, acknowledged = fake_slack.posted()
    assert acknowledged["thread_ts"] and "thread_ts" not in opened
    assert "Acknowledged by cli:" in acknowledged["text"]

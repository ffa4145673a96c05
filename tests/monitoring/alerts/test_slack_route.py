"""Slack as a route of the routes file, against the fake Slack over real HTTP: a channel per route
with its severity and model filters, one thread per alert and route, re-notify and resolve in the
thread, the default channel off once a Slack route is listed (and on, as before, when none is)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from monitoring.alerts.route_delivery import deliver_outbox
from monitoring.alerts.routes import RouteConfigError, load_routes
from monitoring.settings import Settings
from monitoring.store import outbox_claims, route_deliveries
from monitoring.store.alerts import raise_alert, renotify_due, resolve_alert
from monitoring.store.engine import session_scope
from monitoring.store.tables import Alert

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _routes_file(tmp_path, fake, *extra: str):
    path = tmp_path / "routes.toml"
    path.write_text("\n".join([
        '[[routes]]', 'name = "oncall"', 'kind = "slack"', 'channel = "#ml-oncall"',
        'severities = ["critical"]', 'token_env = "TEST_SLACK_TOKEN"',
        f'api_base_url = "{fake.base_url}"', '',
        '[[routes]]', 'name = "fraud-team"', 'kind = "slack"', 'channel = "#fraud"',
        'models = ["fraud"]', 'token_env = "TEST_SLACK_TOKEN"', f'api_base_url = "{fake.base_url}"',
        '', *extra]))
    return path


def _settings(fake, routes=None) -> Settings:
    """The default Slack channel configured too, to show it stays quiet when a route takes over."""
    return Settings(slack_bot_token=fake.token, slack_base_url=fake.base_url, slack_channel="#default",
                    alert_routes_file=routes)


def _raise(url, key, *, model="churn", severity="critical", now=T0):
    with session_scope(url) as session:
        raise_alert(session, key=key, model_name=model, kind="degradation", severity=severity,
                    title=f"{key} degraded", facts={"accuracy": 0.61}, now=now)


def _resolve(url, key, now):
    with session_scope(url) as session:
        resolve_alert(session, key=key, facts={"accuracy": 0.9}, now=now)


@pytest.fixture(autouse=True)
def _token(monkeypatch, fake_slack):
    monkeypatch.setenv("TEST_SLACK_TOKEN", fake_slack.token)


def test_each_route_gets_what_its_filters_take_in_its_own_channel_and_thread(store_url, fake_slack,
                                                                            tmp_path):
    settings = _settings(fake_slack, _routes_file(tmp_path, fake_slack))
    _raise(store_url, "churn-bad")                                   # critical, churn: oncall only
    _raise(store_url, "fraud-bad", model="fraud", severity="warning")  # warning, fraud: fraud-team only
    _raise(store_url, "fraud-bad", model="fraud", severity="warning")  # the same key again: no message
    report, routed = deliver_outbox(store_url, settings, now=T0)
    assert report.routed and (report.delivered, report.failed) == (2, 0)
    assert [(r.route, r.delivered) for r in routed] == [("oncall", 1), ("fraud-team", 1)]
    channels = [(body["channel"], _title(body)) for body in fake_slack.posted()]
    assert sorted(channels) == [("#fraud", "fraud-bad degraded"), ("#ml-oncall", "churn-bad degraded")]

    answers = [r for r in fake_slack.requests if r.accepted]
    assert all("thread_ts" not in r.body for r in answers)  # each opened its thread
    _resolve(store_url, "churn-bad", T0 + timedelta(minutes=5))  # "resolved" is info: still oncall's
    deliver_outbox(store_url, settings, now=T0 + timedelta(minutes=5))
    resolved = fake_slack.posted()[-1]
    assert resolved["channel"] == "C0VIGIL01" and resolved["reply_broadcast"] in (True, "true", "1")
    opened = next(r for r in answers if r.body["channel"] == "#ml-oncall")
    assert resolved["thread_ts"] == _ts_of(fake_slack, opened)
    assert len(fake_slack.posted()) == 3  # nothing went to #default, nor to #fraud


def _title(body) -> str:
    """The title in a message's fallback text, ``:emoji: [LABEL] model: title``."""
    return body["text"].split("] ", 1)[1].split(": ", 1)[1]


def _ts_of(fake, request) -> str:
    """The ts the fake gave the accepted request (they are handed out in order)."""
    index = next(i for i, r in enumerate(r for r in fake.requests if r.accepted) if r is request)
    return f"{1_700_000_000 + index + 1}.000100"


def test_renotify_waits_for_the_route_and_goes_into_the_same_thread(store_url, fake_slack, tmp_path):
    settings = _settings(fake_slack, _routes_file(tmp_path, fake_slack))
    _raise(store_url, "slow")
    fake_slack.fail(503)
    _report, (first, _) = deliver_outbox(store_url, settings, now=T0)
    assert (first.delivered, first.failed, first.pending) == (0, 1, 1)
    later = T0 + timedelta(minutes=90)
    with session_scope(store_url) as session:  # the firing message is still owed: no reminder yet
        assert renotify_due(session, now=later, interval=timedelta(minutes=60)) == 0
    report, _ = deliver_outbox(store_url, settings, now=T0 + timedelta(seconds=11))
    assert report.delivered == 1 and outbox_claims.count_pending(store_url) == 0  # settled
    with session_scope(store_url) as session:
        assert renotify_due(session, now=later, interval=timedelta(minutes=60)) == 1
    deliver_outbox(store_url, settings, now=later)
    opened, reminder = fake_slack.posted()
    assert opened["channel"] == "#ml-oncall" and "thread_ts" not in opened
    assert reminder["thread_ts"] == _ts_of(fake_slack, next(r for r in fake_slack.requests if r.accepted))
    assert "Still firing" in reminder["text"]


def test_without_a_slack_route_the_default_channel_posts_as_before(store_url, fake_slack, tmp_path,
                                                                   monkeypatch):
    monkeypatch.setenv("TEST_HOOK_SECRET", "k")
    routes = tmp_path / "hooks.toml"
    routes.write_text('[[routes]]\nname = "hook"\nkind = "webhook"\nurl = "http://127.0.0.1:9/x"\n'
                      'secret_env = "TEST_HOOK_SECRET"\n')
    _raise(store_url, "a")
    report, (hook,) = deliver_outbox(store_url, _settings(fake_slack, routes), now=T0)
    assert not report.routed and report.delivered == 1 and hook.failed == 1
    assert [body["channel"] for body in fake_slack.posted()] == ["#default"]
    report, routed = deliver_outbox(store_url, _settings(fake_slack), now=T0)  # no routes file at all
    assert not report.routed and routed == [] and report.pending == 0


def test_a_new_incident_opens_a_new_thread_on_the_route(store_url, fake_slack, tmp_path):
    settings = _settings(fake_slack, _routes_file(tmp_path, fake_slack))
    _raise(store_url, "flappy")
    deliver_outbox(store_url, settings, now=T0)
    _resolve(store_url, "flappy", T0 + timedelta(minutes=1))
    _raise(store_url, "flappy", now=T0 + timedelta(minutes=2))
    deliver_outbox(store_url, settings, now=T0 + timedelta(minutes=2))
    first, resolved, again = fake_slack.posted()
    assert "thread_ts" not in first and "thread_ts" not in again
    accepted = [r for r in fake_slack.requests if r.accepted]
    assert resolved["thread_ts"] == _ts_of(fake_slack, accepted[0])
    with session_scope(store_url) as session:
        alert_id = session.scalar(select(Alert.id).where(Alert.alert_key == "flappy"))
    assert route_deliveries.slack_thread(store_url, alert_id, "oncall") == (
        fake_slack.channel_id, _ts_of(fake_slack, accepted[2]))


def test_a_bot_slack_route_without_a_channel_is_refused_at_start(tmp_path):
    path = tmp_path / "routes.yaml"
    path.write_text("routes:\n  - name: chat\n    kind: slack\n")
    with pytest.raises(RouteConfigError, match="route 'chat' \\(#1\\).*needs a channel"):
        load_routes(path)


def test_a_route_secret_comes_from_its_file_variable(store_url, fake_slack, tmp_path, monkeypatch):
    monkeypatch.delenv("TEST_SLACK_TOKEN")
    token_file = tmp_path / "slack_token"
    token_file.write_text(fake_slack.token + "\n")
    monkeypatch.setenv("TEST_SLACK_TOKEN_FILE", str(token_file))
    _raise(store_url, "from-file")
    report, _ = deliver_outbox(store_url, _settings(fake_slack, _routes_file(tmp_path, fake_slack)), now=T0)
    assert report.delivered == 1
    assert fake_slack.requests[0].headers["authorization"] == f"Bearer {fake_slack.token}"


def test_a_route_follows_the_incident_it_took_and_filters_a_new_one_anew(store_url, fake_slack, tmp_path):
    settings = _settings(fake_slack, _routes_file(tmp_path, fake_slack))  # oncall: critical only
    _raise(store_url, "churn-drift")                                          # critical: taken
    _resolve(store_url, "churn-drift", T0 + timedelta(minutes=1))             # info, but its incident
    _raise(store_url, "churn-drift", severity="warning", now=T0 + timedelta(minutes=2))  # new, warning
    _resolve(store_url, "churn-drift", T0 + timedelta(minutes=3))             # of the untaken incident
    deliver_outbox(store_url, settings, now=T0 + timedelta(minutes=3))
    titles = [_title(body) for body in fake_slack.posted()]
    assert titles == ["churn-drift degraded", "Resolved: churn-drift degraded"]
    assert outbox_claims.count_pending(store_url) == 0  # the untaken ones are owed to no route

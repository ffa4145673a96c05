"""Delivering the outbox to the fake Slack over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from monitoring.alerts.delivery import backoff_seconds, deliver_pending
from monitoring.settings import Settings
from monitoring.store import outbox
from monitoring.store.alerts import add_followup, raise_alert, renotify_due, resolve_alert
from monitoring.store.engine import session_scope
from monitoring.store.tables import Alert, OutboxMessage
from tests.fakes.fake_slack import fake_slack_fixture  # noqa: F401 - the "fake_slack" fixture

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def bot(fake) -> Settings:
    return Settings(slack_bot_token=fake.token, slack_webhook_url=None, slack_base_url=fake.base_url,
                    slack_channel="#oncall")


def _raise(session, key, title, now=T0):
    return raise_alert(session, key=key, model_name="loan-default", kind="rollback", severity="critical",
                       title=title, facts={"from version": 7, "to version": 5}, now=now)


def _followup(session, key, title, now=T0):
    return add_followup(session, key=key, title=title, facts={"accuracy": 0.9}, now=now)


def _rows(url):
    with session_scope(url) as session:
        return session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()


def _titles(fake):
    """Titles of the messages Slack accepted, in arrival order (from the fallback text)."""
    return [body["text"].split("loan-default: ", 1)[1] for body in fake.posted()]


def test_firing_opens_a_thread_and_later_messages_go_into_it(store_url, fake_slack):
    with session_scope(store_url) as session:
        _raise(session, "a", "Rolled back v7")
        _followup(session, "a", "Recovered")
    with session_scope(store_url) as session:
        resolve_alert(session, key="a", facts={"accuracy": 0.91}, now=T0)

    report = deliver_pending(store_url, settings=bot(fake_slack), now=T0)

    assert (report.delivered, report.failed, report.pending, report.slack_enabled) == (3, 0, 0, True)
    firing, followup, resolved = fake_slack.posted()
    assert firing["channel"] == "#oncall" and "thread_ts" not in firing
    assert firing["text"] == ":red_circle: [CRITICAL] loan-default: Rolled back v7"
    assert [b["type"] for b in firing["blocks"]][:2] == ["header", "context"]
    thread_ts = _alert(store_url, "a").slack_thread_ts
    assert thread_ts == posted_ts(fake_slack, 0)
    assert (followup["channel"], followup["thread_ts"], followup["reply_broadcast"]) == ("C0VIGIL01", thread_ts, False)
    assert (resolved["channel"], resolved["thread_ts"], resolved["reply_broadcast"]) == ("C0VIGIL01", thread_ts, True)
    assert resolved["text"] == ":white_check_mark: [RESOLVED] loan-default: Resolved: Rolled back v7"
    assert all(row.delivered_at == T0 and row.attempts == 0 for row in _rows(store_url))
    again = deliver_pending(store_url, settings=bot(fake_slack), now=T0 + timedelta(hours=1))
    assert (again.delivered, again.pending) == (0, 0) and len(fake_slack.requests) == 3


def _alert(url, key):
    with session_scope(url) as session:
        return session.scalars(select(Alert).where(Alert.alert_key == key)).one()


def test_renotify_goes_into_the_thread_and_is_broadcast(store_url, fake_slack):
    with session_scope(store_url) as session:
        _raise(session, "a", "Rolled back v7")
    deliver_pending(store_url, settings=bot(fake_slack), now=T0)
    with session_scope(store_url) as session:
        assert renotify_due(session, now=T0 + timedelta(hours=1), interval=timedelta(hours=1)) == 1

    deliver_pending(store_url, settings=bot(fake_slack), now=T0 + timedelta(hours=1))

    _firing, reminder = fake_slack.posted()
    assert reminder["text"].endswith("Still firing: Rolled back v7")
    assert (reminder["thread_ts"], reminder["reply_broadcast"]) == (_alert(store_url, "a").slack_thread_ts, True)


def test_a_followup_waits_until_the_message_opening_its_thread_is_delivered(store_url, fake_slack):
    with session_scope(store_url) as session:
        _raise(session, "a", "Rolled back v7")
        _followup(session, "a", "Recovered")
        session.execute(update(OutboxMessage).where(OutboxMessage.kind == "firing")
                        .values(next_attempt_at=T0 + timedelta(minutes=1)))  # as if backing off

    early = deliver_pending(store_url, settings=bot(fake_slack), now=T0)
    assert (early.delivered, early.pending) == (0, 2) and fake_slack.requests == []

    later = deliver_pending(store_url, settings=bot(fake_slack), now=T0 + timedelta(minutes=1))
    assert later.delivered == 2
    assert _titles(fake_slack) == ["Rolled back v7", "Recovered"]
    assert fake_slack.posted()[1]["thread_ts"] == _alert(store_url, "a").slack_thread_ts == posted_ts(fake_slack, 0)


def test_rate_limit_is_honoured_then_everything_is_delivered_in_order(store_url, fake_slack):
    with session_scope(store_url) as session:
        _raise(session, "a", "First")
        _raise(session, "b", "Second")
    fake_slack.rate_limit(retry_after=7)

    limited = deliver_pending(store_url, settings=bot(fake_slack), now=T0)

    assert (limited.delivered, limited.failed, limited.pending) == (0, 1, 2)
    first, second = _rows(store_url)
    assert (first.attempts, first.next_attempt_at) == (1, T0 + timedelta(seconds=7))
    assert first.last_error == "rate limited by Slack (HTTP 429)"
    assert (second.attempts, second.next_attempt_at) == (0, T0 + timedelta(seconds=7))
    assert deliver_pending(store_url, settings=bot(fake_slack), now=T0 + timedelta(seconds=6)).delivered == 0
    assert len(fake_slack.requests) == 1

    done = deliver_pending(store_url, settings=bot(fake_slack), now=T0 + timedelta(seconds=7))

    assert (done.delivered, done.failed, done.pending) == (2, 0, 0)
    assert _titles(fake_slack) == ["First", "Second"]
    assert _rows(store_url)[0].last_error is None


@pytest.mark.parametrize("outage", ["down", 500, 503])
def test_slack_outage_keeps_messages_with_backoff_and_delivers_all_in_order_later(store_url, fake_slack, outage):
    with session_scope(store_url) as session:
        _raise(session, "a", "A fired")
        _raise(session, "b", "B fired")
        _followup(session, "a", "A recovered")
        outbox.enqueue(session, model_name="loan-default", kind="promote", title="v8 promoted", now=T0)
        _followup(session, "b", "B not recovered")
    settings = bot(fake_slack)

    def fail_once():
        if outage == "down":
            fake_slack.down()
        else:
            fake_slack.fail(outage)

    fail_once()
    first = deliver_pending(store_url, settings=settings, now=T0)
    assert (first.delivered, first.failed, first.pending) == (0, 1, 5)
    rows = _rows(store_url)
    assert [r.attempts for r in rows] == [1, 0, 0, 0, 0]
    assert all(r.next_attempt_at == T0 + timedelta(seconds=10) for r in rows)
    expected_error = "cannot reach Slack" if outage == "down" else f"(HTTP {outage})"
    assert expected_error in rows[0].last_error

    if outage != "down":
        fail_once()
    second = deliver_pending(store_url, settings=settings, now=T0 + timedelta(seconds=10))
    assert (second.delivered, second.failed) == (0, 1)
    rows = _rows(store_url)
    assert rows[0].attempts == 2
    assert all(r.next_attempt_at == T0 + timedelta(seconds=30) for r in rows)  # 10 s + 20 s

    fake_slack.up()
    back = deliver_pending(store_url, settings=settings, now=T0 + timedelta(seconds=30))

    assert (back.delivered, back.failed, back.pending) == (5, 0, 0)
    assert _titles(fake_slack) == ["A fired", "B fired", "A recovered", "v8 promoted", "B not recovered"]
    posted = fake_slack.posted()
    assert posted[2]["thread_ts"] == _alert(store_url, "a").slack_thread_ts == posted_ts(fake_slack, 0)
    assert posted[4]["thread_ts"] == _alert(store_url, "b").slack_thread_ts == posted_ts(fake_slack, 1)
    assert "thread_ts" not in posted[3]


def posted_ts(fake, index):
    """The ts the fake gave the ``index``-th accepted message (they count up from 1)."""
    return f"{1_700_000_000 + index + 1}.000100"


def test_refused_blocks_are_sent_again_as_plain_text(store_url, fake_slack):
    with session_scope(store_url) as session:
        _raise(session, "a", "Rolled back v7")
    fake_slack.reject_blocks = True

    report = deliver_pending(store_url, settings=bot(fake_slack), now=T0)

    assert (report.delivered, report.failed) == (1, 0)
    [refused, accepted] = fake_slack.requests
    assert not refused.accepted and "blocks" in refused.body
    assert "blocks" not in accepted.body
    assert accepted.body["text"].splitlines()[1:3] == ["from version: 7", "to version: 5"]


def test_webhook_mode_posts_everything_without_threads(store_url, fake_slack):
    settings = Settings(slack_bot_token=None, slack_webhook_url=fake_slack.webhook_url)
    with session_scope(store_url) as session:
        _raise(session, "a", "Rolled back v7")
        _followup(session, "a", "Recovered")
        resolve_alert(session, key="a", facts={}, now=T0)

    report = deliver_pending(store_url, settings=settings, now=T0)

    assert (report.delivered, report.pending) == (3, 0)
    assert {r.path for r in fake_slack.requests} == {"/services/T0FAKE/B0FAKE/webhooksecret"}
    assert _titles(fake_slack) == ["Rolled back v7", "Recovered", "Resolved: Rolled back v7"]
    assert all("thread_ts" not in body for body in fake_slack.posted())
    assert _alert(store_url, "a").slack_thread_ts is None


def test_slack_off_sends_nothing_and_keeps_every_message(store_url, fake_slack):
    with session_scope(store_url) as session:
        _raise(session, "a", "Rolled back v7")
        _followup(session, "a", "Recovered")

    report = deliver_pending(store_url, settings=Settings(slack_bot_token=None, slack_webhook_url=None), now=T0)

    assert (report.delivered, report.failed, report.pending, report.slack_enabled) == (0, 0, 2, False)
    assert "Slack is off" in str(report) and "2 messages wait" in str(report)
    assert [(r.attempts, r.delivered_at, r.next_attempt_at) for r in _rows(store_url)] == [(0, None, T0)] * 2


def test_two_deliverers_at_once_send_each_message_exactly_once_and_in_thread_order(store_url, fake_slack):
    expected = []
    with session_scope(store_url) as session:
        for alert in "abcd":
            _raise(session, alert, f"{alert} fired")
            expected.append(f"{alert} fired")
        for step in range(3):
            for alert in "abcd":
                _followup(session, alert, f"{alert} step {step}")
                expected.append(f"{alert} step {step}")
    fake_slack.delay_seconds = 0.01  # both deliverers are mid-batch at the same time
    settings = bot(fake_slack)
    barrier = threading.Barrier(2)
    errors = []

    def deliverer():
        try:
            barrier.wait()
            for _ in range(40):
                if deliver_pending(store_url, settings=settings, limit=3).pending == 0:
                    return
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=deliverer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    titles = _titles(fake_slack)
    assert sorted(titles) == sorted(expected)  # all of them, none twice
    posted = fake_slack.posted()
    for alert in "abcd":
        own = [i for i, title in enumerate(titles) if title.startswith(f"{alert} ")]
        assert [titles[i] for i in own] == [f"{alert} fired"] + [f"{alert} step {s}" for s in range(3)]
        thread_ts = _alert(store_url, alert).slack_thread_ts
        assert thread_ts == posted_ts(fake_slack, own[0])
        assert [posted[i]["thread_ts"] for i in own[1:]] == [thread_ts] * 3


DELIVERER = """
import sys, time
from datetime import timedelta
from monitoring.alerts.delivery import deliver_pending
from monitoring.settings import Settings

url, token, base_url = sys.argv[1:4]
settings = Settings(slack_bot_token=token, slack_base_url=base_url, slack_channel="#oncall")
print("ready", flush=True)
sys.stdin.readline()  # both start together
deadline = time.monotonic() + 60
while deliver_pending(url, settings=settings, lease=timedelta(seconds=2)).pending:
    assert time.monotonic() < deadline
    time.sleep(0.05)
"""


def test_two_deliverer_processes_never_resend_a_row_another_is_still_sending(store_url, fake_slack):
    """A slow Slack: a batch takes longer than its lease, yet no row is taken over and sent twice."""
    with session_scope(store_url) as session:
        for i in range(24):
            outbox.enqueue(session, model_name="loan-default", kind="info", title=f"message {i}")
    fake_slack.delay_seconds = 0.25  # 24 sends take 6 s; the lease is 2 s
    processes = [subprocess.Popen([sys.executable, "-c", DELIVERER, store_url, fake_slack.token,
                                   fake_slack.base_url], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
    try:
        for process in processes:
            assert process.stdout.readline() == "ready\n", process.stderr.read()
        for process in processes:
            process.stdin.write("go\n")
            process.stdin.flush()
        results = [process.communicate(timeout=120) for process in processes]
    finally:
        for process in processes:
            process.kill()
    assert [p.returncode for p in processes] == [0, 0], results
    assert sorted(_titles(fake_slack)) == sorted(f"message {i}" for i in range(24))  # each once
    assert all(row.delivered_at is not None for row in _rows(store_url))


def test_backoff_doubles_and_is_capped():
    assert [backoff_seconds(n) for n in range(1, 9)] == [10, 20, 40, 80, 160, 320, 600, 600]


def test_limit_must_be_positive(store_url):
    with pytest.raises(ValueError, match="limit"):
        deliver_pending(store_url, settings=Settings(slack_bot_token="x"), limit=0)


def test_an_alert_firing_again_opens_a_new_thread_after_the_old_one_is_closed(store_url, fake_slack):
    settings = bot(fake_slack)
    with session_scope(store_url) as session:
        _raise(session, "a", "Degraded")
        resolve_alert(session, key="a", facts={}, now=T0)
        _raise(session, "a", "Degraded again", now=T0 + timedelta(minutes=5))
        _followup(session, "a", "Rolled back", now=T0 + timedelta(minutes=5))

    assert deliver_pending(store_url, settings=settings, now=T0 + timedelta(minutes=5)).delivered == 4

    first, resolved, again, followup = fake_slack.posted()
    assert "thread_ts" not in first and "thread_ts" not in again
    assert resolved["thread_ts"] == posted_ts(fake_slack, 0)
    assert followup["thread_ts"] == posted_ts(fake_slack, 2) == _alert(store_url, "a").slack_thread_ts

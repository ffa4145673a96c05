"""The watched watchdog: a beat per run in the real stores, the stale rule, the watchdog_stalled
alert raised and resolved (once each), and ``vigil watchdog-health`` as a health check."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from monitoring.store.engine import session_scope, utcnow
from monitoring.store.heartbeats import Beat, newest_beat, record_beat
from monitoring.store.tables import Alert, OutboxMessage, WatchdogHeartbeat
from monitoring.watchdog import heartbeat
from monitoring.watchdog.evaluation import evaluate_and_act
from tests.monitoring.watchdog.conftest import World
from tests.runtimes import runtime_for

NOON = datetime(2026, 12, 1, 12, tzinfo=UTC)


def _beat(seconds_ago: float) -> Beat:
    at = NOON - timedelta(seconds=seconds_ago)
    return Beat("host:1", "host", 1, at, at, 1, 0, 0)


@pytest.mark.parametrize(("beat", "stale", "seconds"), [
    (None, True, math.inf),  # no watchdog ever ran: nothing watches
    (_beat(0), False, 0.0),
    (_beat(60), False, 60.0),
    (_beat(60.5), True, 60.5),
    (_beat(-3), False, 0.0),  # a watchdog's clock slightly ahead is not "negative seconds"
])
def test_the_stale_rule(beat, stale, seconds):
    found = heartbeat.freshness(beat, NOON, 60)
    assert (found.stale, found.seconds_since) == (stale, seconds)
    assert ("stalled" in found.describe() or "no watchdog" in found.describe()) is stale


def test_each_process_keeps_one_row_and_long_gone_ones_are_forgotten(store_url: str):
    with session_scope(store_url) as session:
        record_beat(session, host="a", pid=1, now=NOON - timedelta(days=2), evaluated=1, skipped=0, failed=0)
        record_beat(session, host="b", pid=7, now=NOON - timedelta(minutes=1), evaluated=2, skipped=0, failed=0)
    with session_scope(store_url) as session:
        record_beat(session, host="b", pid=7, now=NOON, evaluated=1, skipped=1, failed=0)
    with session_scope(store_url) as session:
        rows = session.scalars(select(WatchdogHeartbeat)).all()
    assert [(r.watcher, r.started_at, r.beat_at, r.evaluated, r.skipped) for r in rows] == [
        ("b:7", NOON - timedelta(minutes=1), NOON, 1, 1)]  # a:1, gone for two days, was deleted
    assert newest_beat(store_url, host="b").watcher == "b:7"
    assert newest_beat(store_url, host="a") is None


def test_every_run_beats_even_with_nothing_to_watch(sqlite_world: World):
    world = sqlite_world
    before = utcnow()
    assert evaluate_and_act(runtime_for(world.url, world.registry, world.settings)) == []
    found = heartbeat.read_freshness(world.url, 60, host=heartbeat.this_host())
    assert found.beat.watcher == f"{heartbeat.this_host()}:{os.getpid()}"
    assert found.beat.beat_at >= before and not found.stale
    assert (found.beat.evaluated, found.beat.skipped, found.beat.failed) == (0, 0, 0)


def _stalled_alert(url: str) -> tuple[Alert | None, list[str]]:
    with session_scope(url) as session:
        alert = session.scalars(select(Alert).where(Alert.alert_key == heartbeat.ALERT_KEY)).one_or_none()
        kinds = list(session.scalars(select(OutboxMessage.kind).order_by(OutboxMessage.id)))
    return alert, kinds


def test_stalled_is_raised_once_and_resolved_by_the_next_beat(store_url: str):
    found = heartbeat.check_and_alert(store_url, 30)  # no watchdog ever ran
    assert found.stale and found.beat is None
    alert, kinds = _stalled_alert(store_url)
    assert (alert.state, alert.title, alert.model_name) == ("firing", "No watchdog is running", "(all models)")
    heartbeat.check_and_alert(store_url, 30)
    assert _stalled_alert(store_url)[1] == kinds == ["firing"]  # a re-run changes nothing

    heartbeat.beat(store_url, evaluated=1, skipped=0, failed=0)  # the watchdog runs again
    alert, kinds = _stalled_alert(store_url)
    assert alert.state == "resolved" and kinds == ["firing", "resolved"]
    assert not heartbeat.check_and_alert(store_url, 30).stale
    assert _stalled_alert(store_url)[1] == ["firing", "resolved"]

    with session_scope(store_url) as session:  # the watchdog's last run was two minutes ago
        session.execute(WatchdogHeartbeat.__table__.update().values(beat_at=utcnow() - timedelta(minutes=2)))
    assert heartbeat.check_and_alert(store_url, 30).stale
    alert, kinds = _stalled_alert(store_url)
    assert (alert.state, alert.title) == ("firing", "The watchdog is stalled") and kinds[-1] == "firing"
    assert "ended 120 s ago" in alert.details["text"]


@pytest.mark.slow
def test_vigil_watchdog_health_exits_1_when_stale_and_0_when_fresh(settings, tmp_path: Path):
    env = {**os.environ, "VIGIL_DATABASE_URL": settings.database_url,
           "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri, "VIGIL_WATCHDOG_STALE_SECONDS": "30"}

    def health(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", "from cli.main import main; main()", "watchdog-health",
                               *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
                              check=False)

    never = health()
    assert never.returncode == 1 and "unhealthy: no watchdog has run yet" in never.stderr
    with session_scope(settings.database_url) as session:
        record_beat(session, host=heartbeat.this_host(), pid=99, now=utcnow() - timedelta(seconds=40),
                    evaluated=1, skipped=0, failed=0)
        record_beat(session, host="elsewhere", pid=1, now=utcnow(), evaluated=1, skipped=0, failed=0)
    stale = health()
    assert stale.returncode == 1 and "over 30 s: the watchdog is stalled" in stale.stderr
    assert health("--any-host").returncode == 0  # another host's watchdog runs
    assert health("--stale-seconds", "120").returncode == 0
    with session_scope(settings.database_url) as session:
        assert session.scalar(select(func.count()).select_from(WatchdogHeartbeat)) == 2
    down = subprocess.run(
        [sys.executable, "-c", "from cli.main import main; main()", "watchdog-health"], cwd=tmp_path,
        env={**env, "VIGIL_DATABASE_URL": "postgresql+psycopg2://vigil:pw@127.0.0.1:1/none"},
        capture_output=True, text=True, timeout=120, check=False)
    assert down.returncode == 1 and "cannot read the watchdog's heartbeat" in down.stderr
    assert "pw" not in down.stderr

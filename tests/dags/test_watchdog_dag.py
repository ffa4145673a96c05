"""The Airflow-only deployment: the ``vigil_watchdog`` DAG rolls a bad version back and tells Slack.

Real Airflow (``dag.test()``), Vigil's store on the real PostgreSQL, a real MLflow store and the
fake Slack over real HTTP. Racing it, two ``vigil watch`` processes on the same bad version: one
rollback, and each outbox message reaches Slack exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from monitoring.registry.mlflow_registry import Registry
from monitoring.store import outbox
from monitoring.store.engine import session_scope, utcnow
from monitoring.store.tables import OutboxMessage, RegistryEvent
from tests.dags.test_dags_run import WATCHDOG_OK, _run, vigil  # noqa: F401 - the `vigil` fixture
from tests.monitoring.watchdog.conftest import World, trained  # noqa: F401 - the `trained` fixture

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

VIGIL = [sys.executable, "-c", "from cli.main import main; main()"]


@pytest.fixture
def slack_on(vigil, fake_slack, monkeypatch):  # noqa: F811 - `vigil` is the imported fixture
    """The DAG's settings (read from the environment) with Slack pointed at the fake Slack."""
    from monitoring.settings import get_settings, reset_settings

    monkeypatch.setenv("VIGIL_SLACK_BOT_TOKEN", fake_slack.token)
    monkeypatch.setenv("VIGIL_SLACK_BASE_URL", fake_slack.base_url)
    reset_settings()
    return get_settings()


@pytest.fixture
def bad_champion(slack_on, trained, model_name):  # noqa: F811 - `trained` is the imported fixture
    """A healthy version replaced two minutes ago by a bad one whose labelled traffic shows it."""
    world = World(slack_on.database_url, slack_on, Registry(slack_on), trained, model_name)
    good = world.add("good", health="healthy")
    bad = world.add("bad")
    world.backdate_alias_moves(timedelta(minutes=2))  # on the real clock: promoted two minutes ago
    world.serve(bad, 200, seed=40, start=utcnow() - timedelta(seconds=100))
    return world, good, bad


def _now_minute() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)


def _outbox(url: str) -> list[OutboxMessage]:
    with session_scope(url) as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def _auto_rollbacks(url: str, model_name: str) -> int:
    with session_scope(url) as session:
        return len(session.scalars(select(RegistryEvent).where(
            RegistryEvent.model_name == model_name, RegistryEvent.kind == "auto_rollback")).all())


def test_the_dag_rolls_back_a_bad_version_and_slack_hears_of_it(bad_champion, fake_slack):
    world, good, bad = bad_champion

    assert _run("vigil_watchdog", _now_minute()) == ("success", WATCHDOG_OK)

    assert world.champion() == good
    texts = [m["text"] for m in fake_slack.posted()]
    assert any(f"rolled back automatically to version {good}" in t for t in texts), texts
    assert any(f"version {bad} degraded" in t for t in texts), texts
    rows = _outbox(world.url)
    assert rows and all(m.delivered_at is not None for m in rows)  # nothing left waiting
    assert len(fake_slack.posted()) == len(rows)


def _queue(url: str, count: int) -> None:
    """``count`` messages already waiting (Slack was down): the deliverers have plenty to race over."""
    with session_scope(url) as session:
        for i in range(count):
            outbox.enqueue(session, model_name="queued", kind="info", title=f"queued message {i}")


def _wait_all_delivered(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(m.delivered_at is None for m in _outbox(url)):
        assert time.monotonic() < deadline, "the outbox was not delivered in time"
        time.sleep(0.5)


def test_two_watch_processes_and_the_dag_racing_make_one_rollback_and_send_each_message_once(
        bad_champion, fake_slack, tmp_path: Path):
    world, good, _ = bad_champion
    _queue(world.url, 300)
    fake_slack.delay_seconds = 0.03  # each send takes a while: the deliverers overlap
    watchers = [subprocess.Popen([*VIGIL, "watch", "--interval", "0.2"], env={**os.environ},
                                 cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 text=True)
                for _ in range(2)]
    try:
        for watcher in watchers:  # both watching before the DAG runs
            while "watching every model" not in (line := watcher.stderr.readline()):
                assert line, "vigil watch ended before it started watching"
        assert _run("vigil_watchdog", _now_minute())[0] == "success"
        _wait_all_delivered(world.url, timeout=120)
    finally:
        for watcher in watchers:
            watcher.send_signal(signal.SIGINT)
        errors = [watcher.communicate(timeout=60)[1] for watcher in watchers]
    assert [w.returncode for w in watchers] == [0, 0], errors
    assert all("Traceback" not in e for e in errors), errors

    assert world.champion() == good
    assert _auto_rollbacks(world.url, world.name) == 1
    rows = _outbox(world.url)
    posted = Counter(m["text"] for m in fake_slack.posted())
    assert [text for text, times in posted.items() if times > 1] == []  # none twice
    assert sum(posted.values()) == len(rows) >= 300  # and every row once
    assert any(f"rolled back automatically to version {good}" in text for text in posted)

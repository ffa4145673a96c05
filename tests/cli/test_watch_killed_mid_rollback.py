"""``vigil watch`` killed with SIGKILL in the middle of a rollback, then started again: afterwards
MLflow's alias and Vigil's history agree, and the difference was announced once.

Real processes on the real PostgreSQL and a real MLflow store. The kill lands at one precise
point: after the watchdog moved ``@champion`` in MLflow and before its transaction committed.
The test holds, uncommitted, an alert row with the key the rollback's alert will use; the
watchdog's insert of that key waits for the test's transaction (a unique index wait), so the
process stands still right after the alias move. It is killed there; its transaction never
commits. The restarted watchdog finds MLflow saying the good version and the history the bad one,
and records the difference (it never moves the alias back, never guesses).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert, select

from monitoring.registry.mlflow_registry import Registry
from monitoring.store.engine import session_scope, utcnow
from monitoring.store.tables import Alert, RegistryEvent
from monitoring.watchdog.actions import alert_key
from tests.monitoring.watchdog.conftest import World, trained  # noqa: F401 - the `trained` fixture

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

VIGIL = [sys.executable, "-c", "from cli.main import main; main()"]


@pytest.fixture
def watched(postgres_url, mlflow_store, model_name, trained, fake_slack, tmp_path, monkeypatch):  # noqa: F811
    """A healthy version replaced two minutes ago by a bad one whose labelled traffic shows it; the
    environment the `vigil watch` processes read (Slack pointed at the fake Slack)."""
    from monitoring.settings import get_settings, reset_settings

    for key, value in {"VIGIL_DATABASE_URL": postgres_url, "MLFLOW_TRACKING_URI": mlflow_store,
                       "VIGIL_VAR_DIR": str(tmp_path / "var"), "VIGIL_MODEL_NAME": model_name,
                       "VIGIL_MLFLOW_ARTIFACT_ROOT": str(Path(mlflow_store[len("sqlite:///"):]).parent / "artifacts"),
                       "VIGIL_SLACK_BOT_TOKEN": fake_slack.token,
                       "VIGIL_SLACK_BASE_URL": fake_slack.base_url}.items():
        monkeypatch.setenv(key, value)
    reset_settings()
    settings = get_settings()
    world = World(settings.database_url, settings, Registry(settings), trained, model_name)
    good = world.add("good", health="healthy")
    bad = world.add("bad")
    world.backdate_alias_moves(timedelta(minutes=2))
    world.serve(bad, 200, seed=40, start=utcnow() - timedelta(seconds=100))
    yield world, good, bad
    reset_settings()


def _watch(tmp_path: Path, log: str) -> subprocess.Popen:
    return subprocess.Popen([*VIGIL, "watch", "--interval", "0.5"], env={**os.environ}, cwd=tmp_path,
                            stdout=(tmp_path / log).open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def _until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


def _alias_events(url: str, name: str) -> list[RegistryEvent]:
    with session_scope(url) as session:
        return list(session.scalars(select(RegistryEvent).where(
            RegistryEvent.model_name == name, RegistryEvent.alias == "champion").order_by(RegistryEvent.id)))


def test_a_watchdog_killed_between_the_alias_move_and_its_commit_is_reconciled_after_restart(
        watched, fake_slack, tmp_path):
    world, good, bad = watched
    blocker = create_engine(world.url)
    held = blocker.connect()
    transaction = held.begin()
    now = utcnow()
    held.execute(insert(Alert).values(  # uncommitted: the rollback's own alert insert waits on it
        alert_key=alert_key(world.name, bad, "degraded"), model_name=world.name, kind="rollback",
        severity="warning", state="firing", title="held by the test", details={}, opened_at=now,
        updated_at=now, last_notified_at=now))
    first = _watch(tmp_path, "first.log")
    try:
        _until(lambda: world.champion() == good, 180, "the watchdog to move @champion back")
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
        transaction.rollback()
        held.close()
        blocker.dispose()

    # the kill landed mid-rollback: MLflow says the good version, the history still the bad one
    assert world.champion() == good
    assert _alias_events(world.url, world.name)[-1].to_version == bad
    assert [e.kind for e in _alias_events(world.url, world.name)].count("auto_rollback") == 0
    assert fake_slack.posted() == []  # nothing of the lost transaction was announced

    second = _watch(tmp_path, "second.log")
    try:
        _until(lambda: _alias_events(world.url, world.name)[-1].to_version == good, 120,
               "the restarted watchdog to reconcile the history with MLflow")
        _until(lambda: any(f"moved outside Vigil to version {good}" in m["text"]
                           for m in fake_slack.posted()), 60, "the difference to reach Slack")
        time.sleep(2)  # a few more cycles: nothing more is recorded or sent about it
    finally:
        os.killpg(second.pid, signal.SIGINT)
        second.wait(timeout=60)
    assert second.returncode == 0, (tmp_path / "second.log").read_text()

    events = _alias_events(world.url, world.name)
    assert world.champion() == good and events[-1].to_version == good  # they agree
    difference = events[-1]
    assert (difference.kind, difference.from_version, difference.actor) == ("outside_move", bad,
                                                                            "mlflow (outside Vigil)")
    assert [e.kind for e in events].count("outside_move") == 1
    announced = [m["text"] for m in fake_slack.posted() if "moved outside Vigil" in m["text"]]
    assert len(announced) == 1, announced

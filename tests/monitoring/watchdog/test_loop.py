"""Running the watchdog like an operator does: one run with Slack delivery, the CLI, the loop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from monitoring.registry.mlflow_registry import Registry
from monitoring.store.engine import session_scope, utcnow
from monitoring.store.tables import AccessLog, ModelControl
from monitoring.watchdog.loop import run_loop, run_once
from tests.monitoring.watchdog.conftest import World
from tests.runtimes import runtime_for

VIGIL = [sys.executable, "-c", "from cli.main import main; main()"]


def test_one_run_rolls_back_and_tells_slack_then_reports_recovery_in_the_thread(sqlite_world: World, fake_slack):
    world = sqlite_world
    world.settings = world.settings.model_copy(update={
        "slack_bot_token": SecretStr(fake_slack.token), "slack_base_url": fake_slack.base_url})
    good = world.add("good", health="healthy")
    bad = world.add("bad")
    world.backdate_alias_moves(timedelta(minutes=2))  # on the real clock: promoted two minutes ago
    world.serve(bad, 200, seed=40, start=utcnow() - timedelta(seconds=100))

    lines = run_once(runtime_for(world.settings.database_url, world.registry, world.settings), model_name=world.name)

    assert world.champion() == good
    assert any(f"rolled back to v{good}" in line for line in lines)
    texts = [m["text"] for m in fake_slack.posted()]
    assert any(f"rolled back automatically to version {good}" in t for t in texts)
    firing = next(m for m in fake_slack.posted() if f"version {bad} degraded" in m["text"])
    assert "accuracy" in str(firing["blocks"])  # the numbers that tripped are in the message

    world.backdate_alias_moves(timedelta(minutes=1))  # the rollback, too, happened a minute ago
    world.serve(good, 400, seed=41, start=utcnow() - timedelta(seconds=55))  # good answers since

    lines = run_once(runtime_for(world.settings.database_url, world.registry, world.settings), model_name=world.name)

    assert any("bake: recovered" in line for line in lines)
    alert = next(iter(world.alerts().values()))
    assert alert.state == "resolved" and alert.slack_thread_ts
    replies = [m for m in fake_slack.posted() if m.get("thread_ts") == alert.slack_thread_ts]
    assert [r["text"].split(" [")[1].split("]")[0] for r in replies] == ["INFO", "RESOLVED"]
    assert f"recovered on version {good}" in replies[0]["text"]
    assert "accuracy since rollback" in str(replies[0]["blocks"])


@pytest.mark.slow
def test_cli_freeze_and_release_are_audited(settings, model_name, tmp_path: Path):
    env = {**os.environ, "VIGIL_DATABASE_URL": settings.database_url,
           "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri}

    def vigil(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*VIGIL, *args], check=False, env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=120)

    frozen = vigil("freeze", "--model-name", model_name, "--reason", "incident 42")
    assert frozen.returncode == 0, frozen.stderr
    assert f"{model_name}: automatic rollbacks frozen" in frozen.stdout
    blank = vigil("release", "--model-name", model_name, "--reason", " ")
    assert blank.returncode == 2 and "a reason is required" in blank.stderr
    released = vigil("release", "--model-name", model_name, "--reason", "incident over")
    assert released.returncode == 0, released.stderr
    with session_scope(settings.database_url) as session:
        assert not session.get(ModelControl, model_name).frozen
        rows = session.execute(select(AccessLog.action, AccessLog.detail, AccessLog.channel)
                               .where(AccessLog.model_name == model_name).order_by(AccessLog.id)).all()
    assert [tuple(r) for r in rows] == [("freeze", "incident 42", "cli"), ("release", "incident over", "cli")]

    once = vigil("watchdog", "--model-name", "no-such-model")
    assert once.returncode == 0, once.stderr
    assert "nothing to watch" in once.stdout and "Slack is off" in once.stdout


@pytest.mark.slow
def test_vigil_watch_stops_cleanly_on_ctrl_c(settings, tmp_path: Path):
    env = {**os.environ, "VIGIL_DATABASE_URL": settings.database_url,
           "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri}
    process = subprocess.Popen([*VIGIL, "watch", "--interval", "0.2"], env=env, cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while "watching every model" not in (line := process.stderr.readline()):
            assert line, "vigil watch ended before it started watching"
        time.sleep(1.5)  # a few runs
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "Traceback" not in err
    runs = int(err.split("stopped after ")[1].split()[0])
    assert runs >= 2


def test_run_loop_counts_runs_and_survives_a_failing_store(settings):
    broken = settings.model_copy(update={"database_url": "postgresql+psycopg2://nobody@127.0.0.1:1/none"})
    said: list[str] = []
    assert run_loop(runtime_for(broken.database_url, Registry(broken), broken), interval=0.01, max_runs=2, say=said.append) == 2
    assert said == []  # the failure is logged, the loop goes on
    assert run_loop(runtime_for(settings.database_url, Registry(settings), settings), interval=0.01, max_runs=3, say=said.append) == 3

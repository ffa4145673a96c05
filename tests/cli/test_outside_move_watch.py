"""End to end, as a team would live it: a model registered by its own code, adopted with
`vigil adopt`, served by `vigil serve`, watched by `vigil watch --interval 2`, traffic and labels
from `vigil simulate`; then a clearly worse version is put on @champion through MLflow directly.

Everything is a real process on real stores (MLflow on SQLite in a temp folder; Vigil's store on
SQLite and PostgreSQL); Slack is the fake Slack server over real HTTP.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from monitoring.store.engine import session_scope
from monitoring.store.tables import RegistryEvent, VersionHealth
from tests.api.conftest import make_settings, vigil_serve
from tests.team_models import register_team_version

VIGIL = [sys.executable, "-c", "from cli.main import main; main()"]


def _environment(settings, fake_slack) -> dict[str, str]:
    return {**os.environ, "VIGIL_DATABASE_URL": settings.database_url,
            "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri, "VIGIL_MODEL_NAME": settings.model_name,
            "VIGIL_VAR_DIR": str(settings.var_dir), "VIGIL_MLFLOW_ARTIFACT_ROOT": settings.mlflow_artifact_root,
            "VIGIL_SLACK_BOT_TOKEN": fake_slack.token, "VIGIL_SLACK_BASE_URL": fake_slack.base_url,
            "VIGIL_ALIAS_POLL_SECONDS": "0.5", "VIGIL_COOLDOWN_MINUTES": "0"}


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen([*VIGIL, *args], env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _wait(condition: Callable[[], object], timeout: float, what: str, logs: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"gave up waiting for {what} after {timeout:.0f}s:\n{logs.read_text()[-4000:]}")


def _events(url: str, name: str) -> list[tuple[str, int | None, int | None, str]]:
    with session_scope(url) as session:
        return [(e.kind, e.from_version, e.to_version, e.actor) for e in session.scalars(
            select(RegistryEvent).where(RegistryEvent.model_name == name).order_by(RegistryEvent.id))]


def _health(url: str, name: str, version: int) -> str | None:
    with session_scope(url) as session:
        row = session.get(VersionHealth, (name, version))
        return row.state if row else None


def _vigil(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*VIGIL, *args], env=env, capture_output=True, text=True, timeout=240, check=False)


@pytest.mark.slow
def test_a_bad_version_put_on_champion_in_mlflow_is_rolled_back_by_vigil_watch(
        store_url, mlflow_store, tmp_path, fake_slack):
    settings = make_settings(store_url, mlflow_store, tmp_path / "var")
    name, client = settings.model_name, None
    env = _environment(settings, fake_slack)
    good = register_team_version(mlflow_store, name, dataset_file=tmp_path / "loans.parquet")
    adopted = _vigil(env, "adopt", name)
    assert adopted.returncode == 0, adopted.stderr
    logs = tmp_path / "processes.log"
    with vigil_serve(settings, tmp_path / "api.log", VIGIL_ALIAS_POLL_SECONDS="0.5") as (_, api):
        watcher = _start(["watch", "--interval", "2"], env, logs)
        traffic = _start(["simulate", "--rate", "20", "--label-delay", "1", "--duration", "600",
                          "--api-url", api], env, logs)
        try:
            _wait(lambda: _health(store_url, name, good) == "healthy", 240, f"v{good} to earn health", logs)
            import mlflow

            client = mlflow.MlflowClient(tracking_uri=mlflow_store)
            bad = register_team_version(mlflow_store, name, bad=True, seed=7, champion=False)
            client.set_registered_model_alias(name, "champion", str(bad))  # outside Vigil
            moved = time.monotonic()
            _wait(lambda: ("auto_rollback", bad, good, "watchdog") in _events(store_url, name), 180,
                  "the automatic rollback", logs)
            recovered = time.monotonic() - moved
        finally:
            _stop(traffic)
            _stop(watcher)

    assert int(client.get_model_version_by_alias(name, "champion").version) == good
    assert _events(store_url, name) == [
        ("adopt", None, good, _events(store_url, name)[0][3]),
        ("outside_move", good, bad, "mlflow (outside Vigil)"),
        ("auto_rollback", bad, good, "watchdog"),
    ]
    assert _health(store_url, name, bad) == "bad"
    texts = [m["text"] for m in fake_slack.posted()]
    assert any("adopted by Vigil" in t for t in texts)
    assert sum(f"@champion moved outside Vigil to version {bad}" in t for t in texts) == 1
    assert any(f"version {bad} degraded, rolled back to version {good}" in t for t in texts)
    assert recovered < 120, f"recovered after {recovered:.0f}s"


@pytest.mark.slow
def test_a_difference_found_at_start_is_recorded_and_announced_once(sqlite_url, mlflow_store, tmp_path,
                                                                     fake_slack):
    settings = make_settings(sqlite_url, mlflow_store, tmp_path / "var")
    name = settings.model_name
    env = _environment(settings, fake_slack)
    first = register_team_version(mlflow_store, name)
    assert _vigil(env, "adopt", name).returncode == 0
    second = register_team_version(mlflow_store, name, seed=3)  # on @champion while no watchdog ran
    logs = tmp_path / "watch.log"

    watcher = _start(["watch", "--interval", "2"], env, logs)
    try:
        _wait(lambda: any(f"moved outside Vigil to version {second}" in m["text"] for m in fake_slack.posted()),
              120, "the announcement", logs)
        time.sleep(7)  # a few more cycles
    finally:
        _stop(watcher)

    assert [e[:3] for e in _events(sqlite_url, name)] == [("adopt", None, first),
                                                          ("outside_move", first, second)]
    assert sum("moved outside Vigil" in m["text"] for m in fake_slack.posted()) == 1
    assert "recorded as a move outside Vigil" in logs.read_text()

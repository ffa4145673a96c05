"""End to end, as an operator would run a release: a team's model adopted, served by `vigil serve`,
watched by `vigil watch --interval 2`, traffic and labels from `vigil simulate`; a clearly worse
version sent to a canary with `vigil canary start` is aborted by the watchdog with only its share
of the traffic harmed, then a good one is promoted by the judge, although the API and the watchdog
were stopped and started again while its canary ran. Each release has one Slack thread on the fake
Slack (real HTTP), from its start to its verdict.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from monitoring.store.engine import session_scope
from monitoring.store.tables import Alert, Prediction, Release
from tests.api.conftest import make_settings, vigil_serve
from tests.cli.test_outside_move_watch import _environment, _start, _stop, _vigil, _wait
from tests.team_models import register_team_version


def _release(url: str, name: str) -> Release | None:
    with session_scope(url) as session:
        return session.scalars(select(Release).where(Release.model_name == name).order_by(Release.id.desc())).first()


def _ended(url: str, name: str, state: str):
    release = _release(url, name)
    return release if release is not None and release.state == state else None


def _answered(url: str, name: str, version: int, role: str) -> int:
    with session_scope(url) as session:
        return session.scalar(select(func.count()).select_from(Prediction).where(
            Prediction.model_name == name, Prediction.model_version == version, Prediction.role == role))


def _thread(url: str, fake_slack, release: Release) -> list[str]:
    """The texts Slack received for the release: its first message, then the replies in its thread."""
    with session_scope(url) as session:
        thread = session.get(Alert, release.alert_id).slack_thread_ts
    posted = fake_slack.posted()
    first = [m["text"] for m in posted if not m.get("thread_ts")
             and f"canary of version {release.challenger_version} against" in m["text"]]
    return first + [m["text"] for m in posted if thread is not None and m.get("thread_ts") == thread]


def _watch_and_send(env: dict, api: str, logs):
    """`vigil watch` every 2 s and `vigil simulate` at 20 requests/s, labels 1 s later."""
    watcher = _start(["watch", "--interval", "2"], env, logs)
    traffic = _start(["simulate", "--rate", "20", "--label-delay", "1", "--duration", "600",
                      "--api-url", api], env, logs)
    return watcher, traffic


@pytest.mark.slow
def test_a_bad_canary_is_aborted_and_a_good_one_promoted_by_vigil_watch(sqlite_url, mlflow_store, tmp_path,
                                                                         fake_slack):
    settings = make_settings(sqlite_url, mlflow_store, tmp_path / "var")
    name = settings.model_name
    env = {**_environment(settings, fake_slack), "VIGIL_RELEASE_MARGIN": "0.1"}
    champion = register_team_version(mlflow_store, name, dataset_file=tmp_path / "loans.parquet")
    assert _vigil(env, "adopt", name).returncode == 0
    logs = tmp_path / "processes.log"
    with vigil_serve(settings, tmp_path / "api.log", VIGIL_ALIAS_POLL_SECONDS="0.5") as (_, api):
        watcher, traffic = _watch_and_send(env, api, logs)
        try:
            bad = register_team_version(mlflow_store, name, bad=True, seed=7, champion=False)
            started = _vigil(env, "canary", "start", str(bad), "--share", "0.3", "--bake-minutes", "0")
            assert started.returncode == 0, started.stderr
            assert f"canary of version {bad} started" in started.stdout
            aborted = _wait(lambda: _ended(sqlite_url, name, "aborted"), 180, "the bad canary's abort", logs)

            good = register_team_version(mlflow_store, name, seed=3, champion=False)
            # a minute of bake time: however slow a loaded machine is here, the judge cannot
            # promote before the restart below (it had done so in 30 s with no bake time)
            assert _vigil(env, "canary", "start", str(good), "--share", "0.5", "--bake-minutes", "1").returncode == 0
            _wait(lambda: _answered(sqlite_url, name, good, "canary") >= 20, 60, "the good canary's answers", logs)
        finally:
            _stop(traffic)
            _stop(watcher)
    # The API and the watchdog stop mid-release and start again: the release goes on.
    running = _release(sqlite_url, name)
    assert running.state == "running" and running.challenger_version == good
    answered_before_restart = _answered(sqlite_url, name, good, "canary")
    with vigil_serve(settings, tmp_path / "api-again.log", VIGIL_ALIAS_POLL_SECONDS="0.5") as (_, api):
        watcher, traffic = _watch_and_send(env, api, logs)
        try:
            promoted = _wait(lambda: _ended(sqlite_url, name, "promoted"), 300, "the good canary's promotion", logs)
            status = _vigil(env, "canary", "status")
        finally:
            _stop(traffic)
            _stop(watcher)

    import mlflow

    client = mlflow.MlflowClient(tracking_uri=mlflow_store)
    assert int(client.get_model_version_by_alias(name, "champion").version) == good
    assert "more errors than the champion" in aborted.verdict_reason
    assert (aborted.ended_by, promoted.ended_by) == ("watchdog", "watchdog")
    assert promoted.id == running.id
    assert _answered(sqlite_url, name, good, "canary") > answered_before_restart
    harmed, served = _answered(sqlite_url, name, bad, "canary"), _answered(sqlite_url, name, champion, "champion")
    assert 0 < harmed < served  # only the canary's share saw the bad version
    assert f"release {promoted.id}: canary of v{good} against v{champion} at 50%, promoted" in status.stdout
    bad_thread = _thread(sqlite_url, fake_slack, aborted)
    assert len(bad_thread) == 2 and "aborted" in bad_thread[1], bad_thread
    good_thread = _thread(sqlite_url, fake_slack, promoted)
    assert len(good_thread) == 2 and "promoted" in good_thread[1], good_thread

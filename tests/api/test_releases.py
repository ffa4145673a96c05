"""The API under a running release (a row in ``releases``, the challenger on ``@challenger``):
canary routing by share and caller, shadow scoring logged beside the champion and never returned,
both aliases hot-swapped under load without a failed request, and the release's end followed."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from monitoring.serving.routing import takes_challenger
from monitoring.store.engine import session_scope, utcnow
from monitoring.store.tables import Prediction, Release
from tests.api.conftest import demo_rows, make_settings, running_api, train_version


@pytest.fixture(scope="module")
def released(tmp_path_factory, mlflow_store):
    """A store and a model with version 1 as champion and versions 2 and 3 registered beside it."""
    from monitoring.store.engine import dispose_engines
    from monitoring.store.migrations import upgrade

    root = tmp_path_factory.mktemp("releases")
    settings = make_settings(f"sqlite:///{root / 'vigil.db'}", mlflow_store, root / "var")
    upgrade(settings.database_url)
    train_version(settings, seed=0)
    train_version(settings, seed=1, promote=False)
    train_version(settings, seed=2, promote=False)
    yield settings
    dispose_engines()


def _registry(settings):
    from monitoring.registry.mlflow_registry import Registry

    return Registry(settings)


def _start(settings, mode: str, version: int, share: float) -> int:
    """What the judge's start move does: @challenger on ``version`` and a running release row."""
    _end(settings)
    _registry(settings).set_alias(settings.model_name, "challenger", version)
    now = utcnow()
    with session_scope(settings.database_url) as session:
        release = Release(model_name=settings.model_name, mode=mode, challenger_version=version,
                          champion_version=1, share=share, state="running", started_at=now, started_by="test",
                          bake_until=now + timedelta(hours=1), updated_at=now)
        session.add(release)
        session.flush()
        return release.id


def _end(settings) -> None:
    with session_scope(settings.database_url) as session:
        session.execute(update(Release).where(Release.model_name == settings.model_name,
                                              Release.state == "running").values(state="stopped"))


def _wait_for(check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("timed out")


def _answers_from(client: httpx.Client, version: int, role: str, **headers) -> None:
    row = demo_rows(1)[0]
    _wait_for(lambda: (a := client.post("/predict", json=row, headers=headers).json())["model_version"] == version
              and a["role"] == role)


def _logged(settings, ids: list[str]) -> dict[str, Prediction]:
    def read():
        with session_scope(settings.database_url) as session:
            rows = session.scalars(select(Prediction).where(Prediction.id.in_(ids))).all()
            session.expunge_all()
        return {row.id: row for row in rows} if len(rows) == len(ids) else None
    return _wait_for(read, 30)


def test_a_canary_answers_its_share_says_so_and_is_logged_as_canary(released):
    with running_api(released) as base, httpx.Client(base_url=base, timeout=30) as client:
        _start(released, "canary", 2, 0.25)
        _answers_from(client, 2, "canary")
        rows = demo_rows(50)
        answers = [client.post("/predict", json=rows[i % 50]).json() for i in range(800)]
        sides = Counter((a["role"], a["model_version"]) for a in answers)
        assert set(sides) == {("champion", 1), ("canary", 2)}
        assert 140 <= sides[("canary", 2)] <= 260  # 200 expected, about 5 standard deviations
        batch = client.post("/predict", json=rows[:3]).json()
        assert batch["role"] in ("champion", "canary") and len(batch["predictions"]) == 3
        logged = _logged(released, [a["prediction_id"] for a in answers[:100]])
        for answer in answers[:100]:
            row = logged[answer["prediction_id"]]
            assert (row.role, row.model_version) == (answer["role"], answer["model_version"])
        _end(released)
        _wait_for(lambda: "vigil_challenger_version{" not in client.get("/metrics").text)
        assert {client.post("/predict", json=rows[0]).json()["role"] for _ in range(50)} == {"champion"}


def test_routing_is_sticky_per_caller_header_and_reshuffled_by_a_new_release(released):
    callers = [f"user-{i}" for i in range(120)]
    row = demo_rows(1)[0]
    with running_api(released) as base, httpx.Client(base_url=base, timeout=30) as client:
        def sides() -> dict[str, str]:
            seen: dict[str, set[str]] = {}
            for _ in range(3):
                for caller in callers:
                    answer = client.post("/predict", json=row, headers={"X-Vigil-Caller": caller}).json()
                    seen.setdefault(caller, set()).add(answer["role"])
            assert all(len(roles) == 1 for roles in seen.values()), "a caller changed sides within a release"
            return {caller: roles.pop() for caller, roles in seen.items()}

        first_id = _start(released, "canary", 2, 0.5)
        _wait_for(lambda: _challenger_loaded(client.get("/metrics").text, 2))
        first = sides()
        assert 30 <= sum(side == "canary" for side in first.values()) <= 90
        assert first == {c: "canary" if takes_challenger(first_id, 0.5, c) else "champion" for c in callers}
        second_id = _start(released, "canary", 2, 0.5)
        moved = next(c for c in callers if takes_challenger(second_id, 0.5, c) != takes_challenger(first_id, 0.5, c))
        _answers_from(client, 2 if takes_challenger(second_id, 0.5, moved) else 1,
                      "canary" if takes_challenger(second_id, 0.5, moved) else "champion", **{"X-Vigil-Caller": moved})
        _wait_for(lambda: _challenger_loaded(client.get("/metrics").text, 2))
        second = sides()
        assert second == {c: "canary" if takes_challenger(second_id, 0.5, c) else "champion" for c in callers}
        assert first != second
    _end(released)


def test_a_shadow_is_logged_beside_the_champion_with_its_pair_and_never_returned(released):
    with running_api(released) as base, httpx.Client(base_url=base, timeout=30) as client:
        _start(released, "shadow", 2, 1.0)
        _wait_for(lambda: _challenger_loaded(client.get("/metrics").text, 2))
        rows = demo_rows(40)
        answers = [client.post("/predict", json=rows[i]).json() for i in range(40)]
        batch = client.post("/predict", json=rows[:5]).json()
        assert {(a["role"], a["model_version"]) for a in answers} == {("champion", 1)}
        assert (batch["role"], batch["model_version"]) == ("champion", 1)
        champion_ids = [a["prediction_id"] for a in answers] + [p["prediction_id"] for p in batch["predictions"]]

        def shadows():
            with session_scope(released.database_url) as session:
                found = session.execute(select(Prediction.paired_id, Prediction.model_version, Prediction.role,
                                               Prediction.status, Prediction.latency_ms, Prediction.prediction)
                                        .where(Prediction.paired_id.in_(champion_ids))).all()
            return found if len(found) == len(champion_ids) else None

        found = shadows() or _wait_for(shadows, 30)
        assert {(v, role, status) for _, v, role, status, _, _ in found} == {(2, "shadow", "ok")}
        assert sorted(pid for pid, *_ in found) == sorted(champion_ids)
        assert all(latency >= 0 for *_, latency, _ in found)
        champions = _logged(released, champion_ids)
        assert {(row.role, row.model_version, row.paired_id) for row in champions.values()} == {("champion", 1, None)}
        metrics = client.get("/metrics").text
        assert "vigil_shadow_requests_total 41.0" in metrics and "vigil_shadow_dropped_requests_total 0.0" in metrics
    _end(released)


def _challenger_loaded(metrics: str, version: int) -> bool:
    return any(line.startswith("vigil_challenger_version{") and line.endswith(f" {float(version)}")
               for line in metrics.splitlines())


def test_both_aliases_swap_under_load_without_a_failed_request(released):
    registry = _registry(released)
    with running_api(released) as base:
        release_id = _start(released, "canary", 2, 0.5)
        with httpx.Client(base_url=base, timeout=30) as client:
            _answers_from(client, 2, "canary")
        answers: list[tuple[int, int | None, str | None]] = []
        stop = threading.Event()

        def send(seed: int) -> None:
            rows = demo_rows(30, seed=seed)
            with httpx.Client(base_url=base, timeout=30) as client:
                n = 0
                while not stop.is_set():
                    response = client.post("/predict", json=rows[n % 30])
                    body = response.json() if response.status_code == 200 else {}
                    answers.append((response.status_code, body.get("model_version"), body.get("role")))
                    n += 1

        threads = [threading.Thread(target=send, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(1.0)
            registry.set_alias(released.model_name, "challenger", 3)  # the challenger swaps
            with session_scope(released.database_url) as session:
                session.execute(update(Release).where(Release.id == release_id).values(challenger_version=3))
            _wait_for(lambda: ("canary", 3) in {(r, v) for _, v, r in answers[-40:]})
            registry.set_alias(released.model_name, "champion", 2)  # and the champion
            _wait_for(lambda: ("champion", 2) in {(r, v) for _, v, r in answers[-40:]})
            time.sleep(1.0)
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
            registry.set_alias(released.model_name, "champion", 1)
            _end(released)
    statuses = Counter(status for status, _, _ in answers)
    assert statuses == {200: len(answers)}, statuses
    seen = {(role, version) for _, version, role in answers}
    assert {("champion", 1), ("canary", 2), ("canary", 3), ("champion", 2)} <= seen
    assert seen <= {("champion", 1), ("champion", 2), ("canary", 2), ("canary", 3)}


def test_a_canary_that_fails_answers_500_and_is_logged_as_the_canary_error(
        api_settings, tmp_path):
    from fastapi.testclient import TestClient

    from api.main import create_app
    from tests import model_matrix

    model_matrix.register(api_settings, "python-model", tmp=tmp_path)
    model_matrix.register(api_settings, "raises", tmp=tmp_path, promote=False)
    _start(api_settings, "canary", 2, 1.0)
    good, bad = model_matrix.request_rows(2)
    bad = {**bad, "x1": 99.0}
    with TestClient(create_app(api_settings)) as client:
        _wait_for(lambda: _challenger_loaded(client.get("/metrics").text, 2))
        failed = client.post("/predict", json=bad)
        fine = client.post("/predict", json=good)
    assert failed.status_code == 500 and "version 2 failed" in failed.json()["detail"]
    assert (fine.json()["role"], fine.json()["model_version"]) == ("canary", 2)

    def errors():
        with session_scope(api_settings.database_url) as session:
            return session.execute(select(Prediction.role, Prediction.model_version).where(
                Prediction.model_name == api_settings.model_name, Prediction.status == "error")).all()
    assert _wait_for(errors, 30) == [("canary", 2)]


def test_a_canary_whose_challenger_cannot_be_loaded_is_aborted_with_a_critical_alert(
        api_settings, tmp_path, fake_slack):
    from fastapi.testclient import TestClient

    from api.main import create_app
    from monitoring.alerts.delivery import deliver_pending
    from monitoring.registry.releases import start_release
    from monitoring.runtime import Runtime
    from monitoring.settings import Settings
    from monitoring.store.tables import Alert
    from tests import model_matrix

    model_matrix.register(api_settings, "python-model", tmp=tmp_path)
    unsigned = model_matrix.register(api_settings, "no-signature", tmp=tmp_path, promote=False)
    release = start_release(Runtime(api_settings), model_name=api_settings.model_name, version=unsigned.version,
                            mode="canary", share=0.5, actor="alice", reason="try v2", bake_minutes=0)
    row = model_matrix.request_rows(1)[0]
    with TestClient(create_app(api_settings)) as client:
        def ended() -> Release | None:
            with session_scope(api_settings.database_url) as session:
                found = session.get(Release, release.id)
                return found if found.state != "running" else None
        aborted = _wait_for(ended, 30)
        answers = [client.post("/predict", json=row).json() for _ in range(20)]
    assert (aborted.state, aborted.ended_by) == ("aborted", "api")
    assert f"the API cannot load version {unsigned.version}" in aborted.verdict_reason
    assert "signature" in aborted.verdict_reason
    assert {(a["role"], a["model_version"]) for a in answers} == {("champion", 1)}
    assert _registry(api_settings).alias_version(api_settings.model_name, "challenger") is None
    with session_scope(api_settings.database_url) as session:
        critical = session.scalars(select(Alert).where(Alert.kind == "load_failure")).one()
        assert (critical.state, critical.severity) == ("firing", "critical")
    slack = Settings(slack_bot_token=fake_slack.token, slack_webhook_url=None,
                     slack_base_url=fake_slack.base_url, slack_channel="#oncall")
    deliver_pending(api_settings.database_url, settings=slack)
    texts = [m["text"] for m in fake_slack.posted()]
    assert (f":red_circle: [CRITICAL] {api_settings.model_name}: canary of version {unsigned.version} "
            f"aborted: the API cannot load it") in texts

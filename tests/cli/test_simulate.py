"""`vigil simulate`'s traffic against a real API (in-process, real store and MLflow): it stops
early when told to, still sends the labels that were due, and counts the wrong answers per
version that gave them."""

from __future__ import annotations

from cli.simulate import simulate
from tests.api.conftest import make_settings, train_version


def test_traffic_stops_when_told_and_counts_wrong_answers_by_version(sqlite_url, mlflow_store, tmp_path):
    from fastapi.testclient import TestClient

    from api.main import create_app
    from monitoring.store.migrations import upgrade

    settings = make_settings(sqlite_url, mlflow_store, tmp_path / "var")
    upgrade(settings.database_url)
    version = train_version(settings)
    asked: list[int] = []

    def enough() -> bool:
        asked.append(1)
        return len(asked) >= 3  # the third question, about 3 s in

    with TestClient(create_app(settings)) as client:
        report = simulate("", rate=20, duration=60, label_delay=0.2, client=client, until=enough)
    assert len(asked) == 3
    # about 3 s of 20/s, not the 1,200 of a full minute (a loaded machine's stalls are caught up
    # afterwards, so a few seconds of traffic may come in a burst)
    assert 40 <= report.sent <= 150
    assert report.answered == report.sent and report.versions == {version: report.answered}
    assert report.labels_sent == report.answered  # the labels due when it stopped were sent
    assert set(report.wrong) <= {version}
    assert report.correct + sum(report.wrong.values()) == report.labels_sent
    assert 0 < sum(report.wrong.values()) < report.labels_sent  # a real model: some wrong, not all

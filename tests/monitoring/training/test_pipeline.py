"""The training pipeline's steps: a candidate is registered once per data interval and promoted
only when it beats the champion on the same holdout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitoring.registry.mlflow_registry import Registry
from monitoring.store import history
from monitoring.store.engine import session_scope
from monitoring.training import datasets
from monitoring.training import pipeline as training_pipeline
from monitoring.training.validation import ValidationError
from tests.runtimes import runtime_for

START = datetime(2026, 11, 26, tzinfo=UTC)
END = START + timedelta(days=1)


def _run(url, registry, settings, model_name, start=START, end=END, **ingest_options):
    runtime = runtime_for(url, registry, settings)
    ingested = training_pipeline.ingest(settings, model_name=model_name, interval_start=start, interval_end=end,
                         rows=1500, **ingest_options)
    validated = training_pipeline.validate(runtime, model_name=model_name, ingested=ingested)
    trained = training_pipeline.train(settings, model_name=model_name, validated=validated)
    evaluation = training_pipeline.evaluate(runtime, model_name=model_name, trained=trained)
    registered = training_pipeline.register(runtime, model_name=model_name, interval_start=start,
                             interval_end=end, trained=trained, evaluation=evaluation)
    return evaluation, registered, training_pipeline.promote_if_better(runtime, model_name=model_name,
                                                        registered=registered, evaluation=evaluation)


def _events(url, model_name):
    with session_scope(url) as session:
        return [(e.kind, e.to_version) for e in history.events(session, model_name)]


@pytest.mark.slow
def test_an_interval_registers_once_and_a_worse_candidate_is_not_promoted(settings, model_name, tmp_path):
    registry = Registry(settings)
    url = settings.database_url

    evaluation, registered, promotion = _run(url, registry, settings, model_name)
    assert registered == {"version": 1, "new": True} and promotion["promoted"]
    assert evaluation["champion_version"] is None and evaluation["metrics"]["accuracy"] > 0.6
    with session_scope(url) as session:
        assert history.reference_for(session, model_name, 1).rows == 1125
    events = _events(url, model_name)

    _, again, promotion = _run(url, registry, settings, model_name)
    assert again == {"version": 1, "new": False} and not promotion["promoted"]
    assert _events(url, model_name) == events and len(registry.list_versions(model_name)) == 1

    same = tmp_path / "same.csv"  # the champion's own data: a candidate no better than the champion
    datasets.generate(1500, seed=int(START.timestamp()) % 2**31).frame.to_csv(same, index=False)
    evaluation, registered, promotion = _run(url, registry, settings, model_name, start=END,
                                             end=END + timedelta(days=1), data_path=str(same), target="default")
    assert registered["version"] == 2 and not promotion["promoted"]
    assert evaluation["champion_score"] == evaluation["metrics"]["accuracy"]
    assert "does not beat" in promotion["reason"]
    assert registry.alias_version(model_name, "champion") == 1


def test_invalid_data_stops_before_training(settings, model_name, tmp_path):
    registry = Registry(settings)
    broken = tmp_path / "broken.csv"
    datasets.generate(400, 0).frame.assign(credit_score=-5).to_csv(broken, index=False)
    ingested = training_pipeline.ingest(settings, model_name=model_name, interval_start=START, interval_end=END,
                         data_path=str(broken), target="default")
    with pytest.raises(ValidationError, match="'credit_score' has 400 values outside"):
        training_pipeline.validate(runtime_for(settings.database_url, registry, settings), model_name=model_name,
                                   ingested=ingested)

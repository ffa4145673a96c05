"""The training pipeline's steps: a candidate is registered once per data interval and promoted
only when it beats the champion on the same holdout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitoring.registry.mlflow_registry import Registry
from monitoring.store import history
from monitoring.store.engine import session_scope
from monitoring.store.releases import running_release
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


def test_a_better_candidate_goes_to_a_canary_once(settings, model_name, tmp_path):
    registry = Registry(settings)
    url = settings.database_url
    corrupted = tmp_path / "corrupted.csv"  # a champion that learned the wrong rule
    datasets.bad_training_set(1500, seed=3).frame.to_csv(corrupted, index=False)
    _, _, first = _run(url, registry, settings, model_name, data_path=str(corrupted), target="default")
    assert first["destination"] == "champion" and first["reason"] == "first version: no champion yet"

    later = {"start": END, "end": END + timedelta(days=1)}
    evaluation, registered, promotion = _run(url, registry, settings, model_name, **later)

    assert registered["version"] == 2 and promotion["destination"] == "canary" and not promotion["promoted"]
    assert evaluation["metrics"]["accuracy"] > evaluation["champion_score"]
    assert registry.alias_version(model_name, "champion") == 1
    assert registry.alias_version(model_name, "challenger") == 2
    with session_scope(url) as session:
        release = running_release(session, model_name)
        assert (release.id, release.challenger_version, release.champion_version, release.started_by) == (
            promotion["release"], 2, 1, training_pipeline.ACTOR)
        assert release.share == settings.release.default_share
    events = _events(url, model_name)

    _, again, repeated = _run(url, registry, settings, model_name, **later)  # the interval re-run
    assert again == {"version": 2, "new": False} and repeated["destination"] == "none"
    assert repeated["reason"] == f"version 2 already had a canary release (release {release.id}, running)"
    assert _events(url, model_name) == events


def test_with_new_version_champion_a_better_candidate_is_promoted_at_once(settings, model_name, tmp_path):
    settings = settings.model_copy(update={"new_version": "champion"})
    registry = Registry(settings)
    corrupted = tmp_path / "corrupted.csv"
    datasets.bad_training_set(1500, seed=3).frame.to_csv(corrupted, index=False)
    _run(settings.database_url, registry, settings, model_name, data_path=str(corrupted), target="default")

    _, _, promotion = _run(settings.database_url, registry, settings, model_name, start=END,
                           end=END + timedelta(days=1))

    assert promotion["destination"] == "champion" and promotion["promoted"]
    assert registry.alias_version(model_name, "champion") == 2
    assert registry.alias_version(model_name, "challenger") is None

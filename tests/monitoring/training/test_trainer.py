"""Training end to end against a real MLflow store and Vigil's store on both backends."""

from __future__ import annotations

import mlflow
import pytest
from sqlalchemy import func, select

from monitoring.registry.mlflow_registry import Registry
from monitoring.store import history
from monitoring.store.engine import session_scope
from monitoring.store.releases import running_release
from monitoring.store.tables import OutboxMessage, ReferenceData, RegistryEvent, VersionHealth
from monitoring.training import datasets
from monitoring.training.trainer import decide_destination, train


@pytest.fixture
def registry(settings, store_url, monkeypatch) -> Registry:
    monkeypatch.setenv("VIGIL_DATABASE_URL", store_url)
    return Registry(settings)


def _train(registry, store_url, model_name, dataset, promote=None, to="champion"):
    return train(dataset, registry=registry, store_url=store_url, model_name=model_name,
                 actor="test", promote=promote, to=to, seed=0)


@pytest.mark.parametrize(("candidate", "champion", "flag", "to", "expected"), [
    (0.8, None, None, "champion", "champion"),
    (0.8, None, None, "canary", "champion"),  # no champion to run a canary against
    (0.8, None, None, "none", "none"),
    (0.8, 0.7, None, "champion", "champion"),
    (0.8, 0.7, None, "canary", "canary"),
    (0.8, 0.7, None, "none", "none"),
    (0.7, 0.8, None, "canary", "none"),
    (0.8, 0.8, None, "champion", "none"),  # a tie does not replace the champion
    (0.5, 0.9, True, "champion", "champion"),
    (0.5, 0.9, True, "canary", "canary"),
    (0.9, 0.5, False, "canary", "none"),
])
def test_decide_destination(candidate, champion, flag, to, expected) -> None:
    assert decide_destination("accuracy", candidate, champion, flag, to)[0] == expected


def test_lower_is_better_for_rmse() -> None:
    assert decide_destination("rmse", 1.0, 2.0, None)[0] == "champion"
    assert decide_destination("rmse", 2.0, 1.0, None)[0] == "none"


def test_bad_destinations_are_refused() -> None:
    with pytest.raises(ValueError, match="not 'staging'"):
        decide_destination("accuracy", 0.8, 0.7, None, "staging")
    with pytest.raises(ValueError, match="--promote needs a destination"):
        decide_destination("accuracy", 0.8, 0.7, True, "none")


def test_first_version_becomes_champion_and_loads(registry, store_url, model_name) -> None:
    result = _train(registry, store_url, model_name, datasets.generate(1500, seed=1))

    assert result.version == 1 and result.promoted
    assert registry.alias_version(model_name, "champion") == 1
    info = registry.get_version(model_name, 1)
    assert info.metrics["accuracy"] == pytest.approx(result.metrics["accuracy"])

    mlflow.set_registry_uri(registry.tracking_uri)
    loaded = mlflow.pyfunc.load_model(f"models:/{model_name}@champion")
    rows = datasets.generate_features(5, seed=9)
    predictions = loaded.predict(rows)
    assert len(predictions) == 5 and set(predictions) <= {0, 1}
    assert loaded.metadata.signature is not None

    with session_scope(store_url) as session:
        kinds = [e.kind for e in history.events(session, model_name)]
        health = session.get(VersionHealth, (model_name, 1))
        reference = session.get(ReferenceData, (model_name, 1))
        outbox = session.scalar(select(func.count()).select_from(OutboxMessage)
                                .where(OutboxMessage.model_name == model_name))
    assert kinds == ["promote", "train"]  # newest first
    assert health.eval_metrics["accuracy"] == pytest.approx(result.metrics["accuracy"])
    assert reference.rows > 0 and reference.uri.endswith("reference.parquet")
    assert outbox == 1  # the promotion is announced


def test_worse_version_is_registered_but_not_promoted(registry, store_url, model_name) -> None:
    good = _train(registry, store_url, model_name, datasets.generate(1500, seed=1))
    worse = _train(registry, store_url, model_name, datasets.generate(60, seed=2))

    assert worse.version == 2
    assert worse.champion_before == good.version
    assert worse.promoted is (worse.metrics["accuracy"] > worse.champion_score)
    if not worse.promoted:
        assert registry.alias_version(model_name, "champion") == 1
    forced = _train(registry, store_url, model_name, datasets.bad_training_set(1500, seed=3), promote=True)
    assert forced.promoted and registry.alias_version(model_name, "champion") == forced.version


def test_no_promote_flag_keeps_first_version_unaliased(registry, store_url, model_name) -> None:
    result = _train(registry, store_url, model_name, datasets.generate(800, seed=1), promote=False)
    assert not result.promoted
    assert registry.alias_version(model_name, "champion") is None
    with session_scope(store_url) as session:
        moves = session.scalars(select(RegistryEvent).where(
            RegistryEvent.model_name == model_name, RegistryEvent.alias.is_not(None))).all()
    assert moves == []


def test_a_better_version_goes_to_a_canary_and_the_champion_stays(registry, store_url, model_name) -> None:
    bad = _train(registry, store_url, model_name, datasets.bad_training_set(1500, seed=3), to="canary")
    assert bad.destination == "champion" and bad.reason == "first version: no champion yet"

    better = _train(registry, store_url, model_name, datasets.generate(1500, seed=1), to="canary")

    assert better.destination == "canary" and not better.promoted and better.release_id is not None
    assert "beats champion's" in better.reason and "answers 10% of the requests" in better.reason
    assert registry.alias_version(model_name, "champion") == bad.version
    assert registry.alias_version(model_name, "challenger") == better.version
    with session_scope(store_url) as session:
        release = running_release(session, model_name)
        kinds = [e.kind for e in history.events(session, model_name)]
    assert (release.id, release.mode, release.challenger_version, release.champion_version, release.share) == (
        better.release_id, "canary", better.version, bad.version, 0.1)
    assert kinds[:2] == ["release_start", "train"]

    # a release is running: the next better version stays registered, and says why
    another = _train(registry, store_url, model_name, datasets.generate(1500, seed=4), to="canary")
    assert another.destination == "none" and "already has a running canary" in another.reason
    assert registry.alias_version(model_name, "challenger") == better.version

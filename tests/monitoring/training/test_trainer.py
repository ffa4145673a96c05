"""Training end to end against a real MLflow store and Vigil's store on both backends."""

from __future__ import annotations

import mlflow
import pytest
from sqlalchemy import func, select

from monitoring.registry.mlflow_registry import Registry
from monitoring.store import history
from monitoring.store.engine import session_scope
from monitoring.store.tables import OutboxMessage, ReferenceData, RegistryEvent, VersionHealth
from monitoring.training import datasets
from monitoring.training.trainer import decide_promotion, train


@pytest.fixture
def registry(settings, store_url, monkeypatch) -> Registry:
    monkeypatch.setenv("VIGIL_DATABASE_URL", store_url)
    return Registry(settings)


def _train(registry, store_url, model_name, dataset, promote=None):
    return train(dataset, registry=registry, store_url=store_url, model_name=model_name,
                 actor="test", promote=promote, seed=0)


@pytest.mark.parametrize(("candidate", "champion", "flag", "expected"), [
    (0.8, None, None, True),
    (0.8, 0.7, None, True),
    (0.7, 0.8, None, False),
    (0.8, 0.8, None, False),  # a tie does not replace the champion
    (0.5, 0.9, True, True),
    (0.9, 0.5, False, False),
])
def test_decide_promotion(candidate, champion, flag, expected) -> None:
    assert decide_promotion("accuracy", candidate, champion, flag)[0] is expected


def test_lower_is_better_for_rmse() -> None:
    assert decide_promotion("rmse", 1.0, 2.0, None)[0] is True
    assert decide_promotion("rmse", 2.0, 1.0, None)[0] is False


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

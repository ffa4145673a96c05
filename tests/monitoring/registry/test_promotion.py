"""Promotions and rollbacks move the MLflow alias and the audit trail together, or not at all."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from monitoring.registry.mlflow_registry import Registry, RegistryError
from monitoring.registry.promotion import PromotionError, move_alias_in, promote, rollback
from monitoring.store import history
from monitoring.store.engine import lock_model, session_scope
from monitoring.store.tables import AccessLog, RegistryEvent
from monitoring.training import datasets
from monitoring.training.trainer import train
from tests.runtimes import runtime_for


@pytest.fixture
def three_versions(settings, store_url, model_name):
    registry = Registry(settings)
    for seed in (1, 2, 3):
        train(datasets.generate(600, seed=seed), registry=registry, store_url=store_url,
              model_name=model_name, actor="test", promote=True, seed=seed)
    return registry


def _alias_moves(url, model_name):
    with session_scope(url) as session:
        return [(e.kind, e.from_version, e.to_version, e.actor)
                for e in history.alias_history(session, model_name, "champion")]


def test_promote_and_rollback_are_audited(three_versions, store_url, model_name) -> None:
    registry = three_versions
    assert registry.alias_version(model_name, "champion") == 3

    rollback(runtime_for(store_url, registry), model_name=model_name, actor="ops:ana", reason="latency spike")
    assert registry.alias_version(model_name, "champion") == 2
    promote(runtime_for(store_url, registry), model_name=model_name, version=3, actor="ops:ben", reason="fixed")
    assert registry.alias_version(model_name, "champion") == 3

    moves = _alias_moves(store_url, model_name)
    assert moves[-2:] == [("manual_rollback", 3, 2, "ops:ana"), ("promote", 2, 3, "ops:ben")]
    with session_scope(store_url) as session:
        access = session.scalars(select(AccessLog).order_by(AccessLog.id)).all()
    assert [(a.action, a.actor, a.allowed) for a in access] == [
        ("rollback", "ops:ana", True), ("promote", "ops:ben", True)]


def test_rollback_skips_versions_marked_bad(three_versions, store_url, model_name) -> None:
    with session_scope(store_url) as session:
        history.set_health(session, model_name=model_name, version=2, state="bad")
    event = rollback(runtime_for(store_url, three_versions), model_name=model_name, actor="ops", reason="bad v3")
    assert event.to_version == 1


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"version": 99}, RegistryError, "no version 99"),
    ({"version": 3}, PromotionError, "already holds"),
    ({"version": 1, "reason": "  "}, PromotionError, "reason is required"),
])
def test_refused_promotion_changes_nothing(three_versions, store_url, model_name, kwargs, error, message):
    before = _alias_moves(store_url, model_name)
    arguments = {"reason": "because", "actor": "ops", **kwargs}
    with pytest.raises(error, match=message):
        promote(runtime_for(store_url, three_versions), model_name=model_name, **arguments)
    assert three_versions.alias_version(model_name, "champion") == 3
    assert _alias_moves(store_url, model_name) == before


def test_rollback_to_a_bad_version_is_refused(three_versions, store_url, model_name) -> None:
    with session_scope(store_url) as session:
        history.set_health(session, model_name=model_name, version=1, state="bad")
    with pytest.raises(PromotionError, match="marked bad"):
        rollback(runtime_for(store_url, three_versions), model_name=model_name, actor="ops", reason="x", to_version=1)
    assert three_versions.alias_version(model_name, "champion") == 3


def test_alias_is_restored_when_the_transaction_fails(three_versions, store_url, model_name) -> None:
    registry = three_versions
    with pytest.raises(RuntimeError, match="store went away"), session_scope(store_url) as session:
        lock_model(session, model_name)
        move_alias_in(session, registry, model_name=model_name, to_version=1, actor="ops",
                      reason="test", kind="promote")
        assert registry.alias_version(model_name, "champion") == 1
        raise RuntimeError("store went away")
    assert registry.alias_version(model_name, "champion") == 3
    with session_scope(store_url) as session:
        latest = session.scalars(select(RegistryEvent).order_by(RegistryEvent.id.desc())).first()
    assert latest.to_version == 3  # the failed move left no event behind


def test_alias_pointing_at_nothing(settings, store_url, model_name) -> None:
    registry = Registry(settings)
    assert registry.alias_version(model_name, "champion") is None
    with pytest.raises(PromotionError, match="no former champion"):
        rollback(runtime_for(store_url, registry), model_name=model_name, actor="ops", reason="x")

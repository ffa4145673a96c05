"""Per-model watchdog policy: overrides merged over the defaults and checked like the variables,
stored and audited on SQLite and PostgreSQL; two models of one store judged each by its own policy."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from monitoring.events import EVENTS
from monitoring.settings import Settings, WatchdogPolicy
from monitoring.store import history
from monitoring.store.engine import session_scope
from monitoring.store.tables import AccessLog, ModelControl, ModelPolicy, OutboxMessage
from monitoring.watchdog.model_policy import (
    PolicyError,
    UnknownModel,
    effective,
    merged,
    reset_fields,
    set_fields,
    view,
)
from tests.monitoring.watchdog.conftest import World

DEFAULTS = WatchdogPolicy.model_validate({})  # the code's defaults, whatever VIGIL_* this shell has


def known(url: str, model_name: str) -> None:
    """Make ``model_name`` a model Vigil knows (a registered version), without MLflow."""
    with session_scope(url) as session:
        history.upsert_version(session, model_name=model_name, version=1)


@pytest.mark.parametrize(("overrides", "said"), [
    ({"min_labels": 0}, "min_labels=0: input should be greater than or equal to 1"),
    ({"clear_fraction": 1.5}, "clear_fraction=1.5: input should be less than or equal to 1"),
    ({"min_labels": "many"}, "min_labels=many: input should be a valid integer"),
    ({"cooldown_minutes": True}, "cooldown_minutes: a number is needed"),
    ({"latency_p95_slo_ms": "inf"}, "latency_p95_slo_ms: a finite number is needed"),
    ({"cooldown_minutes": 10**9}, "cooldown_minutes=1000000000: input should be less than or equal to 525600"),
    ({"thresholds": 1}, "no such policy field: thresholds"),
])
def test_a_bad_override_is_refused_with_the_field_and_why(overrides, said):
    with pytest.raises(PolicyError, match=said):
        merged(DEFAULTS, overrides)


def test_overrides_replace_only_their_fields():
    policy = merged(DEFAULTS, {"min_labels": "80", "cooldown_minutes": 5})
    assert (policy.min_labels, policy.cooldown, policy.drift_share) == (80, timedelta(minutes=5), DEFAULTS.drift_share)


def test_set_and_reset_are_stored_merged_and_audited_and_a_refusal_changes_nothing(store_url, model_name):
    settings = Settings(database_url=store_url, watchdog=DEFAULTS)
    known(store_url, model_name)

    changes = set_fields(settings, model_name, {"min_labels": "80", "cooldown_minutes": 5}, actor="cli:ana",
                         channel="cli", reason="noisy labels")
    assert [str(c) for c in changes] == ["min_labels: 30 (default) -> 80", "cooldown_minutes: 30 (default) -> 5"]
    with session_scope(store_url) as session:
        policy = effective(session, DEFAULTS, model_name)
        assert (policy.min_labels, policy.cooldown_minutes, policy.drift_share) == (80, 5, 0.5)
        assert effective(session, DEFAULTS, "another-model") is DEFAULTS

    with pytest.raises(PolicyError, match="max_auto_rollbacks_per_day=0"):  # one bad value: none is taken
        set_fields(settings, model_name, {"min_labels": 90, "max_auto_rollbacks_per_day": 0}, actor="cli:ana",
                   channel="cli")
    with pytest.raises(UnknownModel, match="knows no model 'no-such-model'"):
        set_fields(settings, "no-such-model", {"min_labels": 90}, actor="cli:ana", channel="cli")
    assert view(store_url, DEFAULTS, model_name).overrides == {"min_labels": 80, "cooldown_minutes": 5}

    [reset] = reset_fields(settings, model_name, ["cooldown_minutes"], actor="cli:bob", channel="cli")
    assert str(reset) == "cooldown_minutes: 5 -> 30 (default)"
    assert set_fields(settings, model_name, {"min_labels": 80}, actor="cli:bob", channel="cli") == []  # no change
    shown = view(store_url, DEFAULTS, model_name)
    assert (shown.overrides, shown.updated_by) == ({"min_labels": 80}, "cli:bob")
    assert ("min_labels", 80, 30, True) in shown.rows() and ("cooldown_minutes", 30, 30, False) in shown.rows()

    with session_scope(store_url) as session:
        audit = [(a.actor, a.action, a.detail) for a in session.scalars(select(AccessLog).order_by(AccessLog.id))]
        events = [EVENTS.validate_python(m.payload["event"])
                  for m in session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))]
        assert session.get(ModelControl, "no-such-model") is None and session.get(ModelPolicy, "no-such-model") is None
    assert audit == [
        ("cli:ana", "policy_set", "min_labels: 30 (default) -> 80; cooldown_minutes: 30 (default) -> 5 "
                                  "(reason: noisy labels)"),
        ("cli:bob", "policy_reset", "cooldown_minutes: 5 -> 30 (default)")]
    assert [(e.type, e.actor, {name: (c.old, c.new, c.override) for name, c in e.changes.items()}) for e in events] == [
        ("policy_set", "cli:ana", {"min_labels": (30, 80, True), "cooldown_minutes": (30, 5, True)}),
        ("policy_reset", "cli:bob", {"cooldown_minutes": (5, 30, False)})]


def test_two_models_with_different_minimum_labels_one_rolled_back_one_not(sqlite_world: World, trained):
    strict = sqlite_world
    patient = World(strict.url, strict.settings, strict.registry, trained, f"{strict.name}-patient")
    good = {world.name: world.add("good", health="healthy") for world in (strict, patient)}
    bad = {world.name: world.add("bad") for world in (strict, patient)}
    set_fields(patient.settings, patient.name, {"min_labels": 500}, actor="cli:ana", channel="cli")
    for seed, world in enumerate((strict, patient)):
        world.serve(bad[world.name], 200, seed=11 + seed)

    [rolled] = strict.evaluate()
    [waited] = patient.evaluate()

    assert (rolled.status, rolled.action, strict.champion()) == ("degraded", "rollback", good[strict.name])
    assert (waited.status, waited.action, patient.champion()) == ("inconclusive", "none", bad[patient.name])
    assert "fewer than the minimum 500" in waited.findings[0].reason

"""The watchdog against real stores (SQLite and PostgreSQL) and a real MLflow registry.

The ``world`` fixtures (conftest.py) hold a model with versions copied from ones trained with
``monitoring.training.trainer.train``, and write simulated traffic straight into the tables.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import insert, select

from monitoring import metric_names
from monitoring.registry.mlflow_registry import Registry, RegistryError
from monitoring.store.engine import lock_model, session_scope
from monitoring.store.tables import (
    AccessLog,
    Alert,
    DriftResult,
    OutboxMessage,
    RegistryEvent,
    VersionHealth,
)
from monitoring.training import datasets
from monitoring.watchdog.evaluation import SETTLE, evaluate_and_act, freeze, release
from tests.monitoring.watchdog.conftest import World
from tests.runtimes import runtime_for


def _outbox_kinds(world: World) -> list[str]:
    with session_scope(world.url) as session:
        return list(session.scalars(select(OutboxMessage.kind).where(OutboxMessage.model_name == world.name)
                                    .order_by(OutboxMessage.id)))


def test_bad_champion_is_rolled_back_once_to_the_last_healthy_version(world: World):
    good = world.add("good", health="healthy")
    world.add("other", promote_it=False, health="healthy")  # healthy, but never champion: not a target
    bad = world.add("bad")
    world.serve(bad, 200, seed=11)
    outbox_before = _outbox_kinds(world)

    [outcome] = world.evaluate()

    assert (outcome.version, outcome.status, outcome.action, outcome.rolled_back_to) == (bad, "degraded", "rollback", good)
    assert world.champion() == good
    assert world.health(bad) == "bad"
    with session_scope(world.url) as session:
        event = session.scalars(select(RegistryEvent).where(RegistryEvent.model_name == world.name,
                                                            RegistryEvent.kind == "auto_rollback")).one()
        assert (event.from_version, event.to_version, event.actor) == (bad, good, "watchdog")
        numbers = event.evidence["numbers"]
        assert numbers["accuracy"] < 0.7 and numbers["baseline accuracy"] > 0.78
        assert numbers["cause"] == "version" and numbers["previous error rate"] < 0.25
    [alert] = world.alerts().values()
    assert (alert.kind, alert.state, alert.severity) == ("rollback", "firing", "warning")
    assert _outbox_kinds(world)[len(outbox_before):] == ["auto_rollback", "firing"]
    control = world.control()
    assert control.cooldown_until is not None and control.cooldown_until > world.clock
    assert control.detector_state["bake"]["restored_version"] == good

    [again] = world.evaluate()  # the restored version has no labels yet: nothing more happens
    assert (again.version, again.status, again.action) == (good, "inconclusive", "none")
    assert world.count(RegistryEvent, RegistryEvent.model_name == world.name,
                       RegistryEvent.kind == "auto_rollback") == 1


def test_bake_reports_recovery_in_the_alert_thread_and_resolves_the_alert(world: World):
    good = world.add("good", health="healthy")
    bad = world.add("bad")
    world.serve(bad, 200, seed=12)
    assert world.evaluate()[0].action == "rollback"

    world.serve(good, 400, seed=13)  # the restored version answers well again
    [outcome] = world.evaluate()

    assert any(note.startswith("bake: recovered") for note in outcome.notes)
    [alert] = world.alerts().values()
    assert alert.state == "resolved"
    kinds = _outbox_kinds(world)
    assert kinds[-3:] == ["firing", "followup", "resolved"]
    with session_scope(world.url) as session:
        followup = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "followup",
                                                               OutboxMessage.model_name == world.name)).one()
    assert followup.alert_id == alert.id  # same Slack thread as the rollback
    assert followup.payload["facts"]["accuracy since rollback"] > 0.75
    assert followup.payload["facts"]["labels since rollback"] >= 30
    assert world.control().detector_state["bake"] is None


def test_few_labels_are_inconclusive_and_nothing_happens(world: World):
    world.add("good", health="healthy")
    bad = world.add("bad")
    world.serve(bad, 20, seed=14)  # 20 labels < min_labels (30), however bad they are

    [outcome] = world.evaluate()

    assert (outcome.status, outcome.action) == ("inconclusive", "none")
    assert outcome.findings[0].numbers["labels"] == 20
    assert world.champion() == bad and world.alerts() == {}


def test_a_serving_version_with_enough_good_labels_becomes_healthy(world: World):
    version = world.add("good")
    assert world.health(version) == "unknown"
    world.serve(version, 400, seed=15)

    [outcome] = world.evaluate()

    assert outcome.status == "ok" and world.health(version) == "healthy"
    with session_scope(world.url) as session:
        evidence = session.get(VersionHealth, (world.name, version)).evidence
    assert evidence["labels"] == 400 and 0.75 < evidence["accuracy"] < 0.9


def test_drift_alone_alerts_and_never_rolls_back(world: World):
    good = world.add("good", health="healthy")
    other = world.add("other", health="healthy")
    world.serve(other, 100, seed=16)
    window = world.clock
    with session_scope(world.url) as session:
        session.execute(insert(DriftResult), [
            {"model_name": world.name, "model_version": other, "window_start": window - timedelta(minutes=5),
             "window_end": window, "feature": feature, "method": "ks", "score": 0.001, "threshold": 0.05,
             "drifted": i < 10, "reference_size": 1000, "current_size": 100, "computed_at": window}
            for i, feature in enumerate(datasets.NUMERIC + datasets.CATEGORICAL + list(metric_names.OUTPUT_DRIFT))])

    [outcome] = world.evaluate()

    assert outcome.action == "none" and world.champion() == other != good
    drift = next(f for f in outcome.findings if f.signal == "drift")
    assert drift.status == "degraded" and drift.numbers["drifted features"] == 10
    assert drift.numbers["features"] == len(datasets.NUMERIC + datasets.CATEGORICAL)  # the outputs' rows are not inputs
    [alert] = world.alerts().values()
    assert (alert.kind, alert.state) == ("drift", "firing")


def test_no_healthy_target_means_a_critical_alert_and_no_rollback(world: World):
    world.add("good")  # a former champion, but without a healthy record
    bad = world.add("bad")
    world.serve(bad, 200, seed=17)

    [outcome] = world.evaluate()

    assert (outcome.status, outcome.action) == ("degraded", "alert")
    assert world.champion() == bad
    [alert] = world.alerts().values()
    assert (alert.kind, alert.severity, alert.state) == ("no_target", "critical", "firing")
    assert world.health(bad) == "degraded"
    assert world.count(RegistryEvent, RegistryEvent.kind == "auto_rollback",
                       RegistryEvent.model_name == world.name) == 0


def test_a_data_problem_alerts_retrain_and_does_not_roll_back(world: World):
    world.add("good", health="healthy")
    other = world.add("other", health="healthy")
    world.serve(other, 300, seed=18, scenario="concept_drift")  # the world changed: both versions err

    [outcome] = world.evaluate()

    assert (outcome.status, outcome.action) == ("degraded", "alert")
    assert world.champion() == other and world.health(other) == "healthy"
    [alert] = world.alerts().values()
    assert alert.kind == "data_problem" and "retrain / investigate data" in alert.title
    assert alert.details["facts"]["cause"] == "data"


def test_concurrent_watchdogs_roll_back_once(world: World):
    good = world.add("good", health="healthy")
    bad = world.add("bad")
    world.serve(bad, 200, seed=19)
    now = world.clock + SETTLE + timedelta(seconds=1)
    start = threading.Barrier(2)
    results: list = []

    def watchdog() -> None:
        registry = Registry(world.settings)
        start.wait()
        results.extend(evaluate_and_act(runtime_for(world.url, registry, world.settings), model_name=world.name, now=now))

    threads = [threading.Thread(target=watchdog) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert sorted(o.action for o in results) == ["none", "rollback"]
    assert world.champion() == good
    assert world.count(RegistryEvent, RegistryEvent.kind == "auto_rollback",
                       RegistryEvent.model_name == world.name) == 1
    assert world.count(Alert, Alert.model_name == world.name) == 1


class BrokenAliasRegistry(Registry):
    """MLflow refuses to move the alias (fault injection: the registry server went away)."""

    def set_alias(self, model_name: str, alias: str, version: int) -> None:
        raise RegistryError("MLflow unavailable (injected failure)")


def test_mlflow_failing_mid_action_leaves_nothing_half_written(world: World):
    world.add("good", health="healthy")
    bad = world.add("bad")
    world.serve(bad, 200, seed=20)

    def counts() -> list[int]:
        return [world.count(t, t.model_name == world.name) for t in (RegistryEvent, Alert, OutboxMessage)]

    before = counts()
    state_before = world.control().detector_state

    [outcome] = world.evaluate(BrokenAliasRegistry(world.settings))

    assert outcome.action == "error" and "injected failure" in outcome.notes[0]
    assert counts() == before
    assert world.champion() == bad and world.health(bad) == "unknown"
    control = world.control()
    assert control.cooldown_until is None and control.detector_state == state_before

    [retry] = world.evaluate()  # MLflow is back: the next evaluation does it
    assert retry.action == "rollback"


def test_cooldown_blocks_a_second_rollback(sqlite_world: World):
    world = sqlite_world
    world.add("good", health="healthy")
    world.add("other", health="healthy")
    bad = world.add("bad")
    with session_scope(world.url) as session:
        lock_model(session, world.name).cooldown_until = world.clock + timedelta(hours=1)
    world.serve(bad, 200, seed=21)

    [outcome] = world.evaluate()

    assert (outcome.action, world.champion()) == ("alert", bad)
    assert next(iter(world.alerts().values())).kind == "cooldown"


def test_budget_freezes_after_k_rollbacks_until_an_operator_releases(sqlite_world: World):
    world = sqlite_world
    policy = world.settings.watchdog.model_copy(update={"max_auto_rollbacks_per_day": 1, "cooldown_minutes": 0})
    world.settings = world.settings.model_copy(update={"watchdog": policy})
    good = world.add("good", health="healthy")
    bad = world.add("bad")
    world.serve(bad, 200, seed=22)
    assert world.evaluate()[0].rolled_back_to == good
    control = world.control()
    assert control.frozen and "budget 1" in control.frozen_reason

    other = world.add("other")  # an operator promotes another version; it turns out bad too
    world.serve(other, 300, seed=23, scenario="concept_drift")
    outcome = world.evaluate()[0]
    assert outcome.action == "alert" and world.champion() == other
    assert world.count(RegistryEvent, RegistryEvent.kind == "auto_rollback",
                       RegistryEvent.model_name == world.name) == 1

    release(world.url, world.name, "cli:alice", "checked the data; resume")
    assert not world.control().frozen
    assert world.count(AccessLog, AccessLog.action == "release", AccessLog.model_name == world.name) == 1


def test_freeze_stops_automatic_rollback_and_release_resumes_it(sqlite_world: World):
    world = sqlite_world
    good = world.add("good", health="healthy")
    bad = world.add("bad")
    freeze(world.url, world.name, "cli:bob", "maintenance window")
    world.serve(bad, 200, seed=24)

    [frozen] = world.evaluate()
    assert (frozen.action, world.champion()) == ("alert", bad)
    assert next(iter(world.alerts().values())).kind == "frozen"

    release(world.url, world.name, "cli:bob", "maintenance over")
    [resumed] = world.evaluate()
    assert (resumed.action, resumed.rolled_back_to, world.champion()) == ("rollback", good, good)
    with session_scope(world.url) as session:
        actions = list(session.scalars(select(AccessLog.action).where(AccessLog.model_name == world.name)
                                       .order_by(AccessLog.id)))
    assert actions[-2:] == ["freeze", "release"]
    assert "freeze" in _outbox_kinds(world) and "release" in _outbox_kinds(world)


def test_freeze_needs_a_reason(sqlite_world: World):
    with pytest.raises(ValueError):
        freeze(sqlite_world.url, sqlite_world.name, "cli:bob", "  ")
    assert sqlite_world.control() is None


def test_latency_breach_in_consecutive_windows_rolls_back(sqlite_world: World):
    world = sqlite_world
    good = world.add("good", health="healthy")
    slow = world.add("other")
    for window in range(3):
        # labelled, and as accurate as the target: a slow version is still the version's problem
        world.serve(slow, 100, seed=30 + window, latency_ms=900.0, per_second=50)
        [outcome] = world.evaluate()
        if window < 2:
            assert outcome.action == "none"  # one or two slow windows are not enough
    assert (outcome.action, outcome.rolled_back_to) == ("rollback", good)
    p95 = next(f for f in outcome.findings if f.signal == "latency_p95_ms")
    assert p95.status == "degraded" and p95.numbers["consecutive breaches"] == 3


def test_models_without_a_champion_are_skipped(world: World):
    assert evaluate_and_act(runtime_for(world.url, world.registry, world.settings), now=datetime.now().astimezone()) == []


def test_an_estimated_drop_is_an_early_warning_that_never_rolls_back(world: World):
    from monitoring.store import metric_windows

    good = world.add("good", health="healthy")
    other = world.add("other", health="healthy")
    world.serve(other, 100, seed=19)  # labels still say it is fine

    def estimate(value: float) -> None:
        window = world.clock
        with session_scope(world.url) as session:
            metric_windows.upsert_metrics(session, [metric_windows.metric_row(
                model_name=world.name, version=other, window_start=window - timedelta(minutes=5),
                window_end=window, metric=metric_names.ESTIMATED_ACCURACY, value=value, sample_count=800,
                computed_at=window)])

    estimate(0.55)
    [outcome] = world.evaluate()

    assert outcome.action == "none" and world.champion() == other != good
    finding = next(f for f in outcome.findings if f.signal == "estimated quality")
    assert finding.status == "degraded" and "(estimated, before labels)" in finding.reason
    [alert] = world.alerts().values()
    assert (alert.kind, alert.severity, alert.state) == ("estimated_drop", "warning", "firing")
    assert "estimated" in alert.title and "never rolls back" in alert.details["text"]

    estimate(0.82)
    world.evaluate()
    assert world.alerts()[alert.alert_key].state == "resolved"

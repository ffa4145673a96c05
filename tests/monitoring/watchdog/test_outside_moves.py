"""The registry is the truth: alias moves made in MLflow directly, on real stores and a real MLflow.

Versions "registered by the team" are copies of trained versions that Vigil's store knows nothing
about (no registration metrics); the alias is moved with MLflow's own client, as a team's
script or the MLflow UI would.
"""

from __future__ import annotations

import socket

import pytest
from sqlalchemy import select

from monitoring.registry.mlflow_registry import Registry
from monitoring.registry.promotion import promote
from monitoring.registry.reconciliation import reconcile
from monitoring.store import history
from monitoring.store.engine import session_scope
from monitoring.store.tables import OutboxMessage, RegistryEvent
from monitoring.watchdog.evaluation import evaluate_and_act
from tests.monitoring.watchdog.conftest import World
from tests.runtimes import runtime_for


def register_outside(world: World, kind: str) -> int:
    """A version registered by the team's own code: in MLflow only, no metrics in Vigil's store."""
    copied = world.registry.client.copy_model_version(
        f"models:/{world.trained['base']}/{world.trained[kind]}", world.name)
    return int(copied.version)


def move_in_mlflow(world: World, version: int | None) -> None:
    if version is None:
        world.registry.client.delete_registered_model_alias(world.name, "champion")
    else:
        world.registry.client.set_registered_model_alias(world.name, "champion", str(version))


def outside_moves(world: World) -> list[RegistryEvent]:
    with session_scope(world.url) as session:
        return list(session.scalars(select(RegistryEvent).where(
            RegistryEvent.model_name == world.name, RegistryEvent.kind == "outside_move")
            .order_by(RegistryEvent.id)))


def announcements(world: World) -> list[dict]:
    with session_scope(world.url) as session:
        return [m.payload for m in session.scalars(select(OutboxMessage).where(
            OutboxMessage.model_name == world.name, OutboxMessage.kind == "outside_move"))]


def test_a_bad_version_put_on_the_alias_in_mlflow_is_recorded_announced_and_rolled_back(world: World):
    good = world.add("good", health="healthy")
    world.serve(good, 300, seed=30)  # the production record the newcomer is judged against
    bad = register_outside(world, "bad")
    move_in_mlflow(world, bad)

    [noticed] = world.evaluate()

    [event] = outside_moves(world)
    assert (event.from_version, event.to_version, event.actor) == (good, bad, "mlflow (outside Vigil)")
    [message] = announcements(world)
    assert message["facts"]["from version"] == good and message["facts"]["to version"] == bad
    assert "moved outside Vigil" in message["title"] and message["severity"] == "warning"
    assert noticed.version == bad and any("outside Vigil" in note for note in noticed.notes)

    world.serve(bad, 200, seed=31)
    [judged] = world.evaluate()

    assert (judged.action, judged.rolled_back_to, world.champion()) == ("rollback", good, good)
    quality = judged.findings[0]
    assert quality.status == "degraded"
    assert 0.7 < quality.numbers["baseline accuracy"] < 0.9  # the good version's production record
    assert world.health(bad) == "bad"
    assert len(outside_moves(world)) == 1  # Vigil's own rollback is no outside move


def test_the_baseline_is_the_replaced_versions_record_before_the_move(sqlite_world: World):
    world = sqlite_world
    good = world.add("good", health="healthy")
    world.serve(good, 300, seed=32)
    newcomer = register_outside(world, "other")  # a good version, registered outside Vigil
    move_in_mlflow(world, newcomer)
    world.evaluate()
    world.serve(newcomer, 300, seed=33)

    [judged] = world.evaluate()

    assert judged.action == "none" and world.champion() == newcomer
    state = world.control().detector_state
    record = state["baseline_record"]
    assert record["version"] == good and record["labels"] == 300
    assert "replaced" in record["source"]
    assert judged.findings[0].numbers["baseline accuracy"] == pytest.approx(record["accuracy"], abs=1e-4)


def test_a_difference_is_recorded_and_announced_once_not_every_cycle(sqlite_world: World):
    world = sqlite_world
    good = world.add("good", health="healthy")
    other = register_outside(world, "other")
    move_in_mlflow(world, other)

    for _ in range(3):
        world.evaluate()

    assert [(e.from_version, e.to_version) for e in outside_moves(world)] == [(good, other)]
    assert len(announcements(world)) == 1

    move_in_mlflow(world, None)  # deleted in MLflow: recorded too, and nothing is judged
    outcomes = [world.evaluate() for _ in range(2)]
    assert [(e.from_version, e.to_version) for e in outside_moves(world)] == [(good, other), (other, None)]
    assert len(announcements(world)) == 2
    assert outcomes[1] == []


def test_a_version_vigil_never_saw_on_a_model_it_registered_is_watched(sqlite_world: World):
    world = sqlite_world
    known = world.add("good", promote_it=False)  # registered through Vigil, never promoted
    move_in_mlflow(world, known)

    [noticed] = evaluate_and_act(runtime_for(world.url, world.registry, world.settings))  # every model

    assert noticed.model_name == world.name
    assert [(e.from_version, e.to_version) for e in outside_moves(world)] == [(None, known)]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_mlflow_unreachable_is_no_difference_and_changes_nothing(sqlite_world: World, monkeypatch):
    world = sqlite_world
    world.add("good", health="healthy")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    unreachable = Registry(world.settings.model_copy(
        update={"mlflow_tracking_uri": f"http://127.0.0.1:{_closed_port()}"}))

    [outcome] = world.evaluate(unreachable)

    assert outcome.status == "skipped" and outcome.action == "none"  # no answer: a skip, recorded
    assert outcome.findings[0].signal == "registry" and "MLflow" in outcome.findings[0].reason
    assert outside_moves(world) == [] and announcements(world) == []


class PromotingWhileReading(Registry):
    """An operator's promotion lands after the check read Vigil's history and before it read
    MLflow's alias: MLflow then says the new version, the history read said the old one."""

    def __init__(self, settings, world: World, version: int):
        super().__init__(settings)
        self.world, self.version, self.done = world, version, False

    def alias_version(self, model_name: str, alias: str) -> int | None:
        if not self.done:
            self.done = True
            promote(runtime_for(self.world.url, Registry(self.world.settings)), model_name=model_name,
                    version=self.version, actor="cli:alice", reason="a promotion in flight")
        return super().alias_version(model_name, alias)


def test_a_promotion_landing_during_the_check_is_not_taken_for_an_outside_move(sqlite_world: World):
    world = sqlite_world
    world.add("good", health="healthy")
    other = world.add("other", promote_it=False)
    racing = PromotingWhileReading(world.settings, world, other)

    result = reconcile(runtime_for(world.url, racing, world.settings), world.name)

    assert not result.settled and outside_moves(world) == []
    again = reconcile(runtime_for(world.url, world.registry, world.settings), world.name)
    assert again.agrees and again.champion == other
    with session_scope(world.url) as session:
        assert history.last_alias_event(session, world.name, "champion").kind == "promote"

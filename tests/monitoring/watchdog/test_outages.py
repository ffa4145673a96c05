"""MLflow not answering is no answer: the watchdog skips the model, records and alerts it after the
grace period, never holds the model's lock while it waits, and clears it all once MLflow answers.

MLflow here is unreachable for real: a loopback port nobody listens on (connection refused), or a
socket that accepts connections and never answers (the client's timeout). The model itself lives
in the real MLflow store of the ``world`` fixture.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from monitoring.registry.mlflow_registry import Registry, RegistryUnavailable
from monitoring.settings import ReliabilityPolicy
from monitoring.store.engine import lock_model, session_scope
from monitoring.watchdog import skips
from monitoring.watchdog.evaluation import SKIPPED, evaluate_and_act
from tests.monitoring.watchdog.conftest import World
from tests.net import free_port
from tests.runtimes import runtime_for

MLFLOW_VARIABLES = ("MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
                    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR")


@pytest.fixture(autouse=True)
def _restore_mlflow_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """A registry sets MLflow's client limits for the process: put them back after the test."""
    for name in MLFLOW_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def _registry_at(world: World, uri: str, **limits) -> Registry:
    policy = ReliabilityPolicy(**{"mlflow_timeout_seconds": 1, "mlflow_max_retries": 0, **limits})
    return Registry(world.settings.model_copy(update={"mlflow_tracking_uri": uri, "reliability": policy}))


@pytest.fixture
def silent_mlflow() -> Iterator[str]:
    """An address that accepts TCP connections and never answers (a hung server)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_no_alias_is_an_answer_and_no_server_is_not(world: World):
    assert world.registry.alias_version(world.name, "champion") is None  # no such model yet
    world.add("good")
    assert world.registry.alias_version(world.name, "no-such-alias") is None
    dead = _registry_at(world, f"http://user:secret@127.0.0.1:{free_port()}")
    started = time.monotonic()
    with pytest.raises(RegistryUnavailable, match="connection refused") as raised:
        dead.alias_version(world.name, "champion")
    assert time.monotonic() - started < 5  # not MLflow's default minutes of retries
    assert "secret" not in str(raised.value) and "127.0.0.1" in str(raised.value)


def test_skips_are_recorded_alerted_after_the_grace_period_and_cleared(world: World):
    world.settings = world.settings.model_copy(update={"reliability": ReliabilityPolicy(
        mlflow_unreachable_grace_seconds=25)})
    good = world.add("good")
    dead = _registry_at(world, f"http://127.0.0.1:{free_port()}")

    [first] = world.evaluate(registry=dead)  # each evaluation moves the clock on by 11 s
    assert (first.status, first.action) == (SKIPPED, "none")
    assert "MLflow unreachable" in first.findings[0].reason and first.notes
    control = world.control()
    assert control.skipped_since == world.clock and "connection refused" in control.skip_reason
    assert world.alerts() == {}  # 0 s of skips: within the grace period
    [second] = world.evaluate(registry=dead)
    assert second.notes == () and world.alerts() == {}  # 11 s: said once, not again
    world.evaluate(registry=dead)
    assert world.alerts() == {}  # 22 s
    [fourth] = world.evaluate(registry=dead)  # 33 s of skips: past the grace period
    assert any("mlflow_unreachable alert raised" in note for note in fourth.notes)
    alert = world.alerts()[skips.alert_key(world.name)]
    assert (alert.kind, alert.state, alert.severity) == ("mlflow_unreachable", "firing", "critical")
    assert alert.details["facts"]["seconds skipped"] == 33.0
    world.evaluate(registry=dead)
    assert _kinds(world) == ["firing"]  # still firing: no second message

    [back] = world.evaluate()  # MLflow answers: the champion is judged again
    assert back.version == good and back.status != SKIPPED
    assert any("MLflow answers again after 55 s" in note for note in back.notes), back.notes
    assert world.alerts()[skips.alert_key(world.name)].state == "resolved"
    assert _kinds(world) == ["firing", "resolved"]
    control = world.control()
    assert control.skipped_since is None and control.skip_reason is None
    assert control.last_evaluated_at == world.clock


def _kinds(world: World) -> list[str]:
    from sqlalchemy import select

    from monitoring.store.tables import Alert, OutboxMessage

    with session_scope(world.url) as session:
        return list(session.scalars(select(OutboxMessage.kind).join(Alert, Alert.id == OutboxMessage.alert_id)
                                    .where(Alert.alert_key == skips.alert_key(world.name))
                                    .order_by(OutboxMessage.id)))


def test_a_hung_mlflow_never_holds_the_model_lock(world: World, silent_mlflow: str):
    world.add("good")
    hung = _registry_at(world, silent_mlflow, mlflow_timeout_seconds=2)
    outcomes: list = []
    evaluation = threading.Thread(target=lambda: outcomes.extend(world.evaluate(registry=hung)))
    started = time.monotonic()
    evaluation.start()
    time.sleep(0.5)  # the watchdog now waits for MLflow's answer
    with session_scope(world.url) as session:
        lock_model(session, world.name)
        took = time.monotonic() - started
    evaluation.join(30)
    assert took < 1.5, f"the lock was held {took:.1f} s while MLflow did not answer"
    [outcome] = outcomes
    assert outcome.status == SKIPPED and "timed out" in outcome.findings[0].reason
    assert 2 <= time.monotonic() - started < 10  # one request's timeout, no retries



@pytest.mark.parametrize(("seconds", "due"), [(0, False), (29.9, False), (30, True), (300, True)])
def test_the_grace_period_rule(seconds: float, due: bool):
    since = datetime(2026, 12, 1, tzinfo=UTC)
    assert skips.alert_due(since, since + timedelta(seconds=seconds), 30) is due


def test_one_hung_read_skips_every_model_of_the_run(sqlite_world: World, silent_mlflow: str):
    world = sqlite_world
    other = World(world.url, world.settings, world.registry, world.trained, world.name + "-b")
    world.add("good")
    other.add("good")
    hung = _registry_at(world, silent_mlflow, mlflow_timeout_seconds=2)
    started = time.monotonic()
    outcomes = evaluate_and_act(runtime_for(world.url, hung, world.settings))
    assert time.monotonic() - started < 4  # one timeout for the run, not one per model
    assert [(o.model_name, o.status) for o in outcomes] == [(world.name, SKIPPED), (other.name, SKIPPED)]
    assert other.control().skipped_since is not None and world.control().skipped_since is not None


def test_a_missing_version_is_an_answer_and_an_unreachable_one_is_not(world: World):
    from monitoring.registry.mlflow_registry import RegistryError

    world.add("good")
    with pytest.raises(RegistryError, match="has no version 99") as missing:
        world.registry.get_version(world.name, 99)
    assert not isinstance(missing.value, RegistryUnavailable)
    with pytest.raises(RegistryUnavailable, match="connection refused"):
        _registry_at(world, f"http://127.0.0.1:{free_port()}").get_version(world.name, 1)

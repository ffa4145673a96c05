"""The watch run delivers to the alert routes too: a rollback reaches a webhook with its event;
a bad routes file stops ``run_loop`` at start with the route named."""

from __future__ import annotations

from datetime import timedelta

import pytest

from monitoring.alerts.routes import RouteConfigError
from monitoring.events import EVENTS
from monitoring.registry.mlflow_registry import Registry
from monitoring.store.engine import utcnow
from monitoring.watchdog.loop import run_loop, run_once
from tests.fakes.fake_receiver import start_receiver
from tests.monitoring.watchdog.conftest import World
from tests.runtimes import runtime_for


def test_a_rollback_reaches_the_webhook_route_with_its_typed_event(sqlite_world: World, tmp_path,
                                                                   monkeypatch):
    receiver, server = start_receiver()
    monkeypatch.setenv("TEST_HOOK_SECRET", "k")
    routes = tmp_path / "routes.toml"
    routes.write_text(f'[[routes]]\nname = "hook"\nkind = "webhook"\nurl = "{receiver.url}"\n'
                      'secret_env = "TEST_HOOK_SECRET"\n')
    world = sqlite_world
    world.settings = world.settings.model_copy(update={"alert_routes_file": routes})
    good = world.add("good", health="healthy")
    bad = world.add("bad")
    world.backdate_alias_moves(timedelta(minutes=2))
    world.serve(bad, 200, seed=40, start=utcnow() - timedelta(seconds=100))
    try:
        lines = run_once(runtime_for(world.settings.database_url, world.registry, world.settings),
                         model_name=world.name)
    finally:
        server.shutdown()
    assert world.champion() == good
    assert any(line.startswith("route hook: ") and "delivered" in line for line in lines)
    events = [EVENTS.validate_python(r.body["event"]) for r in receiver.requests if r.body.get("event")]
    rollback = next(e for e in events if e.type == "auto_rollback")
    assert (rollback.model, rollback.from_version, rollback.to_version) == (world.name, bad, good)
    assert any(r.body["kind"] == "firing" for r in receiver.requests)  # the alert itself too


def test_a_bad_routes_file_stops_the_loop_at_start(settings, tmp_path):
    routes = tmp_path / "routes.toml"
    routes.write_text('[[routes]]\nname = "pager"\nkind = "pagerduty"\n')
    bad = settings.model_copy(update={"alert_routes_file": routes})
    with pytest.raises(RouteConfigError, match="route 'pager' \\(#1\\): routing_key_env"):
        run_loop(runtime_for(bad.database_url, Registry(bad), bad), interval=0.01, max_runs=1)

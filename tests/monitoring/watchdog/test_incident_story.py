"""A real rollback, told as an incident: the watchdog rolls a bad version back on its own (and an
operator does by hand), and ``monitoring.store.incidents`` reads back the timeline, the evidence
with the quality test's trajectory, the wrong answers served, the time to recover and the Slack
thread, whose messages link to the incident's page."""

from __future__ import annotations

from sqlalchemy import select

from monitoring.incidents import assemble, incident_url, mean_seconds_to_recover
from monitoring.registry.promotion import rollback
from monitoring.store import incidents as store_incidents
from monitoring.store.engine import session_scope
from monitoring.store.tables import ModelControl, OutboxMessage
from tests.monitoring.watchdog.conftest import World
from tests.runtimes import runtime_for


def _only_incident(world: World):
    [(name, move)] = store_incidents.rollbacks(world.url, world.name)
    assert name == world.name
    return assemble(store_incidents.facts(world.url, move.id))


def test_an_automatic_rollback_is_an_incident_with_timeline_evidence_and_thread(world: World):
    good = world.add("good", health="healthy")
    bad = world.add("bad")
    world.serve(bad, 200, seed=11)
    assert world.evaluate()[0].action == "rollback"
    world.serve(good, 400, seed=13)
    world.evaluate()  # the bake: the restored version is back at its baseline

    incident = _only_incident(world)

    assert [m.what for m in incident.timeline] == [
        "promotion", "first answer of the new version", "quality test crossed its boundary",
        "rollback committed", f"API serving version {good}", "recovered message"]
    assert (incident.bad_version, incident.restored_version, incident.automatic) == (bad, good, True)
    assert incident.labels is not None and 30 <= incident.labels <= 200
    assert incident.accuracy < 0.7 < incident.baseline_accuracy
    assert incident.upper > 0 > incident.lower and max(p[1] for p in incident.trajectory) >= incident.upper
    assert incident.served.requests == 200 and incident.served.labelled == 200
    assert 0.3 < incident.wrong_rate < 0.6 and incident.served.wrong == round(incident.wrong_rate * 200)
    assert incident.seconds_to_recover > 0 and mean_seconds_to_recover([incident]) == incident.seconds_to_recover
    kinds = [m.kind for m in incident.messages]
    assert kinds[:2] == ["auto_rollback", "firing"] and "followup" in kinds and "resolved" in kinds
    assert all("/incidents?id=" in m.text for m in incident.messages)  # each links to the page


def test_a_manual_rollback_keeps_the_watchdogs_trajectory_of_the_version(world: World):
    good = world.add("good", health="healthy")
    bad = world.add("other")  # a good version: the watchdog does not act, the operator does
    world.serve(bad, 60, seed=14)
    world.evaluate()
    with session_scope(world.url) as session:
        saved = session.get(ModelControl, world.name).detector_state
    assert saved["version"] == bad and saved["trajectory"] and saved["quality_test"]

    rollback(runtime_for(world.url, world.registry), model_name=world.name, actor="cli:alice",
             reason="customer complaints")

    incident = _only_incident(world)
    assert (incident.bad_version, incident.restored_version, incident.automatic) == (bad, good, False)
    assert incident.labels == 60 and len(incident.trajectory) == 60
    assert [m.what for m in incident.timeline][-1] == "rollback committed"  # v1 has not answered since
    assert incident.seconds_to_recover is not None
    with session_scope(world.url) as session:
        link = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "manual_rollback")).one().payload["link"]
    assert link == incident_url(world.settings.dashboard_url, incident.id)  # the operator's rollback is an incident too


def test_a_promotion_is_no_incident_and_an_unknown_id_has_no_facts(world: World):
    world.add("good", health="healthy")
    assert store_incidents.rollbacks(world.url, world.name) == []
    assert store_incidents.facts(world.url, 10_000) is None
    event_id, _message_id = store_incidents.newest_ids(world.url)
    assert store_incidents.facts(world.url, event_id) is None  # the promotion's event

"""Canary and shadow releases judged by the real watchdog on real versions in a real MLflow store:
a bad canary is aborted (one Slack thread, the version marked bad, @challenger gone), a good one
promoted; a shadow judged on paired requests; a frozen model waits for an operator; bad starts are
refused and change nothing."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from monitoring.events import EVENTS
from monitoring.registry.promotion import PromotionError
from monitoring.registry.releases import end_release_by_operator, start_release
from monitoring.store.engine import session_scope, utcnow
from monitoring.store.tables import OutboxMessage, Prediction, RegistryEvent, Release
from monitoring.training import datasets
from monitoring.watchdog.evaluation import freeze
from tests.runtimes import runtime_for


def _start(world, version, mode="canary", share=0.1):
    runtime = runtime_for(world.url, world.registry, world.settings)
    return start_release(runtime, model_name=world.name, version=version, mode=mode, share=share,
                         actor="test", reason="test release", bake_minutes=0)


def _canary_traffic(world, champion, challenger, *, champion_rows, challenger_rows, seed=11):
    start = max(world.clock, utcnow())
    world.serve(champion, champion_rows, seed=seed, start=start, per_second=200)
    world.serve(challenger, challenger_rows, seed=seed + 1, start=start, per_second=20, role="canary")


def _release(world) -> Release:
    with session_scope(world.url) as session:
        return session.scalars(select(Release).where(Release.model_name == world.name)
                               .order_by(Release.id.desc())).first()


def _thread(world, release) -> list[str]:
    with session_scope(world.url) as session:
        return list(session.scalars(select(OutboxMessage.kind).where(OutboxMessage.alert_id == release.alert_id)
                                    .order_by(OutboxMessage.id)))


def test_a_bad_canary_is_aborted_in_one_thread_and_marked_bad(world):
    good = world.add("good")
    bad = world.add("bad", promote_it=False)
    started = _start(world, bad)
    assert world.registry.alias_version(world.name, "challenger") == bad
    _canary_traffic(world, good, bad, champion_rows=900, challenger_rows=100)

    notes = "\n".join(world.evaluate()[0].notes)

    release = _release(world)
    assert release.id == started.id and release.state == "aborted", notes
    assert "more errors than the champion" in release.verdict_reason
    assert f"canary of v{bad} (release {release.id}): aborted" in notes
    assert world.champion() == good
    assert world.registry.alias_version(world.name, "challenger") is None
    assert world.health(bad) == "bad"
    assert _thread(world, release) == ["firing", "resolved"]
    assert world.alerts()[f"release:{world.name}:{release.id}"].state == "resolved"
    assert world.count(RegistryEvent, RegistryEvent.model_name == world.name,
                       RegistryEvent.kind.in_(["release_start", "release_end"])) == 2
    with session_scope(world.url) as session:  # the thread's messages carry the typed hook events
        started_event, verdict_event = [EVENTS.validate_python(m.payload["event"]) for m in session.scalars(
            select(OutboxMessage).where(OutboxMessage.alert_id == release.alert_id).order_by(OutboxMessage.id))]
    assert (started_event.type, started_event.release, started_event.version, started_event.traffic_share,
            started_event.champion_version) == ("canary_started", release.id, bad, 0.1, good)
    assert (verdict_event.type, verdict_event.verdict, verdict_event.actor, verdict_event.version) == (
        "canary_verdict", "abort", "watchdog", bad)


def test_a_good_canary_is_promoted_by_the_judge(world):
    good = world.add("good")
    other = world.add("other", promote_it=False)
    _start(world, other)
    world.settings = world.settings.model_copy(update={"release": world.settings.release.model_copy(
        update={"margin": 0.1})})  # a looser margin: a verdict on the few hundred labels of a test
    _canary_traffic(world, good, other, champion_rows=3000, challenger_rows=600)

    notes = "\n".join(world.evaluate()[0].notes)

    release = _release(world)
    assert release.state == "promoted", notes
    assert world.champion() == other
    assert world.registry.alias_version(world.name, "challenger") is None
    assert _thread(world, release) == ["firing", "resolved"]
    with session_scope(world.url) as session:
        promotion = session.scalars(select(RegistryEvent).where(
            RegistryEvent.model_name == world.name, RegistryEvent.kind == "promote",
            RegistryEvent.to_version == other)).one()
    assert promotion.actor == "watchdog" and promotion.evidence["release"] == release.id


def test_too_little_evidence_continues_and_says_so(world):
    good = world.add("good")
    other = world.add("other", promote_it=False)
    _start(world, other)
    _canary_traffic(world, good, other, champion_rows=100, challenger_rows=10)
    notes = "\n".join(world.evaluate()[0].notes)
    release = _release(world)
    assert release.state == "running" and release.evidence["decision"] == "continue", notes
    assert release.evidence["latest"]["challenger labels"] == 10
    assert world.registry.alias_version(world.name, "challenger") == other


def test_a_shadow_is_judged_on_the_requests_both_scored(world):
    good = world.add("good")
    bad = world.add("bad", promote_it=False)
    _start(world, bad, mode="shadow", share=1.0)
    ids = world.serve(good, 300, seed=21)
    data = datasets.generate(300, 21)
    shadowed = world.registry.load_version(world.name, bad).native.predict(data.X())
    with session_scope(world.url) as session:
        session.execute(insert(Prediction), [
            {"id": str(uuid.uuid4()), "model_name": world.name, "model_version": bad, "role": "shadow",
             "paired_id": pid, "created_at": world.clock - timedelta(seconds=1), "features": row,
             "prediction": str(guess), "score": None, "latency_ms": 20.0, "status": "ok", "error": None,
             "source": "api"}
            for pid, row, guess in zip(ids, data.X().to_dict("records"), shadowed, strict=True)])

    notes = "\n".join(world.evaluate()[0].notes)

    release = _release(world)
    assert release.state == "aborted", notes
    assert release.evidence["final"]["labelled pairs"] == 300
    assert 0 < release.evidence["final"]["agreement"] < 1
    assert world.champion() == good


def test_a_frozen_model_waits_for_an_operator(world):
    good = world.add("good")
    bad = world.add("bad", promote_it=False)
    _start(world, bad)
    freeze(world.url, world.name, "test", "change freeze")
    _canary_traffic(world, good, bad, champion_rows=900, challenger_rows=100)
    notes = "\n".join(world.evaluate()[0].notes)
    assert "automatic actions are frozen" in notes
    assert _release(world).state == "running"
    end_release_by_operator(runtime_for(world.url, world.registry, world.settings), model_name=world.name,
                            decision="abort", actor="cli:alice", reason="the judge says abort")
    release = _release(world)
    assert (release.state, release.ended_by) == ("aborted", "cli:alice")
    assert world.health(bad) != "bad"  # an operator's abort does not condemn the version


@pytest.mark.parametrize(("mode", "share", "message"), [
    ("canary", 1.0, "below 1"), ("canary", 0.0, "above 0"), ("shadow", 1.5, "at most 1"),
    ("blue-green", 0.5, "canary or a shadow")])
def test_a_bad_start_is_refused_and_changes_nothing(world, mode, share, message):
    world.add("good")
    other = world.add("other", promote_it=False)
    with pytest.raises(PromotionError, match=message):
        _start(world, other, mode=mode, share=share)
    assert _release(world) is None
    assert world.registry.alias_version(world.name, "challenger") is None


def test_one_release_at_a_time_and_never_the_champion(world):
    good = world.add("good")
    other = world.add("other", promote_it=False)
    with pytest.raises(PromotionError, match="is the champion already"):
        _start(world, good)
    first = _start(world, other)
    with pytest.raises(PromotionError, match=f"already has a running canary of version {other}"):
        _start(world, other, mode="shadow", share=1.0)
    assert _release(world).id == first.id


def test_a_promotion_is_held_while_the_estimated_accuracy_warning_fires(world):
    from monitoring.store import alerts
    from monitoring.watchdog.actions import alert_key

    good = world.add("good")
    other = world.add("other", promote_it=False)
    _start(world, other)
    world.settings = world.settings.model_copy(update={"release": world.settings.release.model_copy(
        update={"margin": 0.1})})
    _canary_traffic(world, good, other, champion_rows=3000, challenger_rows=600)
    with session_scope(world.url) as session:  # what the monitoring run's estimate raised (test_estimated_warning.py)
        alerts.raise_alert(session, key=alert_key(world.name, good, "estimated"), model_name=world.name,
                           kind="estimated_drop", severity="warning", title="estimated accuracy dropped",
                           facts={"estimated accuracy": 0.61})

    notes = "\n".join(world.evaluate()[0].notes)

    assert _release(world).state == "running" and world.champion() == good
    assert "the judge would promote" in notes and "estimated accuracy warning" in notes
    with session_scope(world.url) as session:
        alerts.resolve_alert(session, key=alert_key(world.name, good, "estimated"), facts={})
    world.evaluate()
    assert _release(world).state == "promoted" and world.champion() == other

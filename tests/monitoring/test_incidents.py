"""Incidents assembled from their facts (pure): the timeline in time order with each moment it
has, the evidence, the wrong answers, the time to recover, the MTTR over incidents and the
narration line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitoring.incidents import (
    Facts,
    Message,
    Move,
    Served,
    assemble,
    crossing_point,
    duration,
    incident_url,
    mean_seconds_to_recover,
    narration,
)

T0 = datetime(2026, 12, 3, 17, 0, tzinfo=UTC)
UPPER, LOWER = 2.89, -1.56


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _facts(*, evidence=None, kind="auto_rollback", promotion=True, first=2.0, restored=9.5, messages=()) -> Facts:
    trajectory = [[1, 0.8, _at(3).timestamp()], [2, 1.7, _at(4).timestamp()], [3, 2.95, _at(5).timestamp()]]
    evidence = evidence if evidence is not None else {
        "numbers": {"labels": 96, "accuracy": 0.541, "baseline accuracy": 0.833, "trip accuracy": 0.733},
        "quality": {"test": {"p0": 0.167, "p1": 0.267, "lower": LOWER, "upper": UPPER}, "labels": 96,
                    "errors": 44, "trajectory": trajectory}}
    return Facts(
        model_name="loan-default",
        rollback=Move(12, kind, "watchdog" if kind == "auto_rollback" else "cli:alice", "accuracy fell", 2, 1,
                      _at(7.4), evidence),
        promotion=Move(11, "promote", "cli:demo", "v2 looks better", 1, 2, T0) if promotion else None,
        first_bad_answer_at=_at(first) if first is not None else None,
        restored_serving_at=_at(restored) if restored is not None else None,
        served=Served(requests=150, failed=3, labelled=96, wrong=44),
        messages=tuple(messages),
    )


def _message(id_: int, kind: str, title: str, seconds: float) -> Message:
    return Message(id_, kind, title, _at(seconds), None, 0, None, f"text of {title}")


def test_the_timeline_tells_every_moment_in_time_order():
    recovered = _message(3, "followup", "loan-default: recovered on version 1", 40.0)
    incident = assemble(_facts(messages=[_message(1, "auto_rollback", "rolled back", 7.4),
                                         _message(2, "firing", "degraded", 7.4), recovered]))
    assert [(m.what, m.at) for m in incident.timeline] == [
        ("promotion", T0), ("first answer of the new version", _at(2)),
        ("quality test crossed its boundary", _at(5)), ("rollback committed", _at(7.4)),
        ("API serving version 1", _at(9.5)), ("recovered message", _at(40))]
    assert "2.95 ≥ 2.89 on label 3" in incident.timeline[2].detail
    assert incident.timeline[3].detail == "to version 1 by the watchdog"


def test_evidence_wrong_answers_and_time_to_recover():
    incident = assemble(_facts())
    assert (incident.bad_version, incident.restored_version, incident.automatic) == (2, 1, True)
    assert (incident.labels, incident.accuracy, incident.baseline_accuracy) == (96, 0.541, 0.833)
    assert (incident.lower, incident.upper) == (LOWER, UPPER) and len(incident.trajectory) == 3
    assert incident.wrong_rate == pytest.approx(44 / 96) and incident.error_rate == pytest.approx(3 / 150)
    assert incident.seconds_after_promotion == pytest.approx(7.4)
    assert incident.seconds_to_recover == pytest.approx(7.5)  # first bad answer (2 s) to restored answer (9.5 s)


def test_time_to_recover_falls_back_to_the_promotion_and_the_commit():
    assert assemble(_facts(first=None, restored=None)).seconds_to_recover == pytest.approx(7.4)
    assert assemble(_facts(first=None, restored=None, promotion=False)).seconds_to_recover is None


def test_a_manual_rollback_without_a_trajectory_has_no_crossing_and_says_who():
    incident = assemble(_facts(kind="manual_rollback", evidence={}))
    assert [m.what for m in incident.timeline] == ["promotion", "first answer of the new version",
                                                  "rollback committed", "API serving version 1"]
    assert incident.timeline[2].detail == "to version 1 by cli:alice"
    assert narration(incident) == "version 2 rolled back to version 1 by cli:alice 7.4 s after the promotion (accuracy fell)"


def test_a_not_recovered_followup_is_said_so():
    bad = _message(3, "followup", "loan-default: NOT recovered on version 1", 60.0)
    assert assemble(_facts(messages=[bad])).timeline[-1].what == "not recovered message"


def test_narration_reads_like_the_story():
    assert narration(assemble(_facts())) == ("version 2 rolled back to version 1 by the watchdog 7.4 s after the "
                                             "promotion, on 96 labels (accuracy 0.54 vs baseline 0.83)")


def test_a_rollback_the_quality_test_did_not_decide_is_told_with_its_reason():
    latency = {"numbers": {"latency_p95_ms": 812.0}, "quality": {"test": {"p0": 0.17, "p1": 0.27, "lower": LOWER,
                                                                          "upper": UPPER},
                                                                 "labels": 20, "errors": 3, "trajectory": []}}
    assert narration(assemble(_facts(evidence=latency))) == (
        "version 2 rolled back to version 1 by the watchdog 7.4 s after the promotion (accuracy fell)")


def test_accuracy_comes_from_the_trajectory_when_the_numbers_lack_it():
    incident = assemble(_facts(kind="manual_rollback", evidence={"quality": {
        "test": {"p0": 0.2, "p1": 0.3, "lower": LOWER, "upper": UPPER}, "labels": 50, "errors": 20,
        "trajectory": []}}))
    assert (incident.labels, incident.accuracy, incident.baseline_accuracy) == (50, pytest.approx(0.6), pytest.approx(0.8))


def test_mttr_is_the_mean_over_incidents_that_have_a_time_to_recover():
    told = [assemble(_facts(restored=9.5)), assemble(_facts(restored=32.0)),
            assemble(_facts(first=None, restored=None, promotion=False))]
    assert mean_seconds_to_recover(told) == pytest.approx((7.5 + 30.0) / 2)
    assert mean_seconds_to_recover([]) is None


@pytest.mark.parametrize(("points", "upper", "expected"), [
    ([(1, 1.0, 0.0), (2, 3.0, 1.0), (3, 0.5, 2.0), (4, 3.1, 3.0)], 2.89, (4, 3.1, 3.0)),
    ([(1, 1.0, 0.0)], 2.89, None), ([(1, 5.0, 0.0)], None, None), ([], 2.89, None)])
def test_crossing_is_the_last_point_at_or_over_the_boundary(points, upper, expected):
    assert crossing_point(points, upper) == expected


@pytest.mark.parametrize(("seconds", "text"), [(7.44, "7.4 s"), (150, "2.5 min"), (9000, "2.5 h"), (None, "—")])
def test_duration(seconds, text):
    assert duration(seconds) == text


def test_incident_url():
    assert incident_url("http://127.0.0.1:8501/", 12) == "http://127.0.0.1:8501/incidents?id=12"

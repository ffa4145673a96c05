"""The watchdog's live evidence (pure): read from the saved detector state only when it is this
champion's tenure; the verdict follows the quality test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitoring.watchdog.live import live_evidence

T0 = datetime(2026, 12, 3, 17, 0, tzinfo=UTC)


def _control(version=2, took_over=T0, **quality):
    return {"last_evaluated_at": T0 + timedelta(seconds=30), "detector_state": {
        "version": version, "took_over_at": took_over.isoformat(),
        "quality": {"labels": 40, "errors": 10, "llr": 0.4},
        "live_quality": {"labels": 50, "errors": 12, "llr": 0.6, **quality},
        "quality_test": {"p0": 0.17, "p1": 0.27, "lower": -1.56, "upper": 2.89},
        "trajectory": [[1, 0.3, 1.0]], "trajectory_tail": [[2, 0.6, 2.0]],
        "service_totals": {"requests": 400, "errors": 4, "steps": 2},
        "service_last": {"latency_p95_ms": 31.5, "latency_p99_ms": 40.0, "error_rate": 0.01}}}


def test_the_champions_state_with_provisional_labels_and_service_so_far():
    live = live_evidence("m", 2, T0, _control(), T0 + timedelta(seconds=33))
    assert live.current and live.seconds_since_evaluation == pytest.approx(3)
    assert (live.labels, live.accuracy, live.llr) == (50, pytest.approx(0.76), 0.6)
    assert (live.lower, live.upper, live.baseline_accuracy) == (-1.56, 2.89, pytest.approx(0.83))
    assert live.trajectory == ((1, 0.3, 1.0), (2, 0.6, 2.0))
    assert (live.requests, live.error_rate, live.latency_p95_ms) == (400, pytest.approx(0.01), 31.5)
    assert live.verdict == "watching"


@pytest.mark.parametrize(("quality", "verdict"), [({"breaching": True}, "degraded"), ({"llr": -0.3}, "healthy so far"),
                                                  ({"labels": 0, "errors": 0}, "no evidence yet")])
def test_the_verdict_follows_the_test(quality, verdict):
    assert live_evidence("m", 2, T0, _control(**quality), T0).verdict == verdict


@pytest.mark.parametrize("control", [_control(version=1), _control(took_over=T0 - timedelta(hours=1)), None])
def test_another_tenures_state_is_not_this_champions(control):
    live = live_evidence("m", 2, T0, control, T0)
    assert not live.current and live.labels == 0 and live.verdict == "no evidence yet"

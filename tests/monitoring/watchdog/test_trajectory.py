"""The quality test's trajectory (pure): the walk agrees with the test, points carry their label
count and time, a long trajectory keeps its newest points, and a
snapshot keeps settled and provisional points."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitoring.watchdog.sequential_test import ErrorRateTest, SprtState, sprt_bounds, sprt_update, sprt_walk
from monitoring.watchdog.trajectory import bounded, points, snapshot

LOWER, UPPER = sprt_bounds(0.01, 0.2)
TEST = ErrorRateTest(p0=0.2, p1=0.3, lower=LOWER, upper=UPPER)
T0 = datetime(2026, 12, 3, 17, 0, tzinfo=UTC)


def test_the_walk_ends_where_the_test_ends_and_shows_the_crossing_value():
    errors = [True] * 12 + [False] * 3
    state, path = sprt_walk(SprtState(), errors, TEST)
    assert state == sprt_update(SprtState(), errors, TEST)
    assert len(path) == 15 and state.trips == 1
    crossed = next(i for i, llr in enumerate(path) if llr >= UPPER)
    assert path[crossed] >= UPPER and path[crossed + 1] < path[crossed]  # the next test starts from 0


def test_points_count_labels_from_the_tenure_so_far():
    assert points(5, [0.5, -0.2], [T0, T0 + timedelta(seconds=1)]) == [
        [6, 0.5, T0.timestamp()], [7, -0.2, T0.timestamp() + 1]]
    with pytest.raises(ValueError, match="2 test values for 1 label times"):
        points(0, [0.5, 0.1], [T0])


def test_a_long_trajectory_keeps_its_newest_points():
    long = [[i, float(i), float(i)] for i in range(1, 1001)]
    assert bounded(long, 200) == long[-200:] and bounded(long[:50], 200) == long[:50]
    with pytest.raises(ValueError):
        bounded(long, 0)


def test_snapshot_keeps_the_test_and_settled_then_provisional_points():
    state = {"quality_test": {"p0": 0.2, "p1": 0.3, "lower": LOWER, "upper": UPPER},
             "quality": {"labels": 2, "errors": 1}, "live_quality": {"labels": 3, "errors": 2},
             "trajectory": [[1, 0.5, 1.0], [2, 0.2, 2.0]], "trajectory_tail": [[3, 0.7, 3.0]]}
    assert snapshot(state) == {"test": state["quality_test"], "labels": 3, "errors": 2,
                               "trajectory": [[1, 0.5, 1.0], [2, 0.2, 2.0], [3, 0.7, 3.0]]}
    assert snapshot({}) == {"test": None, "labels": 0, "errors": 0, "trajectory": []}

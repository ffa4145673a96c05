"""Window arithmetic: aligned windows, each owned by exactly one run, whatever the run length."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitoring.metrics.windows import (
    Window,
    latest_closed_window,
    window_containing,
    windows_ending_in,
)

T = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def test_windows_are_aligned_to_the_epoch():
    assert window_containing(T + timedelta(minutes=7, seconds=3), 5) == Window(T + timedelta(minutes=5),
                                                                                T + timedelta(minutes=10))
    assert latest_closed_window(T + timedelta(minutes=7), 5) == Window(T, T + timedelta(minutes=5))


@pytest.mark.parametrize("run_minutes, window_minutes", [(5, 5), (5, 1), (5, 10), (3, 7), (60, 5)])
def test_consecutive_runs_own_each_window_exactly_once(run_minutes, window_minutes):
    owned = []
    for i in range(40):
        start = T + timedelta(minutes=run_minutes * i)
        owned += windows_ending_in(start, start + timedelta(minutes=run_minutes), window_minutes)
    assert len(owned) == len(set(owned))
    expected = windows_ending_in(T, T + timedelta(minutes=40 * run_minutes), window_minutes)
    assert owned == expected and all(w.end - w.start == timedelta(minutes=window_minutes) for w in owned)


def test_bad_intervals_are_refused():
    with pytest.raises(ValueError, match="naive"):
        windows_ending_in(datetime(2026, 1, 1), datetime(2026, 1, 2), 5)
    with pytest.raises(ValueError, match="after start"):
        windows_ending_in(T, T, 5)
    with pytest.raises(ValueError, match="positive"):
        window_containing(T, 0)

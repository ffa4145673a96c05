"""The lockout rule as a table: N wrong tokens within the window lock a client out for the period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitoring.lockout import retry_after

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def _ago(*minutes: float) -> list[datetime]:
    return [NOW - m * MIN for m in minutes]


@pytest.mark.parametrize(("refusals", "wait_minutes"), [
    ([], 0),                                # never refused
    (_ago(4, 3, 2, 1), 0),                  # N-1 wrong tokens: not yet
    (_ago(5, 4, 3, 2, 1), 14),              # the 5th a minute ago: 14 minutes left
    (_ago(0, 0, 0, 0, 0), 15),              # a burst just now: the whole period
    (_ago(40, 30, 20, 10, 1), 0),           # five, but spread over 39 minutes: no lockout
    (_ago(29, 28, 27, 26, 16), 0),          # locked at 16 min ago, ended a minute ago
    (_ago(29, 28, 27, 26, 15), 0),          # ends exactly now
    (_ago(20, 19, 18, 17, 14.5), 0.5),      # the 5th is 14.5 min ago, within 15 min of the 1st
    (_ago(30, 20, 10, 5, 3, 2, 1), 14),     # the last five make it, the first two do not matter
])
def test_lockout_rule(refusals, wait_minutes):
    wait = retry_after(refusals, NOW, max_failures=5, window=15 * MIN, lockout=15 * MIN)
    assert wait == pytest.approx(wait_minutes * 60)


def test_one_failure_allowed_means_the_first_wrong_token_locks():
    assert retry_after(_ago(2), NOW, max_failures=1, window=MIN, lockout=10 * MIN) == 8 * 60

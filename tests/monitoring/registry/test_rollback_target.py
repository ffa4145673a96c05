"""Choosing the version to roll back to, from the alias history and health (pure)."""

from __future__ import annotations

import pytest

from monitoring.registry.rollback_target import choose_rollback_target, previous_holders

HISTORY = [(None, 1), (1, 2), (2, 3), (3, 4)]


def test_previous_holders_most_recent_first() -> None:
    assert previous_holders(HISTORY, current=4) == [3, 2, 1]
    assert previous_holders([(None, 1), (1, 2), (2, 1), (1, 3)], current=3) == [1, 2]


@pytest.mark.parametrize(("health", "require_healthy", "expected"), [
    ({}, False, 3),
    ({}, True, None),
    ({3: "bad"}, False, 2),
    ({3: "healthy"}, True, 3),
    ({3: "degraded", 2: "healthy", 1: "healthy"}, True, 2),
    ({3: "bad", 2: "bad", 1: "bad"}, False, None),
    ({3: "unknown", 2: "bad", 1: "healthy"}, True, 1),
])
def test_choose_rollback_target(health, require_healthy, expected) -> None:
    assert choose_rollback_target(HISTORY, health, 4, require_healthy=require_healthy) == expected


def test_no_history_no_target() -> None:
    assert choose_rollback_target([], {}, None, require_healthy=False) is None

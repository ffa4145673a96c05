"""The quality test's trajectory: the SPRT's log-likelihood ratio label by label, kept bounded.

A point is ``[labels, llr, at]``: the test's value after the ``labels``-th label of the
champion's tenure, received at ``at`` (Unix seconds). The detector state keeps the newest
``LIMIT`` of them, so the Overview and Quality pages can draw the test against its two boundaries,
and a rollback keeps the trajectory that led to it in its evidence. Pure functions over plain data.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

LIMIT = 200


def points(start_labels: int, path: Sequence[float], times: Sequence[datetime]) -> list[list[float]]:
    """The points of ``path`` (one LLR per label, as ``sprt_walk`` gives them) after ``start_labels``."""
    if len(path) != len(times):
        raise ValueError(f"{len(path)} test values for {len(times)} label times")
    return [[start_labels + i + 1, round(llr, 4), round(at.timestamp(), 3)]
            for i, (llr, at) in enumerate(zip(path, times, strict=True))]


def bounded(trajectory: list[list[float]], limit: int = LIMIT) -> list[list[float]]:
    """The newest ``limit`` points: the labels that led to where the test is now (a test that
    crossed a boundary restarts from 0, so older points belong to finished tests)."""
    if limit < 1:
        raise ValueError(f"a trajectory keeps at least 1 point, not {limit}")
    return trajectory[-limit:]


def bounds_of(p0: float, p1: float, lower: float, upper: float) -> dict[str, float]:
    """The test as the state keeps it: H0 and H1 error rates and the two LLR boundaries."""
    return {"p0": round(p0, 6), "p1": round(p1, 6), "lower": round(lower, 6), "upper": round(upper, 6)}


def snapshot(state: dict[str, Any]) -> dict[str, Any]:
    """What an incident keeps of a champion's quality test (from its detector state): the test's
    boundaries, the labels it saw and the whole trajectory, settled and provisional."""
    live = state.get("live_quality") or state.get("quality") or {}
    return {"test": state.get("quality_test"),
            "labels": int(live.get("labels", 0)), "errors": int(live.get("errors", 0)),
            "trajectory": bounded(list(state.get("trajectory") or []) + list(state.get("trajectory_tail") or []))}

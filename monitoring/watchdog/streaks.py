"""The watchdog's detector for latency and error rate: N consecutive breaching windows.

Latency (p95, p99) and error rate are measured on consecutive, non-overlapping windows of at
least ``min_requests`` predictions; a signal trips after ``consecutive_breaches`` breaching windows
in a row and clears only once a window is back under ``clear_fraction`` of the limit
(hysteresis). A window with too few predictions changes nothing. Pure functions over plain data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from monitoring.settings import WatchdogPolicy


@dataclass(frozen=True)
class StreakState:
    consecutive: int = 0
    breaching: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> StreakState:
        if not data:
            return cls()
        return cls(consecutive=int(data.get("consecutive", 0)), breaching=bool(data.get("breaching", False)))


def streak_update(state: StreakState, value: float | None, limit: float, samples: int,
                  policy: WatchdogPolicy) -> StreakState:
    """One evaluation of a thresholded signal; too few samples leaves the state as it was."""
    if value is None or samples < policy.min_requests:
        return state
    if state.breaching:
        if value <= policy.clear_fraction * limit:
            return StreakState()
        return StreakState(state.consecutive + (value > limit), True)
    if value > limit:
        consecutive = state.consecutive + 1
        return StreakState(consecutive, consecutive >= policy.consecutive_breaches)
    return StreakState()


@dataclass(frozen=True)
class ServiceNumbers:
    requests: int
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    error_rate: float | None


def summarise_service(latencies_ms: Sequence[float], failed: Sequence[bool]) -> ServiceNumbers:
    """Latency percentiles and error rate of the predictions in a window."""
    if len(latencies_ms) != len(failed):
        raise ValueError("one failure flag per latency")
    if not latencies_ms:
        return ServiceNumbers(0, None, None, None)
    values = np.asarray(latencies_ms, dtype=float)
    return ServiceNumbers(
        requests=len(values),
        latency_p95_ms=float(np.percentile(values, 95)),
        latency_p99_ms=float(np.percentile(values, 99)),
        error_rate=float(np.mean(np.asarray(failed, dtype=bool))),
    )

"""Monitoring windows and the per-window numbers computed from them: pure functions, no I/O.

Windows are aligned to multiples of ``window_minutes`` since the Unix epoch (UTC), so every run,
re-run and backfill cuts time into the same windows. A run over ``[start, end)`` owns the windows
that END inside ``(start, end]``: each window is computed exactly once, by the first run after it
closed, whatever the run's interval length.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from monitoring import metric_names

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PERCENTILES = {metric_names.LATENCY_P50: 0.50, metric_names.LATENCY_P95: 0.95, metric_names.LATENCY_P99: 0.99}


@dataclass(frozen=True, order=True)
class Window:
    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def _check(moment: datetime, label: str) -> None:
    if moment.tzinfo is None:
        raise ValueError(f"{label} {moment!r} is naive: pass a timezone-aware UTC time")


def window_containing(moment: datetime, minutes: int) -> Window:
    """The aligned window that ``moment`` falls in."""
    _check(moment, "time")
    if minutes <= 0:
        raise ValueError(f"window length must be positive, not {minutes} minutes")
    size = timedelta(minutes=minutes)
    offset = moment - _EPOCH  # whole microseconds: Airflow's pendulum times subtract to an Interval
    micros = (offset.days * 86_400 + offset.seconds) * 1_000_000 + offset.microseconds
    size_micros = minutes * 60_000_000
    start = _EPOCH + timedelta(microseconds=micros // size_micros * size_micros)
    return Window(start, start + size)


def windows_ending_in(start: datetime, end: datetime, minutes: int) -> list[Window]:
    """The aligned windows whose end lies in ``(start, end]``, oldest first."""
    _check(start, "start")
    _check(end, "end")
    if end <= start:
        raise ValueError(f"end {end.isoformat()} must be after start {start.isoformat()}")
    size = timedelta(minutes=minutes)
    window = window_containing(start, minutes)  # ends after start
    windows = []
    while window.end <= end:
        windows.append(window)
        window = Window(window.end, window.end + size)
    return windows


def latest_closed_window(now: datetime, minutes: int) -> Window:
    """The most recent window that has ended at ``now``."""
    current = window_containing(now, minutes)
    return Window(current.start - timedelta(minutes=minutes), current.start)


def latency_percentiles(latencies_ms) -> dict[str, float]:
    """p50/p95/p99 by linear interpolation (what PostgreSQL's ``percentile_cont`` computes)."""
    values = np.asarray(latencies_ms, dtype=float)
    if values.size == 0:
        return {}
    return {name: float(np.percentile(values, q * 100)) for name, q in PERCENTILES.items()}


def service_metrics(
    window: Window, requests: int, errors: int, percentiles: dict[str, float], latency_samples: int
) -> dict[str, tuple[float | None, int]]:
    """Metric name -> (value, sample count) for the traffic of one version in one window.

    ``percentiles`` come from the ``latency_samples`` online requests only: batch rows carry an
    amortised latency and would hide a slow API. Requests, error rate and throughput count all.
    """
    if requests <= 0:
        return {}
    metrics: dict[str, tuple[float | None, int]] = {
        metric_names.REQUESTS: (float(requests), requests),
        metric_names.ERROR_RATE: (errors / requests, requests),
        metric_names.THROUGHPUT: (requests / window.seconds, requests),
    }
    for name, value in percentiles.items():
        metrics[name] = (value, latency_samples)
    return metrics


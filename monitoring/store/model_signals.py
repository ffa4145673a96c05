"""Per model and version, the newest window of every metric; per model, open alerts and the
watchdog's quality test and last evaluation: for /metrics.

One grouped query over ``metric_windows`` (windows that ended in the last ``LOOKBACK``), one
over ``alerts``. The API reads them in a background thread (``monitoring.serving.model_signals``),
never at scrape time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import and_, func, select

from monitoring.store.engine import session_scope
from monitoring.store.tables import Alert, MetricWindow, ModelControl

LOOKBACK = timedelta(days=7)  # an older window is no signal any more


class Signal(NamedTuple):
    model_name: str
    model_version: int
    metric: str
    value: float | None
    sample_count: int
    window_end: datetime


class Watched(NamedTuple):
    """The watchdog's state of one model: its quality test (SPRT) and its last evaluation."""

    model_name: str
    last_evaluated_at: datetime | None
    test_breaching: bool  # the test tripped and no test has found the version healthy since
    test_llr: float  # the running log-likelihood ratio (trips at the upper bound)
    test_labels: int  # labels the running test has seen


class Signals(NamedTuple):
    latest: list[Signal]
    open_alerts: dict[str, int]  # model -> firing alerts
    watched: list[Watched] = []


def read_signals(url: str, *, now: datetime) -> Signals:
    """The newest window of each (model, version, metric) and the firing alerts per model."""
    with session_scope(url) as session:
        newest = (
            select(MetricWindow.model_name, MetricWindow.model_version, MetricWindow.metric,
                   func.max(MetricWindow.window_end).label("window_end"))
            .where(MetricWindow.window_end >= now - LOOKBACK)
            .group_by(MetricWindow.model_name, MetricWindow.model_version, MetricWindow.metric)
            .subquery()
        )
        rows = session.execute(
            select(MetricWindow.model_name, MetricWindow.model_version, MetricWindow.metric,
                   MetricWindow.value, MetricWindow.sample_count, MetricWindow.window_end)
            .join(newest, and_(MetricWindow.model_name == newest.c.model_name,
                               MetricWindow.model_version == newest.c.model_version,
                               MetricWindow.metric == newest.c.metric,
                               MetricWindow.window_end == newest.c.window_end))
            .order_by(MetricWindow.model_name, MetricWindow.model_version, MetricWindow.metric,
                      MetricWindow.window_start.desc())
        ).all()
        seen: set[tuple] = set()
        latest = []
        for row in rows:  # two windows ending together (different starts): the shortest counts
            key = (row.model_name, row.model_version, row.metric)
            if key not in seen:
                seen.add(key)
                latest.append(Signal(*row))
        firing = dict(session.execute(
            select(Alert.model_name, func.count()).where(Alert.state == "firing")
            .group_by(Alert.model_name)
        ).all())
        watched = [
            Watched(row.model_name, row.last_evaluated_at,
                    bool((row.detector_state or {}).get("quality", {}).get("breaching", False)),
                    float((row.detector_state or {}).get("quality", {}).get("llr", 0.0)),
                    int((row.detector_state or {}).get("quality", {}).get("labels", 0)))
            for row in session.execute(
                select(ModelControl.model_name, ModelControl.last_evaluated_at,
                       ModelControl.detector_state).order_by(ModelControl.model_name))
        ]
        return Signals(latest, firing, watched)

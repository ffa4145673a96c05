"""Read-side queries behind the dashboard: plain functions over Vigil's store returning DataFrames.

Built to stay fast on months of per-minute data: every query filters on an indexed prefix
(model name, metric, time), aggregates in SQL, and long ranges are downsampled into time buckets
(``bucket_seconds``) so a chart never gets more than a few hundred points per series. Works on
PostgreSQL and SQLite. Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial

import pandas as pd
from sqlalchemy import Connection, Integer, and_, cast, func, literal_column, select, union

from monitoring import metric_names
from monitoring.alerts.messages import render_plain
from monitoring.store.dialect import is_postgres
from monitoring.store.engine import get_engine, utcnow
from monitoring.store.tables import (
    AccessLog,
    Alert,
    DriftResult,
    MetricWindow,
    ModelControl,
    OutboxMessage,
    Prediction,
    RegistryEvent,
    VersionHealth,
)

BUCKETS = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86_400)
MAX_POINTS = 800
SERVICE_CHARTS = (metric_names.LATENCY_P50, metric_names.LATENCY_P95, metric_names.LATENCY_P99, metric_names.THROUGHPUT, metric_names.ERROR_RATE, metric_names.CPU_PERCENT,
                  metric_names.MEMORY_MB)  # what the Service page draws
AGGREGATE_WORK_MEM = "64MB"


def bucket_seconds(start: datetime, end: datetime, max_points: int = MAX_POINTS) -> int:
    """The finest bucket that keeps a series over [start, end) within ``max_points`` points."""
    span = max((end - start).total_seconds(), 1)
    return next((b for b in BUCKETS if span / b <= max_points), BUCKETS[-1])


def _connect(url: str) -> Connection:
    return get_engine(url).connect()


def _bucket(column, connection: Connection, seconds: int):
    """Start of the time bucket of ``column``, in epoch seconds.

    On PostgreSQL, ``date_part`` (a float) rather than ``extract`` (a numeric: several times
    slower over hundreds of thousands of rows), and enough memory for the aggregation to hash in
    memory instead of sorting on disk (for this transaction only).
    """
    if is_postgres(connection):
        connection.exec_driver_sql(f"SET LOCAL work_mem = '{AGGREGATE_WORK_MEM}'")
        return literal_column(f"floor(date_part('epoch', {column.name}) / {seconds}) * {seconds}")
    return literal_column(f"(cast(strftime('%s', {column.name}) as integer) / {seconds}) * {seconds}")


def _epoch_to_time(frame: pd.DataFrame, column: str = "bucket") -> pd.DataFrame:
    if not frame.empty:
        frame[column] = pd.to_datetime(frame[column].astype("int64"), unit="s", utc=True)
    return frame


def _frame(connection: Connection, query) -> pd.DataFrame:
    result = connection.execute(query)
    return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


# -- models and champions ----------------------------------------------------------------------
def model_names(url: str) -> list[str]:
    """Every model Vigil knows (registered versions, alias history or watchdog state)."""
    query = union(select(VersionHealth.model_name), select(RegistryEvent.model_name),
                  select(ModelControl.model_name))
    with _connect(url) as connection:
        return sorted(row[0] for row in connection.execute(query))


def champions(url: str, alias: str = "champion") -> pd.DataFrame:
    """Per model, the version holding ``alias`` by Vigil's history, since when, moved by whom."""
    ranked = select(
        RegistryEvent.model_name, RegistryEvent.to_version.label("version"),
        RegistryEvent.created_at.label("since"), RegistryEvent.kind, RegistryEvent.actor,
        func.row_number().over(partition_by=RegistryEvent.model_name,
                               order_by=(RegistryEvent.created_at.desc(), RegistryEvent.id.desc())).label("rank"),
    ).where(RegistryEvent.alias == alias).subquery()
    query = select(ranked.c.model_name, ranked.c.version, ranked.c.since, ranked.c.kind, ranked.c.actor) \
        .where(ranked.c.rank == 1).order_by(ranked.c.model_name)
    with _connect(url) as connection:
        return _frame(connection, query)


def model_control(url: str, model_name: str) -> dict | None:
    """The watchdog's state for the model (frozen, cooldown, consecutive breaches)."""
    with _connect(url) as connection:
        row = connection.execute(select(ModelControl).where(ModelControl.model_name == model_name)).mappings().first()
    return dict(row) if row else None


# -- metric windows ------------------------------------------------------------------------------
def latest_window_end(url: str, model_name: str, metric: str = metric_names.REQUESTS) -> datetime | None:
    """End of the newest window of ``metric`` (an index lookup, whatever the table's size)."""
    query = select(MetricWindow.window_end).where(
        MetricWindow.model_name == model_name, MetricWindow.metric == metric,
    ).order_by(MetricWindow.window_start.desc()).limit(1)
    with _connect(url) as connection:
        return connection.execute(query).scalar_one_or_none()


def recent_summary(url: str, model_name: str, metrics: Sequence[str], until: datetime,
                   minutes: int = 60) -> pd.DataFrame:
    """Per metric over the ``minutes`` before ``until``: mean, sample-weighted mean, samples, windows."""
    query = select(
        MetricWindow.metric,
        func.avg(MetricWindow.value).label("mean"),
        (func.sum(MetricWindow.value * MetricWindow.sample_count)
         / func.nullif(func.sum(MetricWindow.sample_count), 0)).label("weighted"),
        func.sum(MetricWindow.sample_count).label("samples"),
        func.count().label("windows"),
    ).where(
        MetricWindow.model_name == model_name, MetricWindow.metric.in_(list(metrics)),
        MetricWindow.window_start >= until - timedelta(minutes=minutes), MetricWindow.window_start < until,
    ).group_by(MetricWindow.metric)
    with _connect(url) as connection:
        return _frame(connection, query).set_index("metric") if metrics else pd.DataFrame()


def series(url: str, model_name: str, metrics: Sequence[str], start: datetime, end: datetime,
           bucket: int | None = None) -> pd.DataFrame:
    """Metric values per time bucket and version: ``bucket, model_version, metric, mean, weighted,
    samples`` (``weighted`` is the sample-weighted mean: the right one for quality metrics)."""
    bucket = bucket or bucket_seconds(start, end)
    with _connect(url) as connection:
        bucket_column = _bucket(MetricWindow.window_start, connection, bucket)
        query = select(
            bucket_column.label("bucket"), MetricWindow.model_version, MetricWindow.metric,
            func.avg(MetricWindow.value).label("mean"),
            (func.sum(MetricWindow.value * MetricWindow.sample_count)
             / func.nullif(func.sum(MetricWindow.sample_count), 0)).label("weighted"),
            func.sum(MetricWindow.sample_count).label("samples"),
        ).where(
            MetricWindow.model_name == model_name, MetricWindow.metric.in_(list(metrics)),
            MetricWindow.window_start >= start, MetricWindow.window_start < end,
        ).group_by(literal_column("1"), MetricWindow.model_version, MetricWindow.metric) \
            .order_by(literal_column("1"))
        frame = _frame(connection, query)
    for column in ("mean", "weighted"):
        frame[column] = frame[column].astype(float)
    return _epoch_to_time(frame)


def version_quality(url: str, model_name: str, metric: str) -> pd.DataFrame:
    """Each version's production quality: sample-weighted ``metric``, labelled samples, first/last window."""
    query = select(
        MetricWindow.model_version.label("version"),
        (func.sum(MetricWindow.value * MetricWindow.sample_count)
         / func.nullif(func.sum(MetricWindow.sample_count), 0)).label("production_" + metric),
        func.sum(MetricWindow.sample_count).label("labelled_samples"),
        func.min(MetricWindow.window_start).label("first_window"),
        func.max(MetricWindow.window_end).label("last_window"),
    ).where(MetricWindow.model_name == model_name, MetricWindow.metric == metric) \
        .group_by(MetricWindow.model_version)
    with _connect(url) as connection:
        return _frame(connection, query)


# -- drift ---------------------------------------------------------------------------------------
def drift_matrix(url: str, model_name: str, start: datetime, end: datetime,
                 bucket: int | None = None) -> pd.DataFrame:
    """Per time bucket and feature: share of windows drifted, mean score, windows."""
    bucket = bucket or bucket_seconds(start, end, max_points=200)
    with _connect(url) as connection:
        bucket_column = _bucket(DriftResult.window_start, connection, bucket)
        drifted = func.avg(cast(DriftResult.drifted, Integer)).label("drifted_share")
        query = select(
            bucket_column.label("bucket"), DriftResult.feature, drifted,
            func.avg(DriftResult.score).label("mean_score"), func.count().label("windows"),
        ).where(
            DriftResult.model_name == model_name,
            DriftResult.window_start >= start, DriftResult.window_start < end,
        ).group_by(literal_column("1"), DriftResult.feature).order_by(literal_column("1"))
        frame = _frame(connection, query)
    for column in ("drifted_share", "mean_score"):
        frame[column] = frame[column].astype(float)
    return _epoch_to_time(frame)


def drift_windows(url: str, model_name: str, limit: int = 50) -> pd.DataFrame:
    """The newest drift windows: ``window_start, window_end, model_version, features, drifted,
    report_path`` (newest first)."""
    newest = select(DriftResult.window_start).where(DriftResult.model_name == model_name) \
        .order_by(DriftResult.window_start.desc()).limit(1).scalar_subquery()
    with _connect(url) as connection:
        latest = connection.execute(select(newest)).scalar_one_or_none()
        if latest is None:
            return pd.DataFrame(columns=["window_start", "window_end", "model_version", "features",
                                         "drifted", "report_path"])
        query = select(
            DriftResult.window_start, DriftResult.window_end, DriftResult.model_version,
            func.count().label("features"),
            func.sum(cast(DriftResult.drifted, Integer)).label("drifted"),
            func.max(DriftResult.report_path).label("report_path"),
        ).where(
            DriftResult.model_name == model_name,
            DriftResult.window_start >= latest - timedelta(days=7),
        ).group_by(DriftResult.window_start, DriftResult.window_end, DriftResult.model_version) \
            .order_by(DriftResult.window_start.desc()).limit(limit)
        return _frame(connection, query)


def drift_window(url: str, model_name: str, window_start: datetime) -> pd.DataFrame:
    """Every feature's test in one drift window."""
    query = select(
        DriftResult.feature, DriftResult.method, DriftResult.score, DriftResult.threshold,
        DriftResult.drifted, DriftResult.reference_size, DriftResult.current_size,
        DriftResult.model_version, DriftResult.report_path,
    ).where(DriftResult.model_name == model_name, DriftResult.window_start == window_start) \
        .order_by(DriftResult.drifted.desc(), DriftResult.feature)
    with _connect(url) as connection:
        return _frame(connection, query)


# -- registry ------------------------------------------------------------------------------------
def registry_events(url: str, model_name: str, *, alias_only: bool = False, since: datetime | None = None,
                    limit: int = 1000) -> pd.DataFrame:
    """Registry events (train and alias moves) with who, when, why and the evidence, newest first."""
    query = select(
        RegistryEvent.id, RegistryEvent.created_at, RegistryEvent.kind, RegistryEvent.alias,
        RegistryEvent.from_version, RegistryEvent.to_version, RegistryEvent.actor, RegistryEvent.reason,
        RegistryEvent.evidence,
    ).where(RegistryEvent.model_name == model_name)
    if alias_only:
        query = query.where(RegistryEvent.alias.is_not(None))
    if since is not None:
        query = query.where(RegistryEvent.created_at >= since)
    query = query.order_by(RegistryEvent.created_at.desc(), RegistryEvent.id.desc()).limit(limit)
    with _connect(url) as connection:
        return _frame(connection, query)


def versions(url: str, model_name: str) -> pd.DataFrame:
    """Vigil's record of each version: health state and since, registration time, run, eval metrics."""
    query = select(
        VersionHealth.version, VersionHealth.state, VersionHealth.since, VersionHealth.registered_at,
        VersionHealth.run_id, VersionHealth.eval_metrics, VersionHealth.evidence,
    ).where(VersionHealth.model_name == model_name).order_by(VersionHealth.version)
    with _connect(url) as connection:
        return _frame(connection, query)


def production_record(moves: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """Pure: per version, how often and how long it held the alias, from alias moves (any order).

    Columns: ``version, times_champion, hours_champion, last_champion_until`` (None while it holds).
    """
    rows: dict[int, dict] = {}
    ordered = moves.sort_values(["created_at", "id"]) if not moves.empty else moves
    holder, held_since = None, None
    for move in ordered.itertuples():
        if holder is not None:
            record = rows.setdefault(holder, {"times_champion": 0, "hours_champion": 0.0})
            record["hours_champion"] += (move.created_at - held_since).total_seconds() / 3600
            record["last_champion_until"] = move.created_at
        if pd.notna(move.to_version):
            holder, held_since = int(move.to_version), move.created_at
            record = rows.setdefault(holder, {"times_champion": 0, "hours_champion": 0.0})
            record["times_champion"] += 1
        else:
            holder = None
    if holder is not None:
        rows[holder]["hours_champion"] += (now - held_since).total_seconds() / 3600
        rows[holder]["last_champion_until"] = None
    frame = pd.DataFrame([{"version": v, **r} for v, r in rows.items()],
                         columns=["version", "times_champion", "hours_champion", "last_champion_until"])
    return frame.sort_values("version").reset_index(drop=True)


def automatic_rollbacks(url: str, model_name: str, days: int = 30, now: datetime | None = None) -> pd.DataFrame:
    """Automatic rollbacks in the last ``days`` with their time to recover: from the first
    degradation alert about the rolled-back version (opened in the 24 h before) to the rollback."""
    now = now or utcnow()
    events = registry_events(url, model_name, alias_only=True, since=now - timedelta(days=days))
    rollbacks = events[events["kind"] == "auto_rollback"]
    with _connect(url) as connection:
        alerts = _frame(connection, select(Alert.kind, Alert.opened_at, Alert.details).where(
            Alert.model_name == model_name, Alert.kind == "degradation",
            Alert.opened_at >= now - timedelta(days=days + 1)))
    return time_to_recover(rollbacks, alerts)


def time_to_recover(rollbacks: pd.DataFrame, degradation_alerts: pd.DataFrame) -> pd.DataFrame:
    """Pure: each rollback with ``detected_at`` (earliest degradation alert opened in the 24 h
    before it) and ``minutes_to_recover`` (None when no such alert exists)."""
    rows = []
    for rollback in rollbacks.itertuples():
        opened = degradation_alerts["opened_at"] if not degradation_alerts.empty else pd.Series(dtype=object)
        before = opened[(opened <= rollback.created_at)
                        & (opened >= rollback.created_at - timedelta(hours=24))]
        detected = before.min() if not before.empty else None
        rows.append({"created_at": rollback.created_at, "from_version": rollback.from_version,
                     "to_version": rollback.to_version, "reason": rollback.reason, "detected_at": detected,
                     "minutes_to_recover": (rollback.created_at - detected).total_seconds() / 60
                     if detected is not None else None})
    return pd.DataFrame(rows, columns=["created_at", "from_version", "to_version", "reason", "detected_at",
                                       "minutes_to_recover"])


def recent_inputs(url: str, model_name: str, limit: int = 20) -> pd.DataFrame:
    """Feature rows of the newest successfully served predictions (for a smoke prediction)."""
    query = select(Prediction.features).where(
        Prediction.model_name == model_name, Prediction.status == "ok",
    ).order_by(Prediction.created_at.desc()).limit(limit)
    with _connect(url) as connection:
        rows = [row[0] for row in connection.execute(query)]
    return pd.DataFrame(rows)


# -- alerts and access -----------------------------------------------------------------------------
def alerts(url: str, model_name: str | None = None, state: str | None = None, limit: int = 200) -> pd.DataFrame:
    """Alerts, firing first then newest: key, kind, severity, state, title, times, Slack thread."""
    query = select(
        Alert.id, Alert.model_name, Alert.kind, Alert.severity, Alert.state, Alert.title, Alert.details,
        Alert.opened_at, Alert.updated_at, Alert.resolved_at, Alert.slack_channel, Alert.slack_thread_ts,
    )
    if model_name is not None:
        query = query.where(Alert.model_name == model_name)
    if state is not None:
        query = query.where(Alert.state == state)
    query = query.order_by((Alert.state == "firing").desc(), Alert.opened_at.desc()).limit(limit)
    with _connect(url) as connection:
        return _frame(connection, query)


def open_alert_counts(url: str) -> dict[str, int]:
    """Firing alerts per model."""
    query = select(Alert.model_name, func.count()).where(Alert.state == "firing").group_by(Alert.model_name)
    with _connect(url) as connection:
        return {name: count for name, count in connection.execute(query)}


def alert_messages(url: str, alert_ids: Sequence[int]) -> pd.DataFrame:
    """The outbox (Slack) messages of the alerts, oldest first, with the text Slack shows."""
    query = select(
        OutboxMessage.alert_id, OutboxMessage.model_name, OutboxMessage.kind, OutboxMessage.payload,
        OutboxMessage.created_at, OutboxMessage.delivered_at, OutboxMessage.attempts, OutboxMessage.last_error,
    ).where(OutboxMessage.alert_id.in_(list(alert_ids))).order_by(OutboxMessage.created_at, OutboxMessage.id)
    with _connect(url) as connection:
        frame = _frame(connection, query)
    frame["text"] = [render_plain(row.payload, model_name=row.model_name, kind=row.kind)
                     for row in frame.itertuples()]
    return frame


def access_log(url: str, *, channel: str | None = None, allowed: bool | None = None,
               limit: int = 50) -> pd.DataFrame:
    """Recent operator actions asked for, allowed or refused, newest first."""
    query = select(AccessLog.created_at, AccessLog.actor, AccessLog.action, AccessLog.model_name,
                   AccessLog.allowed, AccessLog.detail, AccessLog.channel)
    conditions = []
    if channel is not None:
        conditions.append(AccessLog.channel == channel)
    if allowed is not None:
        conditions.append(AccessLog.allowed == allowed)
    if conditions:
        query = query.where(and_(*conditions))
    query = query.order_by(AccessLog.created_at.desc(), AccessLog.id.desc()).limit(limit)
    with _connect(url) as connection:
        return _frame(connection, query)


# -- overview ------------------------------------------------------------------------------------
OVERVIEW_METRICS = (metric_names.ACCURACY, metric_names.ROC_AUC, metric_names.RMSE, metric_names.MAE, metric_names.LATENCY_P95, metric_names.ERROR_RATE, metric_names.DRIFT_SHARE,
                    metric_names.THROUGHPUT)


def primary_metric(eval_metrics: dict) -> str:
    """The metric a version is judged by: accuracy for a classifier, RMSE for a regressor."""
    return metric_names.RMSE if metric_names.RMSE in eval_metrics and metric_names.ACCURACY not in eval_metrics else metric_names.ACCURACY


def judge(value: float | None, limit: float | None, *, lower_is_better: bool) -> str:
    """Pure: ``ok``, ``breach`` or ``no data`` for a value against its limit."""
    if value is None or pd.isna(value) or limit is None:
        return "no data"
    breached = value > limit if lower_is_better else value < limit
    return "breach" if breached else "ok"


def _summary_value(recent: pd.DataFrame, key: str, column: str = "mean") -> float | None:
    found = key in recent.index and pd.notna(recent.at[key, column])
    return float(recent.at[key, column]) if found else None


def overview(url: str, settings, now: datetime | None = None, minutes: int = 60) -> pd.DataFrame:
    """One row per model: champion and since when, its health, the last ``minutes`` of quality,
    p95 latency, error rate and drift share against their limits, open alerts, automatic
    rollbacks in the last 30 days and their mean time to recover."""
    now = now or utcnow()
    champs = champions(url, settings.champion_alias).set_index("model_name")
    firing = open_alert_counts(url)
    rows = []
    for name in model_names(url):
        version = champs["version"].get(name)
        version = int(version) if version is not None and pd.notna(version) else None
        record = versions(url, name).set_index("version")
        evals = record["eval_metrics"].get(version, {}) if version is not None else {}
        metric = primary_metric(evals or {})
        until = latest_window_end(url, name)
        recent = recent_summary(url, name, OVERVIEW_METRICS, until, minutes) if until else pd.DataFrame()
        value = partial(_summary_value, recent)
        baseline = evals.get(metric)
        quality_limit = None
        if baseline is not None:
            quality_limit = (baseline + settings.watchdog.quality_abs_drop if metric in metric_names.LOWER_IS_BETTER
                             else baseline - settings.watchdog.quality_abs_drop)
        quality = value(metric, "weighted")
        rollbacks = automatic_rollbacks(url, name, now=now)
        rows.append({
            "model": name, "champion": version,
            "champion_since": champs["since"].get(name), "moved_by": champs["actor"].get(name),
            "health": record["state"].get(version, "unknown") if version is not None else "unknown",
            "as_of": until, "quality_metric": metric, "quality": quality, "quality_limit": quality_limit,
            "quality_state": judge(quality, quality_limit, lower_is_better=metric in metric_names.LOWER_IS_BETTER),
            "labelled": int(recent.at[metric, "samples"]) if metric in recent.index else 0,
            "latency_p95_ms": value(metric_names.LATENCY_P95), "latency_p95_limit": settings.watchdog.latency_p95_slo_ms,
            "latency_state": judge(value(metric_names.LATENCY_P95), settings.watchdog.latency_p95_slo_ms, lower_is_better=True),
            "error_rate": value(metric_names.ERROR_RATE), "error_rate_limit": settings.watchdog.error_rate_limit,
            "error_state": judge(value(metric_names.ERROR_RATE), settings.watchdog.error_rate_limit, lower_is_better=True),
            "drift_share": value(metric_names.DRIFT_SHARE), "drift_share_limit": settings.watchdog.drift_share,
            "drift_state": judge(value(metric_names.DRIFT_SHARE), settings.watchdog.drift_share, lower_is_better=True),
            "throughput_rps": value(metric_names.THROUGHPUT),
            "open_alerts": firing.get(name, 0),
            "auto_rollbacks_30d": len(rollbacks),
            "mean_minutes_to_recover": rollbacks["minutes_to_recover"].dropna().mean()
            if not rollbacks.empty else None,
        })
    return pd.DataFrame(rows)

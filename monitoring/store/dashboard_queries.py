"""Read-side queries behind the dashboard: plain functions over Vigil's store returning DataFrames.

Built to stay fast on months of per-minute data: every query filters on an indexed prefix
(model name, metric, time), aggregates in SQL, and long ranges are downsampled into time buckets
(``bucket_seconds``) so a chart never gets more than a few hundred points per series. Works on
PostgreSQL and SQLite. Nothing here writes. The per-model summaries (the Overview page, the
production record) built from these are in ``monitoring.store.dashboard_summaries``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import Connection, Integer, and_, cast, func, literal_column, select, union

from monitoring import metric_names
from monitoring.alerts.messages import render_plain
from monitoring.metrics.windows import PERCENTILES
from monitoring.store import latency_histograms
from monitoring.store.dialect import is_postgres
from monitoring.store.engine import get_engine
from monitoring.store.served import SERVED
from monitoring.store.tables import (
    AccessLog,
    Alert,
    DataQualityCheck,
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
    """Per metric over the ``minutes`` before ``until``: mean, sample-weighted mean, samples, windows.

    Latency percentiles are those of the range (the windows' histograms merged) where the windows
    have histograms, not a mean of the windows' percentiles."""
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
    if not metrics:
        return pd.DataFrame()
    with _connect(url) as connection:
        frame = _frame(connection, query).set_index("metric")
        if any(metric in PERCENTILES for metric in metrics):
            merged = latency_histograms.merged_percentiles(connection, model_name, until - timedelta(minutes=minutes),
                                                           until, by_version=False)
            for row in merged.itertuples():
                if row.metric in frame.index:
                    frame.loc[row.metric, ["mean", "weighted"]] = row.value
    return frame


def series(url: str, model_name: str, metrics: Sequence[str], start: datetime, end: datetime,
           bucket: int | None = None) -> pd.DataFrame:
    """Metric values per time bucket and version: ``bucket, model_version, metric, mean, weighted,
    samples`` (``weighted`` is the sample-weighted mean: the right one for quality metrics; a
    bucket's latency percentiles are its windows' histograms merged, where they have them)."""
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
        merged = latency_histograms.merged_percentiles(connection, model_name, start, end, bucket) \
            if any(metric in PERCENTILES for metric in metrics) else None
    for column in ("mean", "weighted"):
        frame[column] = frame[column].astype(float)
    frame = _epoch_to_time(frame)
    if merged is not None and not merged.empty and not frame.empty:
        frame = _with_merged_latency(frame, merged)
    return frame


def _with_merged_latency(frame: pd.DataFrame, merged: pd.DataFrame) -> pd.DataFrame:
    """The series' latency percentiles replaced by the bucket's merged histograms where they exist."""
    keys = ["bucket", "model_version", "metric"]
    joined = frame.merge(merged[[*keys, "value"]], on=keys, how="left")
    found = joined["value"].notna()
    joined.loc[found, "mean"] = joined.loc[found, "value"]
    joined.loc[found, "weighted"] = joined.loc[found, "value"]
    return joined.drop(columns="value")


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


def data_quality_matrix(url: str, model_name: str, start: datetime, end: datetime,
                        bucket: int | None = None) -> pd.DataFrame:
    """Per time bucket and check of a feature ("income: missing"): share of windows in which the
    check failed (``drifted_share``, as for drift), mean rate (``mean_score``), windows."""
    bucket = bucket or bucket_seconds(start, end, max_points=200)
    with _connect(url) as connection:
        bucket_column = _bucket(DataQualityCheck.window_start, connection, bucket)
        query = select(
            bucket_column.label("bucket"), DataQualityCheck.feature, DataQualityCheck.kind,
            func.avg(cast(DataQualityCheck.failed, Integer)).label("drifted_share"),
            func.avg(DataQualityCheck.rate).label("mean_score"), func.count().label("windows"),
        ).where(
            DataQualityCheck.model_name == model_name,
            DataQualityCheck.window_start >= start, DataQualityCheck.window_start < end,
        ).group_by(literal_column("1"), DataQualityCheck.feature, DataQualityCheck.kind) \
            .order_by(literal_column("1"))
        frame = _frame(connection, query)
    for column in ("drifted_share", "mean_score"):
        frame[column] = frame[column].astype(float)
    frame["feature"] = frame["feature"] + ": " + frame["kind"].str.replace("_", " ")
    return _epoch_to_time(frame.drop(columns=["kind"]))


def data_quality_newest(url: str, model_name: str) -> pd.DataFrame:
    """The checks of the model's newest checked window, failed ones first."""
    newest = select(func.max(DataQualityCheck.window_start)).where(
        DataQualityCheck.model_name == model_name).scalar_subquery()
    query = select(
        DataQualityCheck.window_start, DataQualityCheck.model_version, DataQualityCheck.feature,
        DataQualityCheck.kind, DataQualityCheck.rate, DataQualityCheck.reference_rate,
        DataQualityCheck.threshold, DataQualityCheck.failed, DataQualityCheck.rows,
    ).where(DataQualityCheck.model_name == model_name, DataQualityCheck.window_start == newest) \
        .order_by(DataQualityCheck.failed.desc(), DataQualityCheck.feature, DataQualityCheck.kind)
    with _connect(url) as connection:
        return _frame(connection, query)


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
            DriftResult.feature.not_in(metric_names.OUTPUT_DRIFT),  # "3/14 drifted" counts the inputs
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


def recent_inputs(url: str, model_name: str, limit: int = 20) -> pd.DataFrame:
    """Feature rows of the newest successfully served predictions (for a smoke prediction)."""
    query = select(Prediction.features).where(
        Prediction.model_name == model_name, Prediction.status == "ok", SERVED,
    ).order_by(Prediction.created_at.desc()).limit(limit)
    with _connect(url) as connection:
        rows = [row[0] for row in connection.execute(query)]
    return pd.DataFrame(rows)


# -- alerts and access -----------------------------------------------------------------------------
def alerts(url: str, model_name: str | None = None, state: str | None = None, limit: int = 200) -> pd.DataFrame:
    """Alerts, firing first then newest: key, kind, severity, state, title, times, Slack thread."""
    query = select(
        Alert.id, Alert.alert_key, Alert.model_name, Alert.kind, Alert.severity, Alert.state, Alert.title,
        Alert.details,
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
               model_name: str | None = None, actions: tuple[str, ...] = (), limit: int = 50) -> pd.DataFrame:
    """Recent operator actions asked for, allowed or refused, newest first (of ``actions`` only,
    when named)."""
    query = select(AccessLog.created_at, AccessLog.actor, AccessLog.action, AccessLog.model_name,
                   AccessLog.allowed, AccessLog.detail, AccessLog.channel)
    conditions = []
    if model_name is not None:
        conditions.append(AccessLog.model_name == model_name)
    if actions:
        conditions.append(AccessLog.action.in_(actions))
    if channel is not None:
        conditions.append(AccessLog.channel == channel)
    if allowed is not None:
        conditions.append(AccessLog.allowed == allowed)
    if conditions:
        query = query.where(and_(*conditions))
    query = query.order_by(AccessLog.created_at.desc(), AccessLog.id.desc()).limit(limit)
    with _connect(url) as connection:
        return _frame(connection, query)

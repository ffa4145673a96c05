"""Vigil's own tables, as SQLAlchemy 2 typed models.

Every row is keyed by model name: Vigil watches many models at once. The schema is created and
changed only through the Alembic migrations in ``migrations/``; these classes describe it.
Times are stored as timezone-aware UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# BIGINT on PostgreSQL, INTEGER on SQLite (where only INTEGER PRIMARY KEY autoincrements)
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every backend (SQLite would hand back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: Vigil stores timezone-aware UTC times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict] = {datetime: UTCDateTime(), dict[str, Any]: JSON}


class Prediction(Base):
    """One prediction served by the API or a batch run, with what produced it and how fast.

    The key is (id, created_at): on PostgreSQL the table is partitioned by day on ``created_at``
    (see ``monitoring.store.partitions``), and a partitioned table's key must hold its partition
    column. Every writer of an id gives it the time it was answered, so a row sent again has the
    same key and is recognised as already stored.
    """

    __tablename__ = "predictions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the prediction id given out
    model_name: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(primary_key=True)
    features: Mapped[dict[str, Any]]
    prediction: Mapped[str | None] = mapped_column(String(200))  # class label (or number as text)
    score: Mapped[float | None]  # positive-class probability, or the regression output
    latency_ms: Mapped[float]
    status: Mapped[str] = mapped_column(String(16), default="ok")  # ok | error
    error: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16), default="api")  # api | batch | simulate
    # the client key it was made for (None: a batch run, or a request under VIGIL_OPEN_ACCESS)
    client: Mapped[str | None] = mapped_column(String(64))
    key_id: Mapped[int | None]
    # who answered: the champion, a canary's challenger, or a shadow (never returned to the caller)
    role: Mapped[str] = mapped_column(String(16), server_default="champion")
    paired_id: Mapped[str | None] = mapped_column(String(36))  # a shadow row: the champion's id

    __table_args__ = (
        Index("ix_predictions_model_time", "model_name", "created_at", "model_version"),
        Index("ix_predictions_paired", "paired_id"),
    )


class PredictionSegment(Base):
    """A typed, columnar copy of logged predictions of one model version made in one UTC minute.

    ``data`` is one Arrow IPC stream, compressed whole with LZ4 (``monitoring.store.feature_segments``
    says what it holds and why). Monitoring reads a window's features and outputs from here instead
    of parsing every row's JSON; ``predictions`` stays the record. Every row of a segment is a stored
    prediction: the log's insert writes the segment of the rows it really inserted, in the same
    transaction; batch scoring replaces its interval's segments (``batch_key``). ``last_at``: the
    newest row's time (retention deletes a segment once all its rows are due).
    """

    __tablename__ = "prediction_segments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[int]
    minute: Mapped[datetime]  # every row was made in [minute, minute + 1 min)
    last_at: Mapped[datetime]
    rows: Mapped[int]
    raw_size: Mapped[int]  # bytes of the stream before compression
    batch_key: Mapped[str | None] = mapped_column(String(36))
    data: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (
        Index("ix_prediction_segments_model_minute", "model_name", "model_version", "minute"),
        Index("ix_prediction_segments_last", "last_at"),  # retention
        Index("ix_prediction_segments_batch", "batch_key"),
    )


class Feedback(Base):
    """The true outcome for a prediction id; it may arrive minutes or days after the prediction.

    No foreign key (the prediction log is partitioned on PostgreSQL); the API stores a label only
    for a prediction it finds (``monitoring.store.feedback``). The first label stands; a
    correction changes ``label`` and sets ``corrected_at`` (the old value is in the access log).
    ``trusted``: whether the key that sent it was trusted for decisions (the watchdog counts only
    those).
    """

    __tablename__ = "feedback"

    prediction_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    model_name: Mapped[str | None] = mapped_column(String(200))
    label: Mapped[str] = mapped_column(String(200))
    received_at: Mapped[datetime]
    client: Mapped[str | None] = mapped_column(String(64))
    key_id: Mapped[int | None]
    trusted: Mapped[bool] = mapped_column(Boolean, default=True)
    corrected_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_feedback_received", "received_at"),)


class Release(Base):
    """One shadow or canary release of a challenger version against the champion.

    ``state``: running, then promoted | aborted | inconclusive | stopped. At most one release per
    model runs at a time (checked under the model's lock). ``alert_id``: the alert whose Slack
    thread carries the release from start to verdict.
    """

    __tablename__ = "releases"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(200))
    mode: Mapped[str] = mapped_column(String(16))  # shadow | canary
    challenger_version: Mapped[int]
    champion_version: Mapped[int]
    share: Mapped[float]  # canary: requests answered by the challenger; shadow: requests shadowed
    state: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime]
    started_by: Mapped[str] = mapped_column(String(200))
    bake_until: Mapped[datetime]  # no promotion before
    ended_at: Mapped[datetime | None]
    ended_by: Mapped[str | None] = mapped_column(String(200))
    verdict_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    alert_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("alerts.id"))
    updated_at: Mapped[datetime]

    __table_args__ = (Index("ix_releases_model_state", "model_name", "state"),)


class MetricWindow(Base):
    """One metric of one model version over one time window. Upserted on its natural key."""

    __tablename__ = "metric_windows"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[int]
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    metric: Mapped[str] = mapped_column(String(64))
    value: Mapped[float | None]
    sample_count: Mapped[int] = mapped_column(Integer, default=0)
    computed_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint(
            "model_name", "model_version", "window_start", "window_end", "metric",
            name="uq_metric_windows_key",
        ),
        Index("ix_metric_windows_model_metric_time", "model_name", "metric", "window_start"),
        Index("ix_metric_windows_end", "window_end"),  # retention
    )


class DriftResult(Base):
    """Drift of one feature in one window against the version's reference data."""

    __tablename__ = "drift_results"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[int]
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    feature: Mapped[str] = mapped_column(String(200))
    method: Mapped[str] = mapped_column(String(64))
    score: Mapped[float]
    threshold: Mapped[float]
    drifted: Mapped[bool] = mapped_column(Boolean)
    reference_size: Mapped[int]
    current_size: Mapped[int]
    computed_at: Mapped[datetime]
    report_path: Mapped[str | None] = mapped_column(String(500))  # Evidently HTML for the window

    __table_args__ = (
        UniqueConstraint(
            "model_name", "model_version", "window_start", "window_end", "feature",
            name="uq_drift_results_key",
        ),
        Index("ix_drift_results_model_time", "model_name", "window_start"),
        Index("ix_drift_results_end", "window_end"),  # retention
    )


class DataQualityCheck(Base):
    """One data-quality check (missing, out of range, unseen category) of one feature in one window,
    against the rate the version's reference data shows (``monitoring.metrics.data_quality``)."""

    __tablename__ = "data_quality_checks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[int]
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    feature: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))  # missing | out_of_range | unseen_category
    rate: Mapped[float]
    reference_rate: Mapped[float]
    threshold: Mapped[float]
    failed: Mapped[bool] = mapped_column(Boolean)
    rows: Mapped[int]
    computed_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint(
            "model_name", "model_version", "window_start", "window_end", "feature", "kind",
            name="uq_data_quality_checks_key",
        ),
        Index("ix_data_quality_checks_model_time", "model_name", "window_start"),
        Index("ix_data_quality_checks_end", "window_end"),  # retention
    )


class LatencyHistogram(Base):
    """The online latencies of one model version in one window, counted in log-spaced buckets
    (``monitoring.metrics.latency_sketch``): merged, they give any longer range's percentiles."""

    __tablename__ = "latency_histograms"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[int]
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    counts: Mapped[dict[str, Any]]  # bucket index (as text) -> latencies in it
    samples: Mapped[int]
    computed_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("model_name", "model_version", "window_start", "window_end",
                         name="uq_latency_histograms_key"),
        Index("ix_latency_histograms_model_time", "model_name", "window_start"),
        Index("ix_latency_histograms_end", "window_end"),  # retention
    )


class RegistryEvent(Base):
    """History of which version held an alias: MLflow keeps none, "last known good" comes from here."""

    __tablename__ = "registry_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(200))
    alias: Mapped[str | None] = mapped_column(String(64))  # None for a plain registration
    from_version: Mapped[int | None]
    to_version: Mapped[int | None]
    kind: Mapped[str] = mapped_column(String(32))  # train | promote | manual_rollback | auto_rollback
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text, default="")
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]

    __table_args__ = (Index("ix_registry_events_model_time", "model_name", "created_at"),)


class VersionHealth(Base):
    """What Vigil knows about one registered version: its registration metrics and its health."""

    __tablename__ = "version_health"

    model_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    state: Mapped[str] = mapped_column(String(16), default="unknown")  # unknown|healthy|degraded|bad
    since: Mapped[datetime]
    registered_at: Mapped[datetime | None]
    run_id: Mapped[str | None] = mapped_column(String(64))
    eval_metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ModelControl(Base):
    """Per-model watchdog state and the row that is locked for every alias move."""

    __tablename__ = "model_controls"

    model_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    frozen: Mapped[bool] = mapped_column(Boolean, default=False)  # automatic actions need a human
    frozen_reason: Mapped[str | None] = mapped_column(Text)
    cooldown_until: Mapped[datetime | None]
    consecutive_breaches: Mapped[int] = mapped_column(Integer, default=0)
    detector_state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    last_evaluated_at: Mapped[datetime | None]
    updated_at: Mapped[datetime | None]
    # evaluations skipped in a row because MLflow did not answer: since when, the last one, why
    skipped_since: Mapped[datetime | None]
    last_skipped_at: Mapped[datetime | None]
    skip_reason: Mapped[str | None] = mapped_column(Text)


class ModelPolicy(Base):
    """An operator's overrides of the watchdog's policy for one model: only the fields set, by name
    (``monitoring.watchdog.model_policy`` merges them over the environment's defaults)."""

    __tablename__ = "model_policies"

    model_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    overrides: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(200))


class WatchdogHeartbeat(Base):
    """One watchdog process's last completed run (``vigil watch``, ``vigil watchdog``, a DAG task).

    Read by whoever must notice a silent watchdog: the API's readiness and metrics, the monitoring
    DAG, ``vigil watchdog-health``. Rows of processes gone for a day are deleted by the next beat.
    """

    __tablename__ = "watchdog_heartbeats"

    watcher: Mapped[str] = mapped_column(String(200), primary_key=True)  # host:pid
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int]
    started_at: Mapped[datetime]  # its first run
    beat_at: Mapped[datetime]  # the end of its last run
    evaluated: Mapped[int] = mapped_column(Integer, default=0)  # models, in the last run
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index("ix_watchdog_heartbeats_beat", "beat_at"),)


class Alert(Base):
    """An alert, de-duplicated by its key: one row per thing that is (or was) wrong."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    alert_key: Mapped[str] = mapped_column(String(300), unique=True)
    model_name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))  # degradation | drift | rollback | no_target | ...
    severity: Mapped[str] = mapped_column(String(16))  # info | warning | critical
    state: Mapped[str] = mapped_column(String(16), default="firing")  # firing | resolved
    title: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    opened_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    last_notified_at: Mapped[datetime | None]
    slack_channel: Mapped[str | None] = mapped_column(String(100))
    slack_thread_ts: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index("ix_alerts_model_state", "model_name", "state"),)


class OutboxMessage(Base):
    """A notification written in the same transaction as the event it announces.

    Delivered to Slack with retries; ``delivered_at`` stays NULL until Slack accepted it.
    """

    __tablename__ = "notification_outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    alert_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("alerts.id"))
    model_name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))  # firing | update | resolved | followup | ...
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # text + Block Kit blocks
    created_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_outbox_pending", "delivered_at", "next_attempt_at"),)


class AccessLog(Base):
    """Operator actions asked for through the API or the dashboard, allowed or refused."""

    __tablename__ = "access_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    model_name: Mapped[str | None] = mapped_column(String(200))
    allowed: Mapped[bool] = mapped_column(Boolean)
    detail: Mapped[str] = mapped_column(Text, default="")
    channel: Mapped[str] = mapped_column(String(32))  # api | dashboard | cli
    created_at: Mapped[datetime]

    __table_args__ = (Index("ix_access_log_created", "created_at"),)  # retention


class ClientKey(Base):
    """A client's key for the API: only the SHA-256 of the secret is kept (``monitoring.client_keys``)."""

    __tablename__ = "client_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64))  # the client (several keys: rotation)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)  # shown, and used to find the key
    digest: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(String(200))  # space-separated
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (Index("ix_client_keys_name", "name"),)


class ReferenceData(Base):
    """Where the reference dataset of a model version lives (drift is measured against it)."""

    __tablename__ = "reference_data"

    model_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    uri: Mapped[str] = mapped_column(String(500))  # a parquet file
    rows: Mapped[int]
    created_at: Mapped[datetime]


class RouteDelivery(Base):
    """One outbox message's delivery to one alert route (webhook, PagerDuty, e-mail).

    Slack keeps its state on the outbox row itself; every other route has its own row here, so a
    route that is down delays only its own messages. ``next_attempt_at`` doubles as the lease.
    """

    __tablename__ = "route_deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("notification_outbox.id", ondelete="CASCADE"))
    route: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("message_id", "route", name="uq_route_deliveries_message_route"),
        Index("ix_route_deliveries_pending", "route", "delivered_at", "message_id"),
    )

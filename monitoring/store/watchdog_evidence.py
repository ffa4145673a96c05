"""What the watchdog reads from the store: a champion's raw evidence since it took over.

The watchdog judges the prediction log and the feedback themselves, not the metric windows, so
it sees a bad version within a minute. Each function reads in the caller's session (the
watchdog holds the model's lock) and returns plain values. Only trusted labels (sent with a key
holding the ``trusted`` scope) are evidence; ``untrusted_labels`` counts the others.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from monitoring import metric_names
from monitoring.store.served import SERVED
from monitoring.store.tables import (
    AccessLog,
    DriftResult,
    Feedback,
    MetricWindow,
    Prediction,
    RegistryEvent,
    VersionHealth,
)


class Label(NamedTuple):
    """A label received for one of the champion's predictions, in the order received."""

    received_at: datetime
    prediction_id: str
    prediction: str | None
    label: str


class Served(NamedTuple):
    """One prediction as the latency / error-rate detectors see it."""

    created_at: datetime
    latency_ms: float
    status: str


class LabelledInput(NamedTuple):
    """A labelled prediction with its input features (to score another version on)."""

    features: dict[str, Any]
    prediction: str | None
    label: str


def watched_model_names(session: Session, alias: str) -> list[str]:
    """Models Vigil knows: an ``alias`` move in its history, or a version it registered or adopted."""
    moved = select(RegistryEvent.model_name).where(RegistryEvent.alias == alias)
    known = select(VersionHealth.model_name)
    return sorted(set(session.scalars(moved.union(known))))


def labelled_outcomes(
    session: Session, name: str, version: int, *, before: datetime | None = None,
    after: datetime | None = None, limit: int,
) -> list[tuple[str | None, str]]:
    """(prediction, label) of the version's labelled predictions made before ``before`` (the
    newest ``limit``) or at or after ``after`` (the oldest ``limit``)."""
    query = (
        select(Prediction.prediction, Feedback.label)
        .join(Feedback, Feedback.prediction_id == Prediction.id)
        .where(Prediction.model_name == name, Prediction.model_version == version, Feedback.trusted.is_(True))
    )
    if before is not None:
        query = query.where(Prediction.created_at < before).order_by(Prediction.created_at.desc())
    if after is not None:
        query = query.where(Prediction.created_at >= after).order_by(Prediction.created_at)
    return [(prediction, label) for prediction, label in session.execute(query.limit(limit))]


def labels_after(
    session: Session, name: str, version: int, since: datetime, cursor: tuple[datetime, str] | None
) -> list[Label]:
    """Labels of the version's predictions made since ``since``, received after ``cursor``
    (a received time and a prediction id), in the order received."""
    query = (
        select(Feedback.received_at, Feedback.prediction_id, Prediction.prediction, Feedback.label)
        .join(Prediction, Prediction.id == Feedback.prediction_id)
        .where(
            Prediction.model_name == name,
            Prediction.model_version == version,
            Prediction.created_at >= since,
            Feedback.trusted.is_(True),
        )
        .order_by(Feedback.received_at, Feedback.prediction_id)
    )
    if cursor:
        after, prediction_id = cursor
        query = query.where(
            or_(
                Feedback.received_at > after,
                and_(Feedback.received_at == after, Feedback.prediction_id > prediction_id),
            )
        )
    return [Label(*row) for row in session.execute(query)]


def untrusted_labels(session: Session, name: str, version: int, since: datetime) -> int:
    """Labels of the version's predictions made since ``since`` that the watchdog ignores."""
    return session.scalars(
        select(func.count())
        .select_from(Feedback)
        .join(Prediction, Prediction.id == Feedback.prediction_id)
        .where(
            Prediction.model_name == name,
            Prediction.model_version == version,
            Prediction.created_at >= since,
            Feedback.trusted.is_(False),
        )
    ).one()


def served_between(
    session: Session,
    name: str,
    version: int,
    *,
    after: datetime,
    since: datetime,
    until: datetime,
    limit: int,
) -> list[Served]:
    """The version's first ``limit`` predictions made after ``after`` (and at or after
    ``since``), up to ``until``, oldest first."""
    return [
        Served(*row)
        for row in session.execute(
            select(Prediction.created_at, Prediction.latency_ms, Prediction.status)
            .where(
                Prediction.model_name == name,
                Prediction.model_version == version,
                Prediction.created_at > after,
                Prediction.created_at >= since,
                Prediction.created_at <= until,
                SERVED,
            )
            .order_by(Prediction.created_at)
            .limit(limit)
        )
    ]


def latest_estimate(session: Session, name: str, version: int, since: datetime) -> tuple[float, int] | None:
    """The version's newest estimated accuracy (CBPE) of a window ending since ``since``, with the
    predictions it was estimated on (None: no such window)."""
    row = session.execute(
        select(MetricWindow.value, MetricWindow.sample_count).where(
            MetricWindow.model_name == name, MetricWindow.model_version == version,
            MetricWindow.metric == metric_names.ESTIMATED_ACCURACY, MetricWindow.window_end >= since,
            MetricWindow.value.is_not(None),
        ).order_by(MetricWindow.window_end.desc()).limit(1)
    ).first()
    return None if row is None else (float(row.value), int(row.sample_count))


def latest_drift_flags(
    session: Session, name: str, version: int, since: datetime
) -> list[bool] | None:
    """Each feature's drifted flag in the version's newest drift window ending since ``since``
    (None: no such window)."""
    latest = session.scalars(
        select(func.max(DriftResult.window_end)).where(
            DriftResult.model_name == name,
            DriftResult.model_version == version,
            DriftResult.window_end >= since,
            DriftResult.feature.not_in(metric_names.OUTPUT_DRIFT),
        )
    ).first()
    if latest is None:
        return None
    return [
        bool(flag)
        for flag in session.scalars(
            select(DriftResult.drifted).where(
                DriftResult.model_name == name,
                DriftResult.model_version == version,
                DriftResult.window_end == latest,
                DriftResult.feature.not_in(metric_names.OUTPUT_DRIFT),
            )
        )
    ]


def last_release_at(session: Session, name: str) -> datetime | None:
    """When an operator last released the model's automatic rollbacks."""
    return session.scalars(
        select(func.max(AccessLog.created_at)).where(
            AccessLog.model_name == name, AccessLog.action == "release", AccessLog.allowed.is_(True)
        )
    ).first()


def automatic_rollbacks_after(session: Session, name: str, after: datetime) -> int:
    return session.scalars(
        select(func.count())
        .select_from(RegistryEvent)
        .where(
            RegistryEvent.model_name == name,
            RegistryEvent.kind == "auto_rollback",
            RegistryEvent.created_at > after,
        )
    ).one()


def newest_labelled_inputs(
    session: Session, name: str, version: int, since: datetime, limit: int
) -> list[LabelledInput]:
    """The version's ``limit`` most recently labelled predictions made since ``since``."""
    return [
        LabelledInput(*row)
        for row in session.execute(
            select(Prediction.features, Prediction.prediction, Feedback.label)
            .join(Feedback, Feedback.prediction_id == Prediction.id)
            .where(
                Prediction.model_name == name,
                Prediction.model_version == version,
                Prediction.created_at >= since,
                Feedback.trusted.is_(True),
            )
            .order_by(Feedback.received_at.desc())
            .limit(limit)
        )
    ]


def newest_inputs(session: Session, name: str, limit: int) -> list[dict[str, Any]]:
    """Input features of the model's ``limit`` newest successful predictions (any version)."""
    return list(
        session.scalars(
            select(Prediction.features)
            .where(Prediction.model_name == name, Prediction.status == "ok", SERVED)
            .order_by(Prediction.created_at.desc())
            .limit(limit)
        )
    )

"""What is due for deletion, given the settings and a time: pure functions, no I/O.

Predictions and their feedback are kept for the label delay (a true label may still arrive and
must find its prediction) plus ``prediction_days`` (``monitoring.settings.RetentionPolicy``). Their cutoff is rounded down to
midnight UTC, so that on PostgreSQL, where the prediction log is one partition per UTC day, "due"
means exactly "in a partition that ends at or before the cutoff": a whole day goes at once, and
SQLite's row-by-row deletes remove the very same rows. The other kinds are cut at the exact age.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from monitoring.settings import RetentionPolicy


@dataclass(frozen=True)
class Cutoffs:
    """Per kind, the time before which data is due: rows (or files) strictly older go."""

    predictions: datetime  # by prediction time; midnight UTC
    feedback: datetime  # by the time the label arrived; the same midnight
    outbox: datetime  # delivered rows, by delivery time
    access_log: datetime
    metric_windows: datetime  # by window end
    drift_results: datetime  # by window end
    data_quality_checks: datetime  # by window end
    latency_histograms: datetime  # by window end
    reports: datetime  # by the window end in the report's file name


def midnight(moment: datetime) -> datetime:
    """The start of ``moment``'s UTC day."""
    return datetime.combine(moment.astimezone(UTC).date(), time(), tzinfo=UTC)


def cutoffs(policy: RetentionPolicy, now: datetime) -> Cutoffs:
    if now.tzinfo is None:
        raise ValueError(f"naive datetime {now!r}: retention works in timezone-aware UTC")
    predictions = midnight(now - timedelta(days=policy.prediction_keep_days))
    metrics = now - timedelta(days=policy.metric_days)
    return Cutoffs(
        predictions=predictions,
        feedback=predictions,
        outbox=now - timedelta(days=policy.outbox_days),
        access_log=now - timedelta(days=policy.access_log_days),
        metric_windows=metrics,
        drift_results=metrics,
        data_quality_checks=metrics,
        latency_histograms=metrics,
        reports=now - timedelta(days=policy.report_days),
    )


@dataclass(frozen=True)
class PartitionPlan:
    """Daily partitions of the prediction log to drop (wholly before the cutoff) and to create."""

    drop: tuple[date, ...]
    create: tuple[date, ...]


def partition_plan(existing: Iterable[date], *, now: datetime, cutoff: datetime | None,
                   ahead_days: int) -> PartitionPlan:
    """Drop every day that ends at or before ``cutoff`` (None: drop nothing); create today and
    the next ``ahead_days`` days where missing, so that no day's rows fall into the default."""
    days = set(existing)
    if cutoff is not None and cutoff != midnight(cutoff):
        raise ValueError(f"a partition cutoff is a UTC midnight, not {cutoff.isoformat()}")
    last_due = cutoff.date() - timedelta(days=1) if cutoff is not None else None
    drop = tuple(sorted(day for day in days if last_due is not None and day <= last_due))
    today = now.astimezone(UTC).date()
    wanted = (today + timedelta(days=offset) for offset in range(ahead_days + 1))
    create = tuple(day for day in wanted if day not in days)
    return PartitionPlan(drop=drop, create=create)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The UTC half-open range [start, end) of one day's partition."""
    start = datetime.combine(day, time(), tzinfo=UTC)
    return start, start + timedelta(days=1)


def describe(policy: RetentionPolicy, oldest_prediction: datetime | None) -> str:
    """The dashboard's one line on how far back data goes."""
    if not policy.enabled:
        kept = "kept forever (retention off)"
    else:
        kept = (f"predictions kept {policy.prediction_keep_days} days ({policy.label_delay_days} for "
                f"labels to arrive + {policy.prediction_days}), metrics {policy.metric_days} days")
    oldest = "no prediction yet" if oldest_prediction is None else \
        f"oldest prediction {oldest_prediction.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    return f"Data: {kept}; {oldest}."

"""One pruning run: delete every kind of data that retention says is due, and say what went.

Run by ``vigil prune`` and the ``vigil_maintenance`` DAG. On PostgreSQL it first creates the
prediction log's partitions for today and the next days (also with retention off, so that rows
never pile up in the default partition), then drops the days that are due whole; the prediction
segments of due rows go after them. A dry run counts the same rows and files and changes nothing.
Running it twice deletes nothing more.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime

from monitoring.metrics import report_files
from monitoring.retention.policy import (
    Cutoffs,
    cutoffs,
    day_bounds,
    partition_plan,
)
from monitoring.settings import RetentionPolicy, Settings
from monitoring.store import retention as store
from monitoring.store.engine import utcnow

ROW_KINDS = ("feedback", "outbox", "access_log", "metric_windows", "drift_results", "data_quality_checks",
             "latency_histograms")


@dataclass(frozen=True)
class KindOutcome:
    kind: str
    count: int
    unit: str  # rows | files
    cutoff: datetime
    detail: str = ""


@dataclass
class PruneReport:
    dry_run: bool
    enabled: bool
    outcomes: list[KindOutcome] = field(default_factory=list)
    partitions_created: list[date] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {outcome.kind: outcome.count for outcome in self.outcomes}

    def lines(self) -> list[str]:
        lines = []
        if self.partitions_created:
            days = ", ".join(f"{day:%Y-%m-%d}" for day in self.partitions_created)
            lines.append(f"partitions: {'would create' if self.dry_run else 'created'} {days}")
        if not self.enabled:
            lines.append("retention is off (VIGIL_RETENTION_ENABLED=false): nothing deleted")
        verb = "would delete" if self.dry_run else "deleted"
        for outcome in self.outcomes:
            detail = f" ({outcome.detail})" if outcome.detail else ""
            lines.append(f"{outcome.kind}: {verb} {outcome.count:,} {outcome.unit} older than "
                         f"{outcome.cutoff.astimezone(UTC):%Y-%m-%d %H:%M} UTC{detail}")
        return lines

    def as_dict(self) -> dict:
        return {"dry_run": self.dry_run, "enabled": self.enabled,
                "partitions_created": [day.isoformat() for day in self.partitions_created],
                "outcomes": [{**asdict(o), "cutoff": o.cutoff.isoformat()} for o in self.outcomes]}


def prune(url: str, settings: Settings, *, now: datetime | None = None, dry_run: bool = False) -> PruneReport:
    """Apply the retention of ``settings`` to the store at ``url`` and to the report files."""
    policy = settings.retention
    now = now or utcnow()
    due = cutoffs(policy, now)
    report = PruneReport(dry_run=dry_run, enabled=policy.enabled)
    predictions = _predictions(url, policy, due, now, report, policy.delete_batch_rows)
    if not policy.enabled:
        return report
    report.outcomes.append(predictions)
    segments = store.count_due(url, "prediction_segments", due.predictions) if dry_run else \
        store.delete_due(url, "prediction_segments", due.predictions, batch_rows=policy.delete_batch_rows)
    report.outcomes.append(KindOutcome("prediction_segments", segments, "rows", due.predictions))
    for kind in ROW_KINDS:
        cutoff = getattr(due, kind)
        count = store.count_due(url, kind, cutoff) if dry_run else \
            store.delete_due(url, kind, cutoff, batch_rows=policy.delete_batch_rows)
        report.outcomes.append(KindOutcome(kind, count, "rows", cutoff))
    report.outcomes.append(_reports(url, settings, due.reports, dry_run))
    return report


def _predictions(url: str, policy: RetentionPolicy, due: Cutoffs, now: datetime, report: PruneReport,
                 batch_rows: int) -> KindOutcome | None:
    """Partitions made ahead and, with retention on, due days dropped and due rows deleted."""
    days = store.prediction_partition_days(url)
    cutoff = due.predictions
    if days is not None:
        plan = partition_plan(days, now=now, cutoff=cutoff if policy.enabled else None,
                              ahead_days=policy.partitions_ahead_days)
        report.partitions_created = list(plan.create)
        if not report.dry_run:
            for day in plan.create:
                store.create_partition(url, day, *day_bounds(day))
    if not policy.enabled:
        return None
    dropped = 0
    detail = ""
    if days is not None and plan.drop:
        dropped = store.count_partition_rows(url, list(plan.drop)) if report.dry_run else \
            sum(store.drop_partition(url, day) for day in plan.drop)
        detail = f"{len(plan.drop)} daily partition(s) {'to drop' if report.dry_run else 'dropped'}"
    rows = store.count_due_predictions(url, cutoff, unpartitioned_only=True) if report.dry_run else \
        store.delete_due_predictions(url, cutoff, batch_rows=batch_rows)
    return KindOutcome("predictions", dropped + rows, "rows", cutoff, detail)


def _reports(url: str, settings: Settings, cutoff: datetime, dry_run: bool) -> KindOutcome:
    files = report_files.due_reports(settings.var_dir, cutoff)
    if dry_run:
        return KindOutcome("reports", len(files), "files", cutoff)
    deleted = report_files.delete_reports(files)
    store.clear_report_links(url, cutoff)
    return KindOutcome("reports", deleted, "files", cutoff)

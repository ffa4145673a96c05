"""What retention says is due, as tables of cases: cutoffs per kind, the partition plan, report
file names, the dashboard's line."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from monitoring.metrics.report_files import report_path, window_end_of
from monitoring.retention.policy import (
    cutoffs,
    day_bounds,
    describe,
    midnight,
    partition_plan,
)
from monitoring.settings import RetentionPolicy, Settings, explain

NOW = datetime(2026, 12, 3, 10, 30, tzinfo=UTC)


def test_policy_comes_from_the_environment_with_its_defaults(monkeypatch):
    monkeypatch.setenv("VIGIL_RETENTION_PREDICTION_DAYS", "10")
    monkeypatch.setenv("VIGIL_RETENTION_OUTBOX_DAYS", "2")
    policy = Settings().retention
    assert policy == RetentionPolicy(prediction_days=10, outbox_days=2)
    assert policy.prediction_keep_days == 17  # 7 days for late labels, then 10


@pytest.mark.parametrize(("name", "value"), [("VIGIL_RETENTION_PREDICTION_DAYS", "0"),
                                             ("VIGIL_RETENTION_LABEL_DELAY_DAYS", "-1"),
                                             ("VIGIL_RETENTION_DELETE_BATCH_ROWS", "0")])
def test_an_age_out_of_range_is_refused(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert explain(refused.value).startswith(f"bad setting: {name}={value}: input should be greater")


@pytest.mark.parametrize(("now", "keep_days", "expected"), [
    (NOW, 21, datetime(2026, 11, 12, tzinfo=UTC)),
    (datetime(2026, 12, 3, 0, 0, tzinfo=UTC), 21, datetime(2026, 11, 12, tzinfo=UTC)),
    (datetime(2026, 12, 2, 23, 59, 59, tzinfo=UTC), 21, datetime(2026, 11, 11, tzinfo=UTC)),
    (datetime(2026, 3, 1, 1, 0, tzinfo=UTC), 1, datetime(2026, 2, 28, tzinfo=UTC)),
])
def test_prediction_cutoff_is_the_midnight_before_the_kept_days(now, keep_days, expected):
    due = cutoffs(RetentionPolicy(label_delay_days=keep_days - 1, prediction_days=1), now)
    assert due.predictions == due.feedback == expected


def test_other_kinds_are_cut_at_their_exact_age():
    due = cutoffs(RetentionPolicy(outbox_days=7, access_log_days=365, metric_days=90, report_days=30), NOW)
    assert due.outbox == NOW - timedelta(days=7)
    assert due.access_log == NOW - timedelta(days=365)
    assert due.metric_windows == due.drift_results == NOW - timedelta(days=90)
    assert due.reports == NOW - timedelta(days=30)


def test_a_naive_now_is_refused():
    with pytest.raises(ValueError, match="naive"):
        cutoffs(RetentionPolicy(), datetime(2026, 12, 3))


D = date(2026, 12, 3)


@pytest.mark.parametrize(("existing", "cutoff", "ahead", "drop", "create"), [
    # nothing yet: today and the next three days
    ((), datetime(2026, 11, 12, tzinfo=UTC), 3, (), (D, D + timedelta(1), D + timedelta(2), D + timedelta(3))),
    # a day ending exactly at the cutoff goes, the cutoff's own day stays
    ((date(2026, 11, 10), date(2026, 11, 11), date(2026, 11, 12), D), datetime(2026, 11, 12, tzinfo=UTC), 1,
     (date(2026, 11, 10), date(2026, 11, 11)), (D + timedelta(1),)),
    # retention off: nothing dropped, still made ahead
    ((date(2020, 1, 1), D, D + timedelta(1)), None, 1, (), ()),
    # days far ahead that already exist are left alone
    ((D + timedelta(10),), datetime(2026, 11, 12, tzinfo=UTC), 0, (), (D,)),
])
def test_partition_plan(existing, cutoff, ahead, drop, create):
    plan = partition_plan(existing, now=NOW, cutoff=cutoff, ahead_days=ahead)
    assert (plan.drop, plan.create) == (drop, create)


def test_a_partition_cutoff_must_be_a_midnight():
    with pytest.raises(ValueError, match="midnight"):
        partition_plan([], now=NOW, cutoff=NOW, ahead_days=1)


def test_day_bounds_and_midnight_are_utc():
    assert day_bounds(D) == (datetime(2026, 12, 3, tzinfo=UTC), datetime(2026, 12, 4, tzinfo=UTC))
    east = datetime(2026, 12, 3, 1, 0, tzinfo=timezone(timedelta(hours=3)))  # 2026-12-02 22:00 UTC
    assert midnight(east) == datetime(2026, 12, 2, tzinfo=UTC)


@pytest.mark.parametrize(("name", "end"), [
    ("20261203T100000Z-20261203T100500Z.html", datetime(2026, 12, 3, 10, 5, tzinfo=UTC)),
    ("20261203T100000Z-20261303T100500Z.html", None),  # month 13: not ours
    ("notes.html", None),
    ("20261203T100000Z-20261203T100500Z.html.bak", None),
    ("20261203T100000Z-20261203T100500Z.htm", None),
])
def test_a_report_file_name_tells_its_window_end(name, end):
    assert window_end_of(name) == end


def test_report_path_round_trips_its_window_end(tmp_path: Path):
    start, end = datetime(2026, 12, 3, 10, 0, tzinfo=UTC), datetime(2026, 12, 3, 10, 5, tzinfo=UTC)
    path = report_path(tmp_path, "m", 4, start, end)
    assert path.parent == (tmp_path / "reports" / "m" / "v4").resolve()
    assert window_end_of(path.name) == end


@pytest.mark.parametrize(("policy", "oldest", "line"), [
    (RetentionPolicy(), datetime(2026, 11, 20, 8, 15, tzinfo=UTC),
     ("Data: predictions kept 21 days (7 for labels to arrive + 14), metrics 90 days; "
     "oldest prediction 2026-11-20 08:15 UTC.")),
    (RetentionPolicy(enabled=False), None, "Data: kept forever (retention off); no prediction yet."),
])
def test_the_dashboard_line(policy, oldest, line):
    assert describe(policy, oldest) == line

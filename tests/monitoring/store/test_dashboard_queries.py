"""The dashboard's read-side queries: pure helpers, and the SQL on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from cli.demo_seed import ChampionSpan, SeedSpec, seed, seed_windows
from monitoring import metric_names
from monitoring.store import dashboard_queries, dashboard_summaries

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("span", "expected"), [
    (timedelta(hours=6), 60),
    (timedelta(days=1), 300),
    (timedelta(days=7), 900),
    (timedelta(days=30), 3600),
    (timedelta(days=90), 3 * 3600),
    (timedelta(days=3650), 86_400),
])
def test_bucket_keeps_a_series_within_the_point_budget(span, expected):
    assert dashboard_queries.bucket_seconds(T0, T0 + span) == expected


@pytest.mark.parametrize(("value", "limit", "lower", "expected"), [
    (0.80, 0.75, False, "ok"), (0.70, 0.75, False, "breach"),
    (300.0, 250.0, True, "breach"), (100.0, 250.0, True, "ok"),
    (None, 0.75, False, "no data"), (0.8, None, False, "no data"), (float("nan"), 1.0, True, "no data"),
])
def test_judge_against_a_limit(value, limit, lower, expected):
    assert dashboard_summaries.judge(value, limit, lower_is_better=lower) == expected


def _moves(*rows):
    return pd.DataFrame([{"id": i, "created_at": T0 + timedelta(hours=h), "from_version": f, "to_version": t}
                         for i, (h, f, t) in enumerate(rows)])


def test_production_record_counts_each_tenure_until_now():
    moves = _moves((0, None, 1), (10, 1, 2), (12, 2, 1), (20, 1, 3))
    record = dashboard_summaries.production_record(moves.iloc[::-1], now=T0 + timedelta(hours=30)).set_index("version")
    assert record.loc[1, "times_champion"] == 2 and record.loc[1, "hours_champion"] == pytest.approx(18)
    assert record.loc[2, "hours_champion"] == pytest.approx(2)
    assert record.loc[3, "hours_champion"] == pytest.approx(10)
    assert record.loc[1, "last_champion_until"] == T0 + timedelta(hours=20)
    assert pd.isna(record.loc[3, "last_champion_until"])  # still champion


def test_series_buckets_in_sql_with_sample_weighted_quality(store_url):
    spans = [ChampionSpan(1, T0, T0 + timedelta(hours=2)), ChampionSpan(2, T0 + timedelta(hours=2),
                                                                          T0 + timedelta(hours=3))]
    seed_windows(store_url, "bucketed", spans, drift_every_minutes=15, seed=3)
    raw = dashboard_queries.series(store_url, "bucketed", (metric_names.ACCURACY,), T0, T0 + timedelta(hours=3), bucket=60)
    hourly = dashboard_queries.series(store_url, "bucketed", (metric_names.ACCURACY, metric_names.LATENCY_P95), T0, T0 + timedelta(hours=3),
                      bucket=3600)
    accuracy = hourly[hourly["metric"] == metric_names.ACCURACY]
    assert list(accuracy["bucket"]) == [T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2)]
    assert list(accuracy["model_version"]) == [1, 1, 2]
    first_hour = raw[raw["bucket"] < T0 + timedelta(hours=1)]
    assert accuracy["samples"].iloc[0] == first_hour["samples"].sum()
    expected = (first_hour["weighted"] * first_hour["samples"]).sum() / first_hour["samples"].sum()
    assert accuracy["weighted"].iloc[0] == pytest.approx(expected)
    matrix = dashboard_queries.drift_matrix(store_url, "bucketed", T0, T0 + timedelta(hours=3), bucket=3600)
    assert set(matrix["windows"]) == {4} and matrix["feature"].nunique() == 14


def test_overview_reads_the_seeded_story(store_url):
    from monitoring.settings import Settings

    now = datetime.now(UTC).replace(second=0, microsecond=0)
    seed(store_url, SeedSpec(models=("alpha",), days=1, end=now))
    row = dashboard_summaries.overview(store_url, Settings(), now=now).iloc[0]
    assert (row["model"], row["champion"], row["health"], row["open_alerts"]) == ("alpha", 3, "healthy", 1)
    assert (row["rollbacks_30d"], row["auto_rollbacks_30d"]) == (1, 1)
    assert 0.5 * 3600 < row["mttr_seconds"] < 2.5 * 3600  # v2 served 5% of the day before v1 was back
    assert row["quality_state"] == "ok" and row["quality_limit"] == pytest.approx(0.879 - 0.10)
    assert row["labelled"] > 0 and row["latency_state"] == "ok"
    assert dashboard_queries.model_names(store_url) == ["alpha"]


def test_overview_judges_against_the_watchdog_settings(store_url, monkeypatch):
    from monitoring.settings import Settings

    monkeypatch.setenv("VIGIL_QUALITY_ABS_DROP", "0.2")
    monkeypatch.setenv("VIGIL_DRIFT_SHARE", "0.01")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    seed(store_url, SeedSpec(models=("beta",), days=1, end=now))
    row = dashboard_summaries.overview(store_url, Settings(), now=now).iloc[0]
    assert row["quality_limit"] == pytest.approx(0.879 - 0.2)
    assert row["drift_share_limit"] == 0.01
    assert 0.01 < row["drift_share"] < 0.5 and row["drift_state"] == "breach"  # ok at the default

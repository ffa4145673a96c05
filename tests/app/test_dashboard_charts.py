"""The dashboard's figures at any data size, as plotly builds them (pure: frames in, figures out)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from app.dashboard import charts
from monitoring import metric_names

END = datetime(2026, 11, 20, 18, 1, tzinfo=UTC)
DAY = charts.Span(END - timedelta(days=1), END, 300)
ONE_BUCKET = pd.Timestamp("2026-11-20 18:00", tz="UTC")


def _series(buckets, values, metric=metric_names.ACCURACY, version=1, samples=40) -> pd.DataFrame:
    return pd.DataFrame({"bucket": pd.to_datetime(list(buckets), utc=True), "model_version": version,
                         "metric": metric, "mean": values, "weighted": values, "samples": samples})


def _moves() -> pd.DataFrame:
    at = [ONE_BUCKET + timedelta(minutes=m) for m in (-3, -2, -1)]
    return pd.DataFrame({"created_at": at, "kind": ["promote", "promote", "auto_rollback"],
                         "from_version": [None, 1, 2], "to_version": [1, 2, 1],
                         "actor": ["cli:demo", "cli:demo", "watchdog"],
                         "reason": ["first", "better on holdout", "accuracy below baseline"]})


def _points(trace) -> list[tuple]:
    """(x, y, marker size) of the points that are drawn."""
    sizes = trace.marker.size if isinstance(trace.marker.size, tuple) else [trace.marker.size] * len(trace.y)
    return [(x, y, size) for x, y, size in zip(trace.x, trace.y, sizes, strict=False) if pd.notna(y)]


def test_a_single_bucket_is_a_visible_marker_on_the_whole_range():
    figure = charts.by_version(_series([ONE_BUCKET], [0.83]), metric_names.ACCURACY, span=DAY,
                               column="weighted", title="accuracy", y_title="accuracy")
    (trace,) = figure.data
    assert "markers" in trace.mode
    assert [(pd.Timestamp(x), y) for x, y, size in _points(trace) if size > 0] == [(ONE_BUCKET, 0.83)]
    assert list(figure.layout.xaxis.range) == [DAY.start, DAY.end]
    assert figure.layout.xaxis.type == "date"


def test_scores_sit_on_zero_to_one_and_other_metrics_start_at_zero_above_their_limit():
    accuracy = charts.by_version(_series([ONE_BUCKET], [0.83]), metric_names.ACCURACY, span=DAY,
                                 title="", y_title="")
    assert list(accuracy.layout.yaxis.range) == [0.0, 1.0]
    latency = charts.combined(_series([ONE_BUCKET], [120.0], metric=metric_names.LATENCY_P95),
                              {metric_names.LATENCY_P95: "p95"}, span=DAY, title="", y_title="ms", limit=250)
    bottom, top = latency.layout.yaxis.range
    assert bottom == 0 and 250 < top < 300  # the SLO line is on the chart, with a little room
    errors = charts.combined(_series([ONE_BUCKET], [0.9], metric=metric_names.ERROR_RATE),
                             {metric_names.ERROR_RATE: "error rate"}, span=DAY, title="", y_title="share")
    assert list(errors.layout.yaxis.range) == [0.0, 1.0]  # a share never goes past 1


def test_a_long_series_is_a_line_broken_where_a_version_did_not_serve():
    first = pd.Timestamp(DAY.start).ceil("5min")  # the store's buckets are aligned on the epoch
    served = list(pd.date_range(first, periods=100, freq="5min")) + \
        list(pd.date_range(first + timedelta(hours=12), periods=100, freq="5min"))
    (trace,) = charts.by_version(_series(served, [0.8] * 200), metric_names.ACCURACY, span=DAY,
                                 title="", y_title="").data
    assert trace.connectgaps is False
    y = pd.Series(trace.y, index=pd.to_datetime(trace.x))
    assert y[first + timedelta(hours=10):first + timedelta(hours=11)].isna().all()
    assert all(size == 0 for _x, _y, size in _points(trace))  # 200 points: a plain line
    lone = charts.by_version(_series(served + [first + timedelta(hours=10)], [0.8] * 201),
                             metric_names.ACCURACY, span=DAY, title="", y_title="").data[0]
    assert [size for x, _y, size in _points(lone) if pd.Timestamp(x) == first + timedelta(hours=10)] \
        == [charts.MARKER_SIZE]  # a point with no neighbour gets a marker


def test_alias_moves_are_a_lane_of_markers_with_their_story_on_hover_not_overlapping_labels():
    figure = charts.add_moves(charts.by_version(_series([ONE_BUCKET], [0.83]), metric_names.ACCURACY,
                                                span=DAY, title="", y_title=""), _moves(), DAY)
    assert not [a for a in figure.layout.annotations if "→" in (a.text or "")]  # no text on the chart
    lanes = {trace.name: trace for trace in figure.data if trace.yaxis == charts.MOVES_AXIS}
    assert set(lanes) == {"promoted", "automatic rollback"}
    assert list(lanes["automatic rollback"].hovertext) == [
        "automatic rollback: v2→v1 by watchdog (accuracy below baseline)"]
    assert lanes["promoted"].hovertext[0] == "promoted: v–→v1 by cli:demo (first)"
    assert all(trace.mode == "markers" for trace in lanes.values())
    assert figure.layout.yaxis2.visible is False and figure.layout.yaxis2.overlaying == "y"
    assert len(figure.layout.shapes) == 3


def test_moves_outside_the_range_are_left_out():
    figure = charts.add_moves(charts.by_version(_series([ONE_BUCKET], [0.83]), metric_names.ACCURACY,
                                                span=DAY, title="", y_title=""),
                              _moves().assign(created_at=DAY.start - timedelta(hours=1)), DAY)
    assert [trace.name for trace in figure.data] == ["v1"] and not figure.layout.shapes


def test_a_single_drift_bucket_is_one_cell_of_its_width_on_the_whole_range():
    matrix = pd.DataFrame({"bucket": [ONE_BUCKET] * 2, "feature": ["age", "income"],
                           "drifted_share": [1.0, 0.0], "mean_score": [0.3, 0.01], "windows": 1})
    span = charts.Span(DAY.start, DAY.end, 900)
    figure = charts.drift_heatmap(matrix, span=span, title="")
    (heatmap,) = figure.data
    assert list(figure.layout.xaxis.range) == [span.start, span.end]
    centres = pd.to_datetime(list(heatmap.x))
    assert (centres[1] - centres[0]) == timedelta(seconds=900)  # cells a bucket wide, not 1 ms
    filled = [(centres[i], row) for row, values in zip(heatmap.y, heatmap.z, strict=False)
              for i, value in enumerate(values) if pd.notna(value)]
    assert filled == [(ONE_BUCKET + timedelta(seconds=450), "age"), (ONE_BUCKET + timedelta(seconds=450), "income")]


def test_labelled_sample_bars_are_a_bucket_wide():
    (bar,) = charts.samples(_series([ONE_BUCKET], [0.83], samples=40), metric_names.ACCURACY,
                            span=DAY, title="").data
    assert list(bar.width) == [300_000] and bar.offset == 0


@pytest.mark.parametrize(("seconds", "label"), [(60, "1-minute"), (300, "5-minute"), (3600, "1-hour"),
                                                (10_800, "3-hour"), (86_400, "1-day")])
def test_bucket_sizes_are_named_for_captions(seconds, label):
    assert charts.bucket_label(seconds) == label


@pytest.mark.parametrize(("age", "expected"), [
    (None, "Last 24 hours"),  # an empty store
    (timedelta(minutes=3), "Last 15 minutes"),  # a demo's first minutes
    (timedelta(minutes=15), "Last 15 minutes"),
    (timedelta(minutes=16), "Last hour"),
    (timedelta(hours=5), "Last 6 hours"),
    (timedelta(days=30), "Last 24 hours"),  # never wider than a day by default
])
def test_a_new_session_opens_on_the_shortest_range_holding_the_data(age, expected):
    from app.dashboard.common import default_range

    assert default_range(None if age is None else END - age, END) == expected

"""Reads of one window: feature columns come out the same on SQLite and PostgreSQL (bulk COPY path
and its value-by-value fallback), and only the window's successful predictions of the version count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitoring.metrics.windows import Window
from monitoring.store import window_queries
from monitoring.store.engine import get_engine, session_scope
from monitoring.store.tables import Prediction

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
WINDOW = Window(T0, T0 + timedelta(minutes=5))


def _add(url, rows):
    with session_scope(url) as session:
        for i, (features, extra) in enumerate(rows):
            session.add(Prediction(**{"id": f"q{i}", "model_name": "m", "model_version": 1,
                                      "created_at": T0 + timedelta(seconds=i), "features": features,
                                      "prediction": "0", "score": 0.5, "latency_ms": 1.0, "status": "ok",
                                      "source": "api", **extra}))


def _read(url):
    with get_engine(url).connect() as connection:
        frame = window_queries.features(connection, WINDOW, "m", 1, ["age", "income"], ["region"])
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def test_features_of_the_window(store_url):
    _add(store_url, [
        ({"age": 30, "income": 1000.5, "region": "north", "unused": "x"}, {}),
        ({"age": 41, "region": "south"}, {}),  # a missing feature
        ({"age": 50, "income": 9.0, "region": "east"}, {"status": "error"}),
        ({"age": 60, "income": 9.0, "region": "east"}, {"model_version": 2}),
        ({"age": 70, "income": 9.0, "region": "east"}, {"created_at": T0 + timedelta(minutes=5)}),
    ])
    assert _read(store_url) == [{"age": 30.0, "income": 1000.5, "region": "north"},
                                {"age": 41.0, "income": None, "region": "south"}]


@pytest.mark.parametrize("stray", [{"age": "forty", "income": 2.0, "region": 7},
                                   {"age": None, "income": 2.0, "region": None}])
def test_values_of_the_wrong_kind_become_missing_or_text(store_url, stray):
    _add(store_url, [({"age": 30, "income": 1.0, "region": "north"}, {}), (stray, {})])
    second = _read(store_url)[1]
    assert second["age"] is None and second["income"] == 2.0
    assert second["region"] == (None if stray["region"] is None else "7")


def test_a_shadow_row_is_not_served_traffic_nor_input_of_its_version(store_url):
    _add(store_url, [
        ({"age": 30, "income": 1.0, "region": "north"}, {}),
        ({"age": 40, "income": 2.0, "region": "south"}, {"role": "canary"}),
        ({}, {"role": "shadow", "paired_id": "q0"}),
    ])
    with get_engine(store_url).connect() as connection:
        traffic = window_queries.traffic(connection, WINDOW, "m")
    assert [(t.version, t.requests) for t in traffic] == [(1, 2)]
    assert [row["age"] for row in _read(store_url)] == [30, 40]


def test_outputs_keep_every_spelling_a_missing_value_and_an_empty_text(store_url):
    """The outputs read (COPY as CSV on PostgreSQL, rows elsewhere) gives back what was logged:
    one row per successful prediction, NULL as missing, an empty text as an empty text."""
    spellings = ["1", "", None, 'say "yes", or no', "two\nlines", "0"]
    _add(store_url, [({}, {"prediction": text, "score": None if i == 1 else i / 10})
                     for i, text in enumerate(spellings)]
         + [({}, {"status": "error", "prediction": None, "score": 0.9})])
    with get_engine(store_url).connect() as connection:
        frame = window_queries.outputs(connection, WINDOW, "m", 1)
    scored = frame[frame["score"].notna()]
    assert dict(zip(scored["score"], scored["prediction"], strict=True)) == {
        0.0: "1", 0.2: None, 0.3: 'say "yes", or no', 0.4: "two\nlines", 0.5: "0"}
    assert frame[frame["score"].isna()]["prediction"].tolist() == [""]

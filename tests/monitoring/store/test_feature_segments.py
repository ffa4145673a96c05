"""The read path made for monitoring (issue 17), held to the JSON path on SQLite and PostgreSQL.

One window of predictions: rows logged before migration 0008 (the migration builds their
segments) and rows logged after it through the log's own insert, with missing keys, None values,
text categories, integers among floats, errors, a shadow, another version, and a feature the
model's schema gained after the migration. Read from the segments and from the JSON, the feature
frames and the outputs are identical, and the monitoring run writes identical metrics, drift and
data-quality verdicts. Rows the segments do not hold, or a column they hold in another type, send
the read back to the JSON.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
import pandas as pd
import pytest
from sqlalchemy import delete, func, insert, select

from monitoring.metrics import prediction_drift
from monitoring.metrics.window_pipeline import compute_windows
from monitoring.metrics.windows import Window
from monitoring.settings import Settings
from monitoring.store import history, window_columns, window_queries
from monitoring.store.engine import dispose_engines, get_engine, session_scope
from monitoring.store.migrations import upgrade
from monitoring.store.prediction_rows import encode_rows, insert_ignoring_duplicates
from monitoring.store.tables import (
    DataQualityCheck,
    DriftResult,
    Feedback,
    MetricWindow,
    Prediction,
    PredictionSegment,
)
from tests.runtimes import runtime_for

MODEL = "golden"
T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)  # a window boundary (5-minute windows)
WINDOW = Window(T0, T0 + timedelta(minutes=5))
NUMERICAL, CATEGORICAL = ["age", "income", "tenure"], ["region"]
REGIONS = ["north", "south", "east", "west"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def old_store(request, tmp_path):
    """A store at revision 0009, the one before the segments."""
    url = f"sqlite:///{tmp_path / 'vigil.db'}" if request.param == "sqlite" else \
        request.getfixturevalue("empty_postgres_url")
    upgrade(url, "0009")
    yield url
    dispose_engines()


def _document(rng, i: int, gained: bool) -> dict:
    age = float(round(rng.normal(40, 10), 1))
    doc = {"age": int(age) if i % 5 == 0 else age, "income": float(rng.lognormal(10, 0.5)),
           "region": str(rng.choice(REGIONS))}
    if i % 7 == 0:
        doc["income"] = None
    if i % 11 == 0:
        del doc["age"]
    if i % 13 == 0:
        doc["region"] = None
    if gained:
        doc["tenure"] = float(rng.integers(0, 30)) if i % 3 else None
    return doc


def _before_migration(url: str, rng) -> None:
    """Rows as any writer stored them before 0008: the previous window (labelled, for the estimate)
    and the first half of this one, with an error, a shadow, another version and a later row."""
    rows = []
    for i in range(400):
        at = T0 - timedelta(minutes=5) + timedelta(seconds=i * 0.75) if i < 200 else \
            T0 + timedelta(seconds=(i - 200) * 0.7)
        score = float(rng.random())
        rows.append({"id": f"old-{i}", "model_name": MODEL, "model_version": 2 if i == 390 else 1,
                     "created_at": at, "features": _document(rng, i, gained=False),
                     "prediction": str(int(score > 0.5)), "score": score, "latency_ms": float(rng.lognormal(2, 0.5)),
                     "status": "error" if i % 50 == 3 else "ok", "error": None, "source": "api",
                     "role": "shadow" if i == 391 else "champion"})
    rows.append({**rows[-1], "id": "old-later", "created_at": T0 + timedelta(minutes=5), "role": "champion"})
    with get_engine(url).begin() as connection:
        connection.execute(insert(Prediction.__table__), rows)
        connection.execute(insert(Feedback.__table__), [
            {"prediction_id": row["id"], "model_name": MODEL, "label": str(int(rng.random() < row["score"])),
             "received_at": row["created_at"] + timedelta(seconds=30), "trusted": True}
            for row in rows[::2]])


def _after_migration(url: str, rng) -> list:
    """Rows through the log's insert (the shipper's), 10 per request; the schema gained ``tenure``."""
    sqlite = url.startswith("sqlite")
    rows = []
    for request in range(30):
        at = T0 + timedelta(seconds=150 + request * 4.5)
        docs = [_document(rng, request * 10 + i, gained=True) for i in range(10)]
        scores = [float(s) for s in rng.random(10)]
        rows += encode_rows(sqlite, model_name=MODEL, model_version=1, created_at=at,
                            ids=[f"new-{request}-{i}" for i in range(10)],
                            features_json=[orjson.dumps(d).decode() for d in docs],
                            predictions=[int(s > 0.5) for s in scores], scores=scores, latency_ms=3.0,
                            status="error" if request == 7 else "ok")
    insert_ignoring_duplicates(url, rows)
    insert_ignoring_duplicates(url, rows[:25])  # a batch sent again: no second copy anywhere
    return rows


def _reference(settings: Settings, url: str, rng) -> None:
    """The version's reference data and its outputs on it, where the monitoring run finds them."""
    folder = settings.var_dir / "references" / MODEL / "v1"
    folder.mkdir(parents=True)
    n = 600
    pd.DataFrame({"age": rng.normal(38, 10, n), "income": rng.lognormal(10, 0.5, n),
                  "tenure": rng.integers(0, 30, n).astype(float),
                  "region": rng.choice(REGIONS, n)}).to_parquet(folder / "reference.parquet", index=False)
    scores = rng.random(n)
    prediction_drift.outputs_frame([str(int(s > 0.5)) for s in scores], list(scores)).to_parquet(
        folder / "outputs.parquet", index=False)
    with session_scope(url) as session:
        history.upsert_version(session, model_name=MODEL, version=1, eval_metrics={"accuracy": 0.8})
        history.record_reference(session, model_name=MODEL, version=1, uri="runs:/golden/reference.parquet",
                                 rows=n)


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns), na_position="last", ignore_index=True)


def _successes(url: str) -> int:
    with get_engine(url).connect() as connection:
        [traffic] = [t for t in window_queries.traffic(connection, WINDOW, MODEL) if t.version == 1]
    return traffic.successes


def _window_verdicts(url: str) -> dict:
    with session_scope(url) as session:
        return {
            "metrics": sorted((r.metric, r.value, r.sample_count) for r in session.scalars(select(MetricWindow))),
            "drift": sorted((r.feature, r.method, r.score, r.threshold, r.drifted, r.current_size)
                            for r in session.scalars(select(DriftResult))),
            "quality": sorted((r.feature, r.kind, r.rate, r.failed, r.rows)
                              for r in session.scalars(select(DataQualityCheck))),
        }


def test_segments_read_exactly_what_the_json_path_reads(old_store, tmp_path):
    url, rng = old_store, np.random.default_rng(17)
    _before_migration(url, rng)
    upgrade(url)  # 0008 builds the segments of the rows above
    logged = _after_migration(url, rng)
    settings = Settings(var_dir=tmp_path / "var", api_url="http://127.0.0.1:9")
    _reference(settings, url, rng)

    with get_engine(url).connect() as connection:
        stored_rows = connection.scalar(select(func.count()).select_from(Prediction))
        segment_rows = connection.scalar(select(func.sum(PredictionSegment.rows)))
        assert segment_rows == stored_rows == 401 + len(logged)  # every row once, the resent ones too
        segments = window_columns.read(connection, WINDOW, MODEL, 1, _successes(url))
        assert segments is not None  # the segments answer for the whole window, migrated rows included
        fast = segments.features(NUMERICAL, CATEGORICAL)
        json = window_queries.features(connection, WINDOW, MODEL, 1, NUMERICAL, CATEGORICAL)
        fast_outputs = segments.outputs()
        json_outputs = window_queries.outputs(connection, WINDOW, MODEL, 1)
    assert len(fast) == 200 - 4 - 2 + 300 - 10  # errors, the shadow, version 2 and the request that failed
    assert fast.dtypes.to_dict() == json.dtypes.to_dict()
    pd.testing.assert_frame_equal(_sorted(fast), _sorted(json))
    assert fast["tenure"].notna().sum() > 0 and fast["tenure"].isna().sum() > 200  # gained after the migration
    assert fast["age"].isna().any() and fast["income"].isna().any() and (fast["region"].isna()).any()
    pd.testing.assert_frame_equal(_sorted(fast_outputs), _sorted(json_outputs.astype({"score": float})))

    runtime = runtime_for(url, None, settings)
    run = {"model_name": MODEL, "start": T0, "end": WINDOW.end, "reports": False, "now": T0 + timedelta(hours=1)}
    compute_windows(runtime, **run)
    from_segments = _window_verdicts(url)
    with get_engine(url).begin() as connection:
        connection.execute(delete(PredictionSegment))
        assert window_columns.read(connection, WINDOW, MODEL, 1, _successes(url)) is None
    compute_windows(runtime, **run)  # now every column comes from the JSON
    assert _window_verdicts(url) == from_segments
    assert {row[0] for row in from_segments["drift"]} >= {*NUMERICAL, *CATEGORICAL}
    assert any(name == "accuracy" for name, _, _ in from_segments["metrics"])


def test_rows_without_segments_or_other_types_send_the_read_to_the_json(sqlite_url):
    def log(ids, docs, at):
        insert_ignoring_duplicates(sqlite_url, encode_rows(
            True, model_name=MODEL, model_version=1, created_at=at, ids=ids,
            features_json=[orjson.dumps(d).decode() for d in docs], predictions=["1"] * len(ids),
            scores=[0.5] * len(ids), latency_ms=1.0))

    def read():
        with get_engine(sqlite_url).connect() as connection:
            return window_columns.read(connection, WINDOW, MODEL, 1, _successes(sqlite_url))

    log(["a", "b"], [{"age": 30.0, "region": "north"}, {"age": 31.0, "region": "south"}], T0)
    assert read().features(["age"], ["region"])["age"].tolist() == [30.0, 31.0]
    log(["c"], [{"age": 32.0, "region": 7}], T0 + timedelta(seconds=1))  # a number where a category belongs
    assert read().features(["age"], []) is not None and read().features(["age"], ["region"]) is None
    log(["d", "e"], [{"age": "old"}, {"age": 1}], T0 + timedelta(seconds=2))  # no segment: a key of two kinds
    assert read() is None


def test_a_batch_run_again_replaces_its_segments(sqlite_url):
    """Batch scoring upserts its interval's rows; each run replaces the interval's segments, so a
    re-run with another version leaves every row in one segment, under the version it now has."""
    from monitoring.store.prediction_rows import upsert_batch_predictions

    def run(version: int) -> None:
        upsert_batch_predictions(sqlite_url, [
            {"id": f"batch-{i}", "model_name": MODEL, "model_version": version, "created_at": T0 + timedelta(seconds=i),
             "features": {"age": 30.0 + i, "region": "north"}, "prediction": "1", "score": 0.5, "latency_ms": 1.0,
             "status": "ok", "error": None, "source": "batch"} for i in range(20)])

    def read(version: int):
        with get_engine(sqlite_url).connect() as connection:
            served = {t.version: t.successes for t in window_queries.traffic(connection, WINDOW, MODEL)}
            return window_columns.read(connection, WINDOW, MODEL, version, served.get(version, 0))

    run(1)
    run(2)
    with get_engine(sqlite_url).connect() as connection:
        assert connection.scalar(select(func.sum(PredictionSegment.rows))) == 20
    assert read(1) is None
    assert read(2).features(["age"], ["region"])["age"].tolist() == [30.0 + i for i in range(20)]

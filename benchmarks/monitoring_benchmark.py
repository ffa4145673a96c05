"""Benchmark: one monitoring window of 1M logged predictions read from PostgreSQL, end to end.

    .venv/bin/python benchmarks/monitoring_benchmark.py [--rows 1000000] [--labelled 0.1]

Creates a throwaway PostgreSQL database (admin URL: VIGIL_BENCH_POSTGRES_URL, default
postgres@127.0.0.1:5432), trains a demo model into a temporary MLflow store (its reference data:
15,000 rows, 14 features), and seeds one 5-minute window with --rows predictions (demo loan
applications as JSON features, 0.5 % errors) and feedback for --labelled of them, with COPY, and
the rows' prediction segments the way the log shipper writes them (its batches of
--segment-rows, default VIGIL_LOG_FLUSH_ROWS' 500, in time order; the time this takes per row is
what the shipper spends on them). Then it times:
- the parts of one window, run the way ``monitoring.metrics.window_pipeline`` runs them: latency (requests, errors
  and p50/p95/p99 aggregated in SQL), read (labelled rows; the segments; the feature columns and
  outputs from them, and from the JSON as before), quality (metrics of the labelled rows), drift
  (14 features vs reference), write (upserting the metric and drift rows);
- ``compute_windows`` end to end for the window from the segments (a first run, which also scores
  the reference once for the prediction drift, then without the Evidently report and with it),
  then again without the report with the segments deleted (every column from the JSON, as before
  issue 17);
- the baseline: the same window read the plain way (every row's JSON features and latency
  fetched through SQLAlchemy, features unpacked with ``pd.json_normalize``, percentiles with numpy).
It prints the size of the log and of its segments. The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

ADMIN_URL = os.environ.get("VIGIL_BENCH_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
WINDOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
MODEL = "loan-default-bench"
CHUNK = 100_000


def _admin(statement: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(statement))
    engine.dispose()


def _json_features(frame: pd.DataFrame) -> list[str]:
    import orjson

    return [orjson.dumps(record).decode() for record in frame.to_dict("records")]


def seed(url: str, rows: int, labelled: float) -> None:
    """--rows predictions in one window and their feedback, through COPY."""
    from monitoring.store.engine import get_engine
    from monitoring.training import datasets

    rng = np.random.default_rng(11)
    raw = get_engine(url).raw_connection()
    try:
        cursor = raw.cursor()
        for start in range(0, rows, CHUNK):
            n = min(CHUNK, rows - start)
            features = datasets.generate_features(n, seed=start + 1)
            score = rng.random(n)
            created = WINDOW + pd.to_timedelta(rng.uniform(0, 299.999, n), unit="s")
            ids = [str(uuid.UUID(int=start + i + 1)) for i in range(n)]
            status = np.where(rng.random(n) < 0.005, "error", "ok")
            predictions = pd.DataFrame({
                "id": ids, "model_name": MODEL, "model_version": 1, "created_at": created,
                "features": _json_features(features), "prediction": (score > 0.5).astype(int).astype(str),
                "score": score, "latency_ms": rng.lognormal(2.5, 0.6, n), "status": status,
                "error": None, "source": "api"})
            buffer = io.StringIO()
            predictions.to_csv(buffer, index=False, header=False, date_format="%Y-%m-%d %H:%M:%S.%f+00")
            buffer.seek(0)
            cursor.copy_expert("COPY predictions (id, model_name, model_version, created_at, features, "
                               "prediction, score, latency_ms, status, error, source) FROM STDIN WITH CSV",
                               buffer)
            chosen = rng.random(n) < labelled
            truth = (rng.random(n) < score).astype(int).astype(str)
            feedback = pd.DataFrame({"prediction_id": np.asarray(ids)[chosen], "model_name": MODEL,
                                     "label": truth[chosen],
                                     "received_at": created[chosen] + pd.Timedelta(minutes=1)})
            buffer = io.StringIO()
            feedback.to_csv(buffer, index=False, header=False, date_format="%Y-%m-%d %H:%M:%S.%f+00")
            buffer.seek(0)
            cursor.copy_expert("COPY feedback (prediction_id, model_name, label, received_at) FROM STDIN "
                               "WITH CSV", buffer)
        raw.commit()
        cursor.execute("ANALYZE predictions")
        cursor.execute("ANALYZE feedback")
        raw.commit()
    finally:
        raw.close()


def seed_segments(url: str, batch_rows: int) -> tuple[float, int]:
    """The window's prediction segments as the log shipper writes them: its batches in time order.
    Returns the seconds spent making them (not writing them) and how many there are."""
    from sqlalchemy import text

    from monitoring.store import feature_segments
    from monitoring.store.engine import get_engine

    engine = get_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT model_name, model_version, created_at, CAST(features AS TEXT), prediction, score, status, role "
            "FROM predictions ORDER BY created_at")).all()
    making, count = 0.0, 0
    with engine.begin() as connection:
        for first in range(0, len(rows), batch_rows):
            started = time.perf_counter()
            made = feature_segments.segments([tuple(row) for row in rows[first:first + batch_rows]])
            making += time.perf_counter() - started
            feature_segments.insert_segments(connection, made)
            count += len(made)
        connection.execute(text("ANALYZE prediction_segments"))
    return making, count


def sizes(url: str) -> dict[str, int]:
    """Bytes on disk (with indexes and TOAST) of the log's partitions and of the segments."""
    from sqlalchemy import text

    from monitoring.store.engine import get_engine

    with get_engine(url).connect() as connection:
        log_bytes = connection.execute(text(
            "SELECT coalesce(sum(pg_total_relation_size(i.inhrelid)), 0) FROM pg_inherits i "
            "WHERE i.inhparent = 'predictions'::regclass")).scalar_one()
        segment_bytes = connection.execute(text("SELECT pg_total_relation_size('prediction_segments')")).scalar_one()
    return {"predictions": int(log_bytes), "prediction_segments": int(segment_bytes)}


def timed(label: str, results: dict, func, *args, **kwargs):
    started = time.perf_counter()
    value = func(*args, **kwargs)
    results[label] = time.perf_counter() - started
    return value


def window_parts(url: str, registry, settings) -> dict[str, float]:
    """The steps of one window as compute_windows runs them, each timed."""
    from monitoring.metrics.drift import compute_drift
    from monitoring.metrics.references import load_reference
    from monitoring.metrics.window_pipeline import _quality
    from monitoring.metrics.windows import Window, service_metrics
    from monitoring.runtime import Runtime
    from monitoring.store import metric_windows, window_columns, window_queries
    from monitoring.store.engine import get_engine, session_scope, utcnow

    window = Window(WINDOW, WINDOW + timedelta(minutes=5))
    reference = load_reference(Runtime(settings, registry), MODEL, 1)
    parts: dict[str, float] = {}
    with get_engine(url).connect() as connection:
        traffic = timed("latency (SQL aggregate)", parts, window_queries.traffic, connection, window, MODEL)
        labelled = timed("read labelled rows (COPY)", parts, window_queries.labelled, connection, window, MODEL)
        segments = timed("read + decode the segments", parts, window_columns.read, connection, window, MODEL, 1,
                         traffic[0].successes)
        assert segments is not None, "the segments do not hold the window's rows"
        timed("outputs from the segments", parts, segments.outputs)
        current = timed("feature columns from the segments", parts, segments.features,
                        reference.numerical, reference.categorical)
        json_parts: dict[str, float] = {}
        timed("outputs (COPY as CSV)", json_parts, window_queries.outputs, connection, window, MODEL, 1)
        from_json = timed("feature columns (COPY of the JSON)", json_parts, window_queries.features, connection,
                          window, MODEL, 1, reference.numerical, reference.categorical)
    assert len(from_json) == len(current)
    quality = timed("quality", parts, _quality, "classification", labelled)
    drift = timed("drift (14 features)", parts, compute_drift, reference.frame, current, reference.numerical,
                  reference.categorical, drift_share=settings.watchdog.drift_share)
    now = utcnow()
    metrics = service_metrics(window, traffic[0].requests, traffic[0].errors, traffic[0].percentiles,
                              traffic[0].latency_samples) | quality
    rows = [metric_windows.metric_row(model_name=MODEL, version=1, window_start=window.start,
                                    window_end=window.end, metric=k, value=v, sample_count=c, computed_at=now)
            for k, (v, c) in metrics.items()]
    drift_rows = [{"model_name": MODEL, "model_version": 1, "window_start": window.start,
                   "window_end": window.end, "feature": f.feature, "method": f.method, "score": f.score,
                   "threshold": f.threshold, "drifted": f.drifted, "reference_size": f.reference_size,
                   "current_size": f.current_size, "report_path": None, "computed_at": now}
                  for f in drift.features]

    def write():
        with session_scope(url) as session:
            metric_windows.upsert_metrics(session, rows)
            metric_windows.upsert_drift(session, drift_rows)

    timed("write (upserts)", parts, write)
    print(f"  window: {traffic[0].requests:,} predictions, {len(labelled):,} labelled, "
          f"{len(current):,} feature rows; drift share {drift.share_drifted:.2f}")
    return parts, json_parts


def baseline(url: str, start: datetime = WINDOW, end: datetime = WINDOW + timedelta(minutes=5),
             model_name: str = MODEL) -> dict[str, float]:
    """The plain way: every row's JSON and latency through SQLAlchemy, json_normalize, numpy."""
    from sqlalchemy import select

    from monitoring.store.engine import get_engine
    from monitoring.store.tables import Prediction

    parts: dict[str, float] = {}
    started = time.perf_counter()
    with get_engine(url).connect() as connection:
        rows = connection.execute(
            select(Prediction.features, Prediction.latency_ms, Prediction.status)
            .where(Prediction.model_name == model_name, Prediction.created_at >= start,
                   Prediction.created_at < end)).all()
    parts["fetch rows"] = time.perf_counter() - started
    started = time.perf_counter()
    frame = pd.json_normalize([r[0] for r in rows])
    np.percentile(np.array([r[1] for r in rows]), [50, 95, 99])
    parts["unpack JSON + percentiles"] = time.perf_counter() - started
    assert len(frame) == len(rows)
    return parts


def end_to_end(settings, registry, reports: bool, read: str) -> None:
    from monitoring.metrics.window_pipeline import compute_windows
    from monitoring.runtime import Runtime

    started = time.perf_counter()
    summary = compute_windows(Runtime(settings, registry), model_name=MODEL, start=WINDOW,
                              end=WINDOW + timedelta(minutes=5), reports=reports, now=WINDOW + timedelta(hours=1))
    label = f"{read}, {'with Evidently report' if reports else 'without report'}"
    print(f"  {label:<54} {time.perf_counter() - started:7.2f} s  "
          f"({summary.metric_rows} metric rows, {summary.drift_rows} drift rows)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--labelled", type=float, default=0.1)
    parser.add_argument("--segment-rows", type=int, default=500, help="rows per log shipper batch")
    args = parser.parse_args()

    from sqlalchemy import delete
    from sqlalchemy.engine import make_url

    from monitoring.registry.mlflow_registry import Registry
    from monitoring.settings import Settings
    from monitoring.store.engine import dispose_engines, get_engine
    from monitoring.store.migrations import upgrade
    from monitoring.store.tables import PredictionSegment
    from monitoring.training import datasets
    from monitoring.training.trainer import train

    name = f"vigil_bench_{uuid.uuid4().hex[:8]}"
    url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    _admin(f'CREATE DATABASE "{name}"')
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(var_dir=Path(tmp) / "var", database_url=url,
                                mlflow_tracking_uri=f"sqlite:///{tmp}/mlflow.db", api_url="http://127.0.0.1:9")
            upgrade(url)
            registry = Registry(settings)
            started = time.perf_counter()
            train(datasets.generate(20_000, 0), registry=registry, store_url=url, model_name=MODEL, actor="bench")
            print(f"setup: trained {MODEL} v1 in {time.perf_counter() - started:.1f} s")
            started = time.perf_counter()
            seed(url, args.rows, args.labelled)
            print(f"setup: seeded {args.rows:,} predictions with COPY in {time.perf_counter() - started:.1f} s")

            making, count = seed_segments(url, args.segment_rows)
            print(f"setup: {count:,} prediction segments as the shipper writes them (batches of "
                  f"{args.segment_rows}); making them took {making:.1f} s, {making / args.rows * 1e6:.1f} us per row")
            stored = sizes(url)
            print(f"setup: the log's partitions {stored['predictions'] / 1e6:,.0f} MB, the segments "
                  f"{stored['prediction_segments'] / 1e6:,.0f} MB ({stored['prediction_segments'] / args.rows:.0f} "
                  f"bytes per prediction)")

            print("\none window, step by step (as compute_windows runs them):")
            parts, json_parts = window_parts(url, registry, settings)
            for label, seconds in parts.items():
                print(f"  {label:<36} {seconds:7.2f} s")
            print(f"  {'sum':<36} {sum(parts.values()):7.2f} s")
            print("  the same columns from the JSON path (as before issue 17):")
            for label, seconds in json_parts.items():
                print(f"  {label:<36} {seconds:7.2f} s")

            print("\ncompute_windows end to end (the window already computed once: upserts change nothing):")
            # the first run also scores the reference once for the prediction drift (cached after it)
            end_to_end(settings, registry, False, "from the segments, first run")
            for reports in (False, True):
                end_to_end(settings, registry, reports, "from the segments")
            with get_engine(url).begin() as connection:
                connection.execute(delete(PredictionSegment))
            end_to_end(settings, registry, False, "from the JSON (no segments)")  # the report file exists now

            print("\nbaseline: the plain read of the same window")
            base = baseline(url)
            for label, seconds in base.items():
                print(f"  {label:<32} {seconds:7.2f} s")
            print(f"  {'sum':<32} {sum(base.values()):7.2f} s")
    finally:
        dispose_engines()
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: one monitoring window of 1M logged predictions read from PostgreSQL, end to end.

    .venv/bin/python benchmarks/monitoring_benchmark.py [--rows 1000000] [--labelled 0.1]

Creates a throwaway PostgreSQL database (admin URL: VIGIL_BENCH_POSTGRES_URL, default
postgres@127.0.0.1:5432), trains a demo model into a temporary MLflow store (its reference data:
15,000 rows, 14 features), and seeds one 5-minute window with --rows predictions (demo loan
applications as JSON features, 0.5 % errors) and feedback for --labelled of them, with COPY.
Then it times:
- the parts of one window, run the way ``monitoring.metrics.window_pipeline`` runs them: latency (requests, errors
  and p50/p95/p99 aggregated in SQL), read (labelled rows; feature columns extracted in SQL and
  streamed with COPY), quality (metrics of the labelled rows), drift (14 features vs reference),
  write (upserting the metric and drift rows);
- ``compute_windows`` end to end for the window, without the Evidently report and with it;
- the baseline: the same window read the plain way (every row's JSON features and latency
  fetched through SQLAlchemy, features unpacked with ``pd.json_normalize``, percentiles with numpy).
The database is dropped at the end.
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
    from monitoring.store import metric_windows, window_queries
    from monitoring.store.engine import get_engine, session_scope, utcnow

    window = Window(WINDOW, WINDOW + timedelta(minutes=5))
    reference = load_reference(Runtime(settings, registry), MODEL, 1)
    parts: dict[str, float] = {}
    with get_engine(url).connect() as connection:
        traffic = timed("latency (SQL aggregate)", parts, window_queries.traffic, connection, window, MODEL)
        labelled = timed("read labelled rows", parts, window_queries.labelled, connection, window, MODEL)
        current = timed("read feature columns (COPY)", parts, window_queries.features, connection, window,
                        MODEL, 1, reference.numerical, reference.categorical)
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
    return parts


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--labelled", type=float, default=0.1)
    args = parser.parse_args()

    from sqlalchemy.engine import make_url

    from monitoring.metrics.window_pipeline import compute_windows
    from monitoring.registry.mlflow_registry import Registry
    from monitoring.runtime import Runtime
    from monitoring.settings import Settings
    from monitoring.store.engine import dispose_engines
    from monitoring.store.migrations import upgrade
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

            print("\none window, step by step (as compute_windows runs them):")
            parts = window_parts(url, registry, settings)
            for label, seconds in parts.items():
                print(f"  {label:<32} {seconds:7.2f} s")
            print(f"  {'sum':<32} {sum(parts.values()):7.2f} s")

            print("\ncompute_windows end to end (the window already computed once: upserts change nothing):")
            for reports in (False, True):
                started = time.perf_counter()
                summary = compute_windows(Runtime(settings, registry), model_name=MODEL, start=WINDOW,
                                          end=WINDOW + timedelta(minutes=5), reports=reports,
                                          now=WINDOW + timedelta(hours=1))
                label = "with Evidently report" if reports else "without report"
                print(f"  {label:<32} {time.perf_counter() - started:7.2f} s  "
                      f"({summary.metric_rows} metric rows, {summary.drift_rows} drift rows)")

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

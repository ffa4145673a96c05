"""Benchmark: the dashboard's queries and pages on months of data in PostgreSQL.

    .venv/bin/python benchmarks/dashboard_benchmark.py [--days 30] [--predictions 10000000]
                                                       [--reuse] [--repeat 3]

Seeds a PostgreSQL database (``vigil_dashboard_bench`` on VIGIL_BENCH_POSTGRES_URL, default the
local server) with ``cli.demo_seed``: 3 models x --days of per-minute metric windows (12
metrics) and per-minute drift results (14 features), the registry story, alerts, and
--predictions logged predictions in all, loaded with COPY (a few minutes; --reuse skips seeding
when the database is already there). Then, for each page, it times the queries the page runs
over the last 30 days (first run cold, then the best of --repeat), and renders each page
headless with streamlit's AppTest (query cache cleared before each render). Target: < 1.5 s per page.

Baseline, measured in the same run: drawing the same 30-day latency chart by fetching every
per-minute row and aggregating in pandas, which is what the SQL bucketing avoids.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pandas as pd
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from cli.demo_seed import SeedSpec, seed
from monitoring import metric_names
from monitoring.settings import get_settings, reset_settings
from monitoring.store import dashboard_queries, dashboard_summaries
from monitoring.store.engine import dispose_engines, get_engine, utcnow
from monitoring.store.migrations import upgrade
from monitoring.store.tables import MetricWindow

ROOT = Path(__file__).resolve().parents[1]

ADMIN_URL = os.environ.get("VIGIL_BENCH_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
DATABASE = "vigil_dashboard_bench"
MODELS = ("loan-default", "churn", "fraud")
TARGET_SECONDS = 1.5
PAGES = ("overview", "quality", "service", "drift", "registry", "alerts")


def bench_url() -> str:
    return make_url(ADMIN_URL).set(database=DATABASE).render_as_string(hide_password=False)


def prepare(days: float, predictions: int, reuse: bool) -> str:
    url = bench_url()
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        exists = connection.execute(text("select 1 from pg_database where datname = :d"), {"d": DATABASE}).first()
        if exists and reuse:
            print(f"reusing database {DATABASE}")
            return url
        connection.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{DATABASE}"'))
    admin.dispose()
    upgrade(url)
    started = time.perf_counter()
    per_model = -(-predictions // len(MODELS))
    summary = seed(url, SeedSpec(models=MODELS, days=days, window_minutes=1, drift_every_minutes=1,
                                 predictions=per_model),
                   progress=lambda message: print(f"  {time.perf_counter() - started:6.0f} s  {message}",
                                                  flush=True))
    with get_engine(url).connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))
    print(f"seeded in {time.perf_counter() - started:.0f} s: "
          + ", ".join(f"{table} {count:,}" for table, count in summary.rows.items()))
    return url


def timed(function: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(cold seconds, best warm seconds)."""
    started = time.perf_counter()
    function()
    cold = time.perf_counter() - started
    warm = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        warm.append(time.perf_counter() - started)
    return cold, min(warm)


def page_queries(url: str, model: str) -> dict[str, dict[str, Callable[[], object]]]:
    settings = get_settings()
    end = utcnow().replace(second=0, microsecond=0) + timedelta(minutes=1)
    start = end - timedelta(days=30)
    newest_drift = dashboard_queries.drift_windows(url, model, limit=1)["window_start"].iloc[0]
    alert_ids = [int(i) for i in dashboard_queries.alerts(url, model)["id"]]
    return {
        "overview": {"overview (3 models)": lambda: dashboard_summaries.overview(url, settings)},
        "quality": {"quality series 30 d": lambda: dashboard_queries.series(url, model, metric_names.QUALITY, start, end),
                    "alias moves": lambda: dashboard_queries.registry_events(url, model, alias_only=True)},
        "service": {"service+process series 30 d": lambda: dashboard_queries.series(url, model, dashboard_queries.SERVICE_CHARTS, start, end),
                    "alias moves": lambda: dashboard_queries.registry_events(url, model, alias_only=True)},
        "drift": {"drift heatmap 30 d": lambda: dashboard_queries.drift_matrix(url, model, start, end),
                  "drift share series 30 d": lambda: dashboard_queries.series(url, model, (metric_names.DRIFT_SHARE,), start, end),
                  "drift windows": lambda: dashboard_queries.drift_windows(url, model),
                  "one drift window": lambda: dashboard_queries.drift_window(url, model, newest_drift)},
        "registry": {"versions": lambda: dashboard_queries.versions(url, model),
                     "production record": lambda: dashboard_summaries.production_record(
                         dashboard_queries.registry_events(url, model, alias_only=True), end),
                     "production quality per version": lambda: dashboard_queries.version_quality(url, model, metric_names.ACCURACY),
                     "audit trail": lambda: dashboard_queries.registry_events(url, model),
                     "smoke-prediction inputs": lambda: dashboard_queries.recent_inputs(url, model, 20),
                     "refused attempts": lambda: dashboard_queries.access_log(url, channel="dashboard", allowed=False)},
        "alerts": {"alerts": lambda: dashboard_queries.alerts(url, model),
                   "their Slack messages": lambda: dashboard_queries.alert_messages(url, alert_ids)},
    }


def naive_latency_chart(url: str, model: str) -> pd.DataFrame:
    """The baseline: every per-minute row of 30 days to pandas, then bucketed there."""
    end = utcnow()
    query = select(MetricWindow.window_start, MetricWindow.model_version, MetricWindow.metric,
                   MetricWindow.value, MetricWindow.sample_count).where(
        MetricWindow.model_name == model, MetricWindow.metric.in_(dashboard_queries.SERVICE_CHARTS),
        MetricWindow.window_start >= end - timedelta(days=30))
    frame = pd.read_sql(query, get_engine(url))
    frame["bucket"] = frame["window_start"].dt.floor("1h")
    return frame.groupby(["bucket", "model_version", "metric"])["value"].mean().reset_index()


def render_pages(url: str) -> dict[str, float]:
    """Seconds to render each page with AppTest over 30 days, query cache cleared first."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    times = {}
    app = AppTest.from_file(str(ROOT / "app" / "dashboard" / "main.py"), default_timeout=300)
    app.session_state["range"] = "Last 30 days"
    app.run()  # imports and the engine: paid once per process, not per page
    started = time.perf_counter()
    app.switch_page("views/registry.py").run()  # the MLflow client: paid once per process
    times["first registry visit (MLflow client start)"] = time.perf_counter() - started
    for page in PAGES:
        st.cache_data.clear()
        app.switch_page(f"views/{page}.py")
        started = time.perf_counter()
        app.run()
        times[page] = time.perf_counter() - started
        if app.exception:
            raise RuntimeError(f"page {page} failed: {app.exception[0].value}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--predictions", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reuse", action="store_true", help="keep an already seeded database")
    args = parser.parse_args()

    url = prepare(args.days, args.predictions, args.reuse)
    with get_engine(url).connect() as connection:
        counts = {table: connection.execute(text(f"select count(*) from {table}")).scalar_one()
                  for table in ("metric_windows", "drift_results", "predictions")}
    print("rows: " + ", ".join(f"{table} {count:,}" for table, count in counts.items()))

    tmp = tempfile.mkdtemp(prefix="vigil-dash-bench-")
    os.environ.update({"VIGIL_DATABASE_URL": url, "VIGIL_MODEL_NAME": MODELS[0],
                       "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db", "VIGIL_VAR_DIR": tmp,
                       "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"})
    reset_settings()

    print(f"\nqueries per page, model {MODELS[0]}, last 30 days (cold / best of {args.repeat} warm):")
    page_totals, slowest = {}, ("", 0.0)
    for page, queries in page_queries(url, MODELS[0]).items():
        cold_total = warm_total = 0.0
        for name, function in queries.items():
            cold, warm = timed(function, args.repeat)
            cold_total, warm_total = cold_total + cold, warm_total + warm
            slowest = max(slowest, (f"{page}: {name}", cold), key=lambda pair: pair[1])
            print(f"  {page:<9} {name:<32} {cold * 1000:8.0f} ms {warm * 1000:8.0f} ms")
        page_totals[page] = (cold_total, warm_total)
    baseline_cold, baseline_warm = timed(lambda: naive_latency_chart(url, MODELS[0]), args.repeat)
    ours_cold, ours_warm = timed(lambda: dashboard_queries.series(url, MODELS[0], dashboard_queries.SERVICE_CHARTS,
                                                  utcnow() - timedelta(days=30), utcnow()), args.repeat)

    print("\nrendering each page with AppTest (30-day range, cache cleared) ...")
    renders = render_pages(url)
    dispose_engines()

    print("\n| page | queries cold | queries warm | AppTest render | under 1.5 s |")
    print("| --- | ---: | ---: | ---: | --- |")
    for page in PAGES:
        cold, warm = page_totals[page]
        print(f"| {page} | {cold:.2f} s | {warm:.2f} s | {renders[page]:.2f} s | "
              f"{'yes' if max(cold, renders[page]) < TARGET_SECONDS else 'NO'} |")
    print(f"\nfirst Registry visit of a process (starts the MLflow client): "
          f"{renders['first registry visit (MLflow client start)']:.1f} s")
    print(f"slowest query (cold): {slowest[0]}, {slowest[1] * 1000:.0f} ms")
    print(f"baseline, 30-day service charts from raw rows in pandas: {baseline_cold:.2f} s cold, "
          f"{baseline_warm:.2f} s warm; SQL-bucketed: {ours_cold:.2f} s cold, {ours_warm:.2f} s warm "
          f"({baseline_warm / ours_warm:.1f}x)")
    print(f"load average: {', '.join(f'{value:.2f}' for value in os.getloadavg())} "
          f"(median page render {statistics.median(renders[p] for p in PAGES):.2f} s)")


if __name__ == "__main__":
    main()

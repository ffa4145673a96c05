"""Benchmark: sustained ingest into PostgreSQL while the monitoring computes each window as it closes.

    .venv/bin/python benchmarks/ingest_benchmark.py [--minutes 10] [--rate 5000] [--interval-seconds 60]
        [--labelled 0.1] [--label-delay-seconds 20] [--analyze-seconds 30] [--no-baseline]

Creates a throwaway PostgreSQL database (admin URL: VIGIL_BENCH_POSTGRES_URL, default
postgres@127.0.0.1:5432) and trains the demo model into a temporary MLflow store, then, from the next
interval boundary on, for --minutes:

- ingest, in a process of its own as the API's log shipper is: --rate predictions per second (paced
  every 0.1 s), each a one-row request as the API hands it to its shipper (``log_shipper.frame``),
  decoded and written by the shipper's own code (``decode_requests``, ``Shipper.take`` and
  ``Shipper.write``: ``encode_rows`` and the multi-row ``INSERT ... ON CONFLICT DO NOTHING`` in batches
  of VIGIL_LOG_FLUSH_ROWS). --labelled of them get their label --label-delay-seconds later through
  the store write of ``POST /feedback`` (``monitoring.store.feedback.write_labels``), so part of a
  window's labels arrive after it closed and the next run refreshes it, as in production.
  The rows go through that code directly, not over HTTP: on this 2-core machine the API cannot
  also answer 5,000 requests a second beside PostgreSQL and the monitoring (one worker does about
  that alone: "Serving API" in benchmarks/README.md); in production the replicas' shippers write
  the same rows with the same statements.
- monitoring, in this process: at each boundary, once the ingest has written every row answered
  before it, the window that just closed is computed with the call the vigil_monitoring DAG's
  mapped task makes for one model (``monitoring.pipeline_tasks.monitor_interval``, with
  VIGIL_WINDOW_MINUTES = the interval; the Evidently report included, as the DAG runs it).
  Then the baseline: the same window read the plain way (``monitoring_benchmark.baseline``: every
  row's JSON through SQLAlchemy, ``pd.json_normalize``, numpy percentiles), before any metric.

- statistics: a server with autovacuum on (PostgreSQL's default) analyzes a growing partition within
  a minute or so; where it is off (``SHOW autovacuum``; it is on the development machine's server),
  this runs ``ANALYZE predictions, feedback`` every --analyze-seconds from the ingest's start
  instead (0: never). Without statistics on a young partition the planner joins each label of the
  late-feedback lookup against every row of the model (12.5 s for 5,912 labels and 59,040 rows;
  the cost grows with labels x rows): benchmarks/README.md, "Ingest under monitoring".

Per window it prints the rows, the lag (window closed -> its metrics written), the compute seconds
and the baseline's seconds; at the end the max and median lag against the interval (target: every
lag under one interval) and the monitoring throughput (rows per compute second) over the ingest
rate (target: 20x or more), also without the first window (which imports Evidently and reads the
reference from MLflow, as a task in a fresh process does), with the baseline's
ratio beside it. Exit status 1 when a target is
missed or the ingest fell behind its rate. The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

from monitoring_benchmark import ADMIN_URL, _admin, baseline  # noqa: E402 - beside this file

MODEL = "loan-default-ingest"
TICK_SECONDS = 0.1
POOL_ROWS = 20_000  # distinct feature rows, cycled
ERROR_SHARE = 0.005


def ingest(url: str, first: float, rate: float, seconds: float, labelled: float, label_delay: float,
           flush_rows: int, written_through, done) -> None:
    """The shipper's side, in its own process: ``rate`` one-row requests a second for ``seconds`` from
    the epoch time ``first`` on. ``written_through`` gets the answer time up to which every row is written."""
    import numpy as np
    import orjson

    from monitoring.labels import label_text
    from monitoring.serving.log_shipper import HEADER, Shipper, decode_requests, frame
    from monitoring.store.feedback import NewLabel, write_labels
    from monitoring.store.prediction_rows import new_prediction_id
    from monitoring.training import datasets

    pool = [orjson.dumps(r).decode() for r in datasets.generate_features(POOL_ROWS, seed=7).to_dict("records")]
    rng = np.random.default_rng(5)
    shipper = Shipper(url, capacity=1_000_000, flush_rows=flush_rows, flush_seconds=TICK_SECONDS,
                      drain_seconds=30.0)
    labels: deque[tuple[float, NewLabel]] = deque()
    time.sleep(max(first - time.time(), 0.0))  # ready before the first window opens
    started = time.monotonic()
    sent = 0
    while (elapsed := time.monotonic() - started) < seconds:
        due = int(rate * elapsed) - sent
        if due > 0:
            now = datetime.now(UTC)
            scores = rng.random(due)
            failed = rng.random(due) < ERROR_SHARE
            latency = rng.lognormal(2.5, 0.6, due)
            requests = []
            for i in range(due):
                pid = new_prediction_id()
                ok = not failed[i]
                requests.append([MODEL, 1, now.isoformat(), [pid], [pool[(sent + i) % POOL_ROWS]],
                                 [int(scores[i] > 0.5) if ok else None], [float(scores[i]) if ok else None],
                                 float(latency[i]), "ok" if ok else "error", None if ok else "ValueError: bad row",
                                 "api", None, None, "champion", None])
                if ok and rng.random() < labelled:
                    truth = label_text(int(rng.random() < scores[i]))
                    labels.append((time.monotonic() + label_delay, NewLabel(pid, MODEL, truth)))
            shipper.take(decode_requests(frame(requests)[HEADER.size:], False))
            if not shipper.write():
                raise SystemExit(f"the store refused a batch: {shipper.counts.last_error}")
            written_through.value = now.timestamp()
            sent += due
        ready = []
        while labels and labels[0][0] <= time.monotonic():
            ready.append(labels.popleft()[1])
        if ready:
            write_labels(url, ready, [], client="bench", key_id=None, trusted=True, actor="bench")
        time.sleep(max(TICK_SECONDS - (time.monotonic() - started - elapsed), 0.0))
    written_through.value = first + seconds  # every tick was written: the last window is complete
    done.value = sent


def _window_rows(url: str, start: datetime, end: datetime) -> int:
    from sqlalchemy import select

    from monitoring import metric_names
    from monitoring.store.engine import session_scope
    from monitoring.store.tables import MetricWindow

    with session_scope(url) as session:
        value = session.scalar(select(MetricWindow.value).where(
            MetricWindow.model_name == MODEL, MetricWindow.window_start == start, MetricWindow.window_end == end,
            MetricWindow.metric == metric_names.REQUESTS))
    return int(value or 0)


def _autovacuum_on(url: str) -> bool:
    from sqlalchemy import text

    from monitoring.store.engine import get_engine

    with get_engine(url).connect() as connection:
        return connection.execute(text("SHOW autovacuum")).scalar() == "on"


def _analyze_every(url: str, first: float, period: float, stop: threading.Event) -> None:
    """What autovacuum's analyze would do for the growing tables, on this thread's own connection."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    beat = first + period
    while not stop.wait(max(beat - time.time(), 0.0)):
        with engine.connect() as connection:
            connection.execute(text("ANALYZE predictions, feedback"))
        beat += period
    engine.dispose()


def _settings_environment(url: str, tmp: str, interval: int) -> None:
    """What a DAG task reads: the store, MLflow, the window; no API to scrape (its port refuses)."""
    os.environ.update({"VIGIL_DATABASE_URL": url, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db",
                       "VIGIL_VAR_DIR": f"{tmp}/var", "VIGIL_WINDOW_MINUTES": str(interval // 60),
                       "VIGIL_API_URL": "http://127.0.0.1:9", "VIGIL_MODEL_NAME": MODEL})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the ingest runs")
    parser.add_argument("--rate", type=float, default=5000.0, help="predictions per second")
    parser.add_argument("--interval-seconds", type=int, default=60,
                        help="the monitoring window and how often it runs (a whole number of minutes)")
    parser.add_argument("--labelled", type=float, default=0.1, help="share of predictions that get a label")
    parser.add_argument("--label-delay-seconds", type=float, default=20.0)
    parser.add_argument("--analyze-seconds", type=float, default=30.0,
                        help="ANALYZE period where the server's autovacuum is off (0: never)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the plain read of each window")
    args = parser.parse_args()
    interval = args.interval_seconds
    if interval < 60 or interval % 60:
        parser.error("--interval-seconds must be a whole number of minutes (60, 120, ...): "
                     "the monitoring's windows are VIGIL_WINDOW_MINUTES long")
    windows = int(args.minutes * 60 // interval)
    if windows < 1 or args.rate <= 0 or not 0 <= args.labelled <= 1:
        parser.error("--minutes must cover one interval at least, --rate be positive, --labelled within [0, 1]")

    from sqlalchemy.engine import make_url

    from monitoring.pipeline_tasks import monitor_interval
    from monitoring.registry.mlflow_registry import Registry
    from monitoring.settings import get_settings, reset_settings
    from monitoring.store.engine import dispose_engines
    from monitoring.store.migrations import upgrade
    from monitoring.training import datasets
    from monitoring.training.trainer import train

    name = f"vigil_bench_{uuid.uuid4().hex[:8]}"
    url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    _admin(f'CREATE DATABASE "{name}"')
    spawn = multiprocessing.get_context("spawn")
    shipper = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            _settings_environment(url, tmp, interval)
            reset_settings()
            settings = get_settings()
            upgrade(url)
            started = time.perf_counter()
            train(datasets.generate(20_000, 0), registry=Registry(settings), store_url=url, model_name=MODEL,
                  actor="bench")
            print(f"setup: trained {MODEL} v1 in {time.perf_counter() - started:.1f} s; "
                  f"ingest {args.rate:,.0f}/s for {windows} window(s) of {interval} s, "
                  f"{args.labelled:.0%} labelled {args.label_delay_seconds:g} s later")
            dispose_engines()
            written_through, sent = spawn.Value("d", 0.0), spawn.Value("q", 0)
            first = datetime.fromtimestamp((time.time() // interval + 1) * interval, UTC)
            if first.timestamp() - time.time() < 10:  # the ingest process needs a few seconds to start
                first += timedelta(seconds=interval)
            shipper = spawn.Process(target=ingest, name="ingest", args=(
                url, first.timestamp(), args.rate, windows * interval, args.labelled, args.label_delay_seconds,
                settings.log_flush_rows, written_through, sent))
            shipper.start()
            stop_analyze = threading.Event()
            if args.analyze_seconds > 0 and not _autovacuum_on(url):
                print(f"the server's autovacuum is off: ANALYZE every {args.analyze_seconds:g} s instead")
                threading.Thread(target=_analyze_every, args=(url, first.timestamp(), args.analyze_seconds,
                                                              stop_analyze), daemon=True).start()
            results = []
            print(f"\n{'window (UTC)':<22} {'rows':>9} {'ingest/s':>9} {'lag s':>7} {'compute s':>10} "
                  f"{'rows/compute s':>15} {'baseline s':>11}")
            for k in range(1, windows + 1):
                start, end = first + timedelta(seconds=(k - 1) * interval), first + timedelta(seconds=k * interval)
                while written_through.value < end.timestamp():
                    if not shipper.is_alive() and written_through.value < end.timestamp():
                        raise SystemExit("the ingest process stopped early (see its error above)")
                    time.sleep(0.02)
                began = time.perf_counter()
                monitor_interval(start, end, model_name=MODEL)
                compute = time.perf_counter() - began
                lag = time.time() - end.timestamp()
                rows = _window_rows(url, start, end)
                plain = sum(baseline(url, start, end, MODEL).values()) if not args.no_baseline else None
                results.append((rows, lag, compute, plain))
                print(f"{start:%H:%M:%S}-{end:%H:%M:%S}    {rows:>9,} {rows / interval:>9,.0f} {lag:>7.2f} "
                      f"{compute:>10.2f} {rows / compute:>15,.0f} "
                      f"{'-' if plain is None else f'{plain:.2f}':>11}", flush=True)
            stop_analyze.set()
            shipper.join(60)
            return _summary(results, args.rate, interval, sent.value, windows)
    finally:
        if shipper is not None and shipper.is_alive():
            shipper.terminate()
        dispose_engines()
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _summary(results: list[tuple[int, float, float, float | None]], rate: float, interval: int, sent: int,
             windows: int) -> int:
    rows = sum(r[0] for r in results)
    lags = [r[1] for r in results]
    throughput = rows / sum(r[2] for r in results)
    expected = rate * interval * windows
    print(f"\ningest: {sent:,} predictions sent, {rows:,} counted in the windows "
          f"({rows / expected:.1%} of {rate:,.0f}/s x {windows * interval} s)")
    print(f"lag (window closed -> metrics written): max {max(lags):.2f} s, median {statistics.median(lags):.2f} s, "
          f"interval {interval} s (target: every lag < the interval)")
    print(f"monitoring throughput: {throughput:,.0f} rows per compute second = {throughput / rate:.1f}x the "
          f"ingest rate (target >= 20x)")
    if len(results) > 1:  # the first run also imports Evidently and reads the reference from MLflow
        warm = sum(r[0] for r in results[1:]) / sum(r[2] for r in results[1:])
        print(f"  after the first window: {warm:,.0f} rows per compute second = {warm / rate:.1f}x, "
              f"compute median {statistics.median(r[2] for r in results[1:]):.2f} s")
    plain = [r[3] for r in results if r[3] is not None]
    if plain:
        base = rows / sum(plain)
        print(f"baseline (plain read, no metric): {base:,.0f} rows per second = {base / rate:.1f}x the ingest rate")
    kept_up = rows >= 0.98 * expected
    if not kept_up:
        print("the ingest fell behind its rate: the figures above are for a lower load")
    return 0 if max(lags) < interval and throughput >= 20 * rate and kept_up else 1


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: the store's size after 30 simulated days at 100 predictions/s, retention on vs off.

    .venv/bin/python benchmarks/retention_benchmark.py [--days 30] [--rate 100] [--sample-rows 20000]
                                                       [--store both|postgres|sqlite]

100 predictions/s is 8.64 M a day; 30 days of that cannot be written on a test machine, so each
simulated day gets a representative sample of --sample-rows predictions, and what grows with the
prediction rate is scaled up by rate x 86,400 / sample-rows (432 by default):
- predictions: demo loan applications (14 features as JSON, as the API logs them), spread over
  the day, written through the prediction log's own insert; feedback for 30 % of them an hour later.
  Their tables, partitions, indexes (and, on SQLite, the free pages deletes leave) are scaled.
- what does not grow with the rate is written at its real volume and not scaled: per 5-minute
  window 14 metric rows and 14 drift rows (288 windows a day), 5 delivered Slack messages and 10
  operator actions a day, and one Evidently HTML report per window: a real report of the demo data,
  hard-linked 288 times a day (counted at its full size per file, as separate files would be).
Each day the maintenance run (``monitoring.retention.prune.prune``, as the vigil_maintenance DAG
calls it) runs at 02:30 of that day with the default retention: predictions and feedback 7 + 14
days, delivered outbox 7, access log 365, metrics and drift 90, reports 30 days. "Off" runs the same
with VIGIL_RETENTION_ENABLED=false. Sizes: PostgreSQL's pg_total_relation_size of every table
after a plain VACUUM (what autovacuum does), SQLite's pages per table (dbstat) and free pages.
Fresh throwaway stores (admin URL: VIGIL_BENCH_POSTGRES_URL) are dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

ADMIN_URL = os.environ.get("VIGIL_BENCH_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
MODEL = "loan-default"
WINDOWS_PER_DAY = 288
REQUEST_ROWS = 20
LABELLED = 0.3
GB = 1e9


@dataclass
class Sizes:
    scaled: float  # bytes: predictions + feedback (+ SQLite free pages), scaled to the real rate
    fixed: float  # bytes: metric, drift, outbox, access log and the rest, as written
    reports: float  # bytes of report files

    @property
    def total(self) -> float:
        return self.scaled + self.fixed + self.reports


def _admin(statement: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(statement))
    engine.dispose()


def _features_pool(rows: int) -> tuple[list[str], list[str], pd.DataFrame]:
    import orjson

    from monitoring.training import datasets

    data = datasets.generate(rows, 0)
    frame = data.X()
    return [orjson.dumps(r).decode() for r in frame.to_dict("records")], data.features, data


def _real_report(directory: Path) -> Path:
    """One real Evidently drift report of the demo data (what every window's file holds)."""
    from monitoring.metrics.evidently_report import save_drift_report
    from monitoring.training import datasets

    reference = datasets.generate(2_000, 1)
    current = datasets.generate(2_000, 2, scenario="covariate_drift")
    return save_drift_report(reference.X(), current.X(), reference.numeric, reference.categorical,
                             directory / "report.html", sample_rows=2_000, drift_share=0.5)


def _log_day(url: str, sqlite: bool, day: datetime, rows: int, pool: list[str], rng: random.Random) -> list[tuple]:
    """A day's sample of predictions, through the prediction log's insert; (id, time) of each."""
    from monitoring.store.prediction_rows import (
        encode_rows,
        insert_ignoring_duplicates,
        new_prediction_id,
    )

    batch, logged = [], []
    for offset in sorted(rng.uniform(0, 86_400) for _ in range(rows // REQUEST_ROWS)):
        when = day + timedelta(seconds=offset)
        ids = [new_prediction_id() for _ in range(REQUEST_ROWS)]
        batch += encode_rows(sqlite, model_name=MODEL, model_version=1, created_at=when, ids=ids,
                             features_json=rng.choices(pool, k=REQUEST_ROWS), predictions=[rng.randint(0, 1)
                                                                                          for _ in ids],
                             scores=[rng.random() for _ in ids], latency_ms=rng.uniform(2, 20))
        logged += [(pid, when) for pid in ids]
        if len(batch) >= 5_000:
            insert_ignoring_duplicates(url, batch)
            batch = []
    insert_ignoring_duplicates(url, batch)
    return logged


def _day_of_monitoring(url: str, day: datetime, logged: list[tuple], features: list[str],
                       var_dir: Path, report: Path, rng: random.Random) -> None:
    """Feedback, the day's metric and drift rows and report files, a few messages and actions."""
    from monitoring import metric_names
    from monitoring.metrics.report_files import report_path
    from monitoring.store.bulk_load import bulk_append
    from monitoring.store.engine import session_scope
    from monitoring.store.tables import (
        AccessLog,
        DriftResult,
        Feedback,
        MetricWindow,
        OutboxMessage,
    )

    labelled = [item for item in logged if rng.random() < LABELLED]
    bulk_append(url, Feedback, pd.DataFrame({
        "prediction_id": [pid for pid, _ in labelled], "model_name": MODEL,
        "label": [str(rng.randint(0, 1)) for _ in labelled],
        "received_at": pd.to_datetime([when + timedelta(hours=1) for _, when in labelled], utc=True)}))
    metrics = [*metric_names.CLASSIFICATION_QUALITY, *metric_names.SERVICE, *metric_names.PROCESS,
               metric_names.DRIFT_SHARE]
    metric_rows, drift_rows = [], []
    for n in range(WINDOWS_PER_DAY):
        start, end = day + timedelta(minutes=5 * n), day + timedelta(minutes=5 * (n + 1))
        path = report_path(var_dir, MODEL, 1, start, end)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.link(report, path)
        metric_rows += [{"model_name": MODEL, "model_version": 1, "window_start": start, "window_end": end,
                         "metric": m, "value": rng.random(), "sample_count": 30, "computed_at": end}
                        for m in metrics]
        drift_rows += [{"model_name": MODEL, "model_version": 1, "window_start": start, "window_end": end,
                        "feature": f, "method": "ks", "score": rng.random(), "threshold": 0.05,
                        "drifted": False, "reference_size": 15_000, "current_size": 30_000,
                        "computed_at": end, "report_path": str(path)} for f in features]
    bulk_append(url, MetricWindow, pd.DataFrame(metric_rows))
    bulk_append(url, DriftResult, pd.DataFrame(drift_rows))
    with session_scope(url) as session:
        noon = day + timedelta(hours=12)
        session.add_all([OutboxMessage(model_name=MODEL, kind="firing", created_at=noon, next_attempt_at=noon,
                                       delivered_at=noon, attempts=1,
                                       payload={"title": "Drift on 3 features", "severity": "warning",
                                                "facts": {"share": "0.21"}, "text": "x" * 300})
                         for _ in range(5)])
        session.add_all([AccessLog(actor="ops:alice", action="promote", model_name=MODEL, allowed=True,
                                   detail="manual check", channel="dashboard", created_at=noon)
                         for _ in range(10)])


def _table_bytes(url: str) -> tuple[dict[str, float], float]:
    """Bytes per table (with its indexes, partitions, TOAST) and bytes of free pages."""
    from sqlalchemy import create_engine, text

    sqlite = url.startswith("sqlite")
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        if not sqlite:
            connection.execute(text("VACUUM"))
            rows = connection.execute(text(
                "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n "
                "ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'")).all()
            free = 0.0
        else:
            connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
            owner = dict(connection.execute(text("SELECT name, tbl_name FROM sqlite_master")).all())
            rows = [(owner.get(name, name), size) for name, size in connection.execute(
                text("SELECT name, sum(pgsize) FROM dbstat GROUP BY name")).all()]
            page = connection.execute(text("PRAGMA page_size")).scalar()
            free = float(connection.execute(text("PRAGMA freelist_count")).scalar() * page)
    engine.dispose()
    tables: dict[str, float] = {}
    for name, size in rows:
        group = "predictions" if name.startswith("predictions") else name
        tables[group] = tables.get(group, 0.0) + float(size)
    return tables, free


def _sizes(url: str, var_dir: Path, factor: float) -> Sizes:
    tables, free = _table_bytes(url)
    scaled = (tables.pop("predictions", 0.0) + tables.pop("feedback", 0.0) + free) * factor
    reports = sum(path.stat().st_size for path in (var_dir / "reports").rglob("*.html"))
    return Sizes(scaled=scaled, fixed=sum(tables.values()), reports=float(reports))


def simulate(url: str, var_dir: Path, *, days: int, sample_rows: int, factor: float, retention: bool,
             pool: list[str], features: list[str], report: Path) -> list[Sizes]:
    """``days`` simulated days ending yesterday; the store's size at the end of each."""
    from monitoring.retention.policy import midnight
    from monitoring.retention.prune import prune
    from monitoring.settings import RetentionPolicy, Settings
    from monitoring.store.engine import utcnow
    from monitoring.store.migrations import upgrade

    upgrade(url)
    settings = Settings(database_url=url, var_dir=var_dir, retention=RetentionPolicy(enabled=retention))
    rng = random.Random(7)
    first = midnight(utcnow()) - timedelta(days=days)
    sizes = []
    for n in range(days):
        day = first + timedelta(days=n)
        prune(url, settings, now=day + timedelta(hours=2, minutes=30))
        logged = _log_day(url, url.startswith("sqlite"), day, sample_rows, pool, rng)
        _day_of_monitoring(url, day, logged, features, var_dir, report, rng)
        sizes.append(_sizes(url, var_dir, factor))
    return sizes


def _run_store(kind: str, args, factor: float, pool, features, report: Path, tmp: Path) -> dict[bool, list[Sizes]]:
    from sqlalchemy.engine import make_url

    from monitoring.store.engine import dispose_engines

    results = {}
    for retention in (False, True):
        label = f"{kind}-{'on' if retention else 'off'}"
        name = f"vigil_bench_{uuid.uuid4().hex[:8]}"
        if kind == "postgres":
            url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
            _admin(f'CREATE DATABASE "{name}"')
        else:
            url = f"sqlite:///{tmp / f'{name}.db'}"
        started = time.perf_counter()
        try:
            results[retention] = simulate(url, tmp / label, days=args.days, sample_rows=args.sample_rows,
                                          factor=factor, retention=retention, pool=pool, features=features,
                                          report=report)
        finally:
            dispose_engines()
            if kind == "postgres":
                _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        print(f"  {label}: {args.days} days simulated in {time.perf_counter() - started:.0f} s", flush=True)
    return results


def _print(kind: str, results: dict[bool, list[Sizes]], days: int) -> None:
    off, on = results[False], results[True]
    print(f"\n{kind}: store size (GB) at the end of the day, scaled to the real rate")
    print(f"  {'day':>4} {'retention off':>14} {'retention on':>13}")
    for n in sorted({*range(4, days, 5), days - 1}):
        print(f"  {n + 1:>4} {off[n].total / GB:>14.2f} {on[n].total / GB:>13.2f}")
    for label, sizes in (("off", off[-1]), ("on", on[-1])):
        print(f"  after {days} days, retention {label}: {sizes.total / GB:.2f} GB = predictions and feedback "
              f"{sizes.scaled / GB:.2f} + metrics, drift, outbox, access log {sizes.fixed / GB:.3f} "
              f"+ report files {sizes.reports / GB:.2f}")
    growth = (off[-1].total - off[-8].total) / 7 if days >= 8 else float("nan")
    print(f"  retention off grows {growth / GB:.2f} GB a day for ever; retention on holds "
          f"{on[-1].total / off[-1].total:.0%} of it after {days} days")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rate", type=float, default=100.0, help="predictions per second to scale to")
    parser.add_argument("--sample-rows", type=int, default=20_000, help="predictions written per day")
    parser.add_argument("--store", choices=("both", "postgres", "sqlite"), default="both")
    args = parser.parse_args()
    if args.days < 1 or args.sample_rows < REQUEST_ROWS:
        parser.error(f"--days must be >= 1 and --sample-rows >= {REQUEST_ROWS}")
    factor = args.rate * 86_400 / args.sample_rows
    print(f"{args.days} days at {args.rate:g} predictions/s = {args.rate * 86_400:,.0f} a day; "
          f"{args.sample_rows:,} written per day, scaled x{factor:,.1f}")
    pool, features, _ = _features_pool(5_000)
    with tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory)
        started = time.perf_counter()
        report = _real_report(tmp)
        print(f"setup: one real Evidently report, {report.stat().st_size / 1e6:.1f} MB, in "
              f"{time.perf_counter() - started:.0f} s", flush=True)
        kinds = ("postgres", "sqlite") if args.store == "both" else (args.store,)
        results = {kind: _run_store(kind, args, factor, pool, features, report, tmp) for kind in kinds}
    for kind, result in results.items():
        _print(kind, result, args.days)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: one monitoring cycle over a fleet of models (a ``vigil_monitoring`` DAG run, one mapped
task per model), Airflow's LocalExecutor against the CeleryExecutor with two workers, in one run.

    .venv/bin/python benchmarks/fleet_executor_benchmark.py [--models 20] [--cycles 3] [--rows 200]

Real parts: Vigil's store and Airflow's metadata DB in throwaway PostgreSQL databases
(VIGIL_TEST_POSTGRES_URL, default postgres@127.0.0.1:5432), MLflow on SQLite in a temporary
folder, Redis at VIGIL_TEST_REDIS_URL (default redis://127.0.0.1:6379/0). One version is trained
and copied under each of --models names, each with its reference data and --rows labelled
predictions in the last closed hour window (``tests/airflow_fleet.py``). Airflow runs as
``cli.airflow_processes`` starts it (api-server, scheduler, dag-processor), with the same two task
slots for both executors: LocalExecutor with parallelism 2; CeleryExecutor with two
``airflow celery worker`` processes of concurrency 1.

Per executor: one warm-up run (references downloaded and cached), then --cycles runs of the same
interval (upserts: the same work each time). A cycle's wall time is the run's own, from Airflow
(start to end); the mapped tasks' summed durations and the load average are printed beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DAG = "vigil_monitoring"


def _seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def _train(mlflow_store: str, root: Path) -> dict:
    """One good version, trained with a store of its own (the fleet's store knows only the copies)."""
    from monitoring.registry.mlflow_registry import Registry
    from monitoring.store.migrations import upgrade
    from monitoring.training import datasets
    from monitoring.training.trainer import train
    from tests.monitoring.watchdog.conftest import _settings

    root.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{root / 'train.db'}"
    upgrade(url)
    settings = _settings(url, mlflow_store, root)
    base = f"bench-base-{uuid.uuid4().hex[:6]}"
    result = train(datasets.generate(3000, 0), registry=Registry(settings), store_url=url, model_name=base,
                   actor="benchmark", promote=True, seed=0)
    return {"base": base, "good": result.version}


def _cycles(airflow, window, cycles: int, first: datetime, offset: int) -> list[dict]:
    """A warm-up run, then ``cycles`` measured runs of ``window``; each run's figures."""
    measured = []
    for number in range(cycles + 1):
        run_id = f"bench-{offset + number}"
        logical = first if offset + number == 0 else window[0] - timedelta(hours=offset + number)
        before = os.getloadavg()[0]
        airflow.trigger(DAG, run_id, window, logical)
        if offset + number == 0:
            airflow.unpause(DAG)
        instances = airflow.wait_for_run(DAG, run_id, timeout=1800)
        run = airflow.run(DAG, run_id)
        mapped = [ti for ti in instances if ti["task_id"] == "compute_windows"]
        figures = {"run": run_id, "state": run["state"], "wall_s": round(_seconds(run["start_date"], run["end_date"]), 1),
                   "mapped": len(mapped), "task_s": round(sum(ti["duration"] or 0 for ti in mapped), 1),
                   "load_before": round(before, 2), "load_after": round(os.getloadavg()[0], 2)}
        print(f"    {'warm-up' if number == 0 else 'cycle'} {run_id}: {json.dumps(figures)}", flush=True)
        if number:
            measured.append(figures)
    return measured


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--rows", type=int, default=200, help="labelled predictions per model in the window")
    args = parser.parse_args()

    from cli.airflow_processes import broker_problem
    from monitoring.registry.mlflow_registry import Registry
    from monitoring.store.migrations import upgrade
    from tests.airflow_fleet import airflow_cluster, first_logical_date, last_closed_window, seed_fleet, vigil_env
    from tests.conftest import ADMIN_URL, REDIS_URL, _admin_execute, _database_url, _postgres_problem
    from tests.monitoring.watchdog.conftest import _settings
    from tests.net import free_port

    problem = _postgres_problem() or broker_problem(REDIS_URL)
    if problem:
        print(f"cannot run: {problem}", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="vigil-fleet-bench-"))
    tag = uuid.uuid4().hex[:8]
    store_db, airflow_db = f"vigil_bench_{tag}", f"vigil_bench_airflow_{tag}"
    _admin_execute(ADMIN_URL, f'CREATE DATABASE "{store_db}"', f'CREATE DATABASE "{airflow_db}"')
    try:
        store, metadata = _database_url(ADMIN_URL, store_db), _database_url(ADMIN_URL, airflow_db)
        mlflow_store = f"sqlite:///{tmp / 'mlflow.db'}"
        upgrade(store)
        settings = _settings(store, mlflow_store, tmp / "var")
        window = last_closed_window()
        print(f"==> training one version, seeding {args.models} models x {args.rows} predictions "
              f"(window {window[0]:%H:%M}-{window[1]:%H:%M} UTC); load {os.getloadavg()}", flush=True)
        trained = _train(mlflow_store, tmp / "train")
        names = [f"fleet-{number:02d}" for number in range(args.models)]
        seed_fleet(store, settings, Registry(settings), trained, names, window, rows=args.rows)
        results, queue = {}, f"vigil-bench-{tag}"
        for offset, executor in enumerate(("local", "celery")):
            started = time.monotonic()
            print(f"==> {executor}: starting Airflow", flush=True)
            with airflow_cluster(executor, home=tmp / "airflow", metadata_url=metadata, port=free_port(),
                                 tasks_env=vigil_env(store, mlflow_store, tmp / "var"), queue=queue) as airflow:
                dag = airflow.wait_for_dag(DAG)
                print(f"    up in {time.monotonic() - started:.0f} s", flush=True)
                results[executor] = _cycles(airflow, window, args.cycles, first_logical_date(dag, window),
                                            offset * (args.cycles + 1))
        print("\n| executor | task slots | cycles | wall time per cycle, median (range) | mapped task time summed, median |")
        print("|---|---|---|---|---|")
        for executor, runs in results.items():
            walls = [r["wall_s"] for r in runs]
            slots = "parallelism 2" if executor == "local" else "2 workers x concurrency 1"
            print(f"| {executor} | {slots} | {len(runs)} | {statistics.median(walls):.1f} s ({min(walls):.1f}-{max(walls):.1f}) "
                  f"| {statistics.median(r['task_s'] for r in runs):.1f} s |")
        print(json.dumps({"models": args.models, "rows": args.rows, "results": results}))
        return 0 if all(r["state"] == "success" for runs in results.values() for r in runs) else 1
    finally:
        _admin_execute(ADMIN_URL, f'DROP DATABASE IF EXISTS "{store_db}" WITH (FORCE)',
                       f'DROP DATABASE IF EXISTS "{airflow_db}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: Vigil's POST /predict against ``mlflow models serve`` on the same registered model.

    .venv/bin/python benchmarks/api_benchmark.py [--rounds 20] [--duration 3] [--mlflow-duration 15]
                                                 [--connections 16] [--threads 2]

In a temporary MLflow store (SQLite) it trains and registers a 20-feature logistic regression
(Vigil's own training: impute + scale + LogisticRegression, 5,000 rows), then loads, on the same
machine and with wrk (16 connections, single-row POSTs, a Lua script for the body):
- ``mlflow models serve`` (--env-manager local, 1 worker), ``POST /invocations``, dataframe_records:
  a warm-up, then --mlflow-duration seconds;
- Vigil's API (1 uvicorn worker) with prediction logging on (rows written to a SQLite store) and
  Vigil's API with logging off (VIGIL_PREDICTION_LOGGING=false), side by side: after one warm-up
  each, --rounds pairs of --duration-second loads, the two back to back in each pair and the
  order flipped from one pair to the next.
The machine's speed can drift by 2x within a minute when other work shares the host, so each
Vigil figure is the median round, and the cost of logging is the median over pairs of
1 - (logging on / logging off) of the same pair (two loads a few seconds apart see the same
machine); the spread over pairs is printed beside it. It checks that every request got a 2xx from
Vigil and that every answered prediction of the logging server reached the store (exit status 1
otherwise). The server's CPU time per request (all its processes and threads) and the machine's
load average are printed too.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from wrk_harness import (
    Result,
    bench_env,
    failed_loads,
    load_mlflow_serve,
    logging_complete,
    lua_script,
    median_round,
    paired_rounds,
    print_results,
    start_vigil,
    stop,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODEL_NAME = "bench-lr-20"
FEATURES = [f"f{i:02d}" for i in range(20)]


def training_frame(rows: int = 5_000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, len(FEATURES))) * rng.uniform(0.5, 20, len(FEATURES)) + rng.uniform(-50, 50, len(FEATURES))
    z = ((X - X.mean(0)) / X.std(0)) @ rng.normal(size=len(FEATURES)) * 0.8
    y = (rng.random(rows) < 1 / (1 + np.exp(-z))).astype(int)
    return pd.DataFrame(X, columns=FEATURES).assign(target=y)


def register_model(env: dict[str, str]) -> dict[str, float]:
    """Train and register the model as champion in the temporary stores; returns one request row."""
    os.environ.update(env)
    from monitoring.registry.mlflow_registry import Registry
    from monitoring.settings import get_settings, reset_settings
    from monitoring.store.migrations import upgrade
    from monitoring.training import datasets
    from monitoring.training.trainer import train

    reset_settings()
    settings = get_settings()
    upgrade(settings.database_url)
    frame = training_frame()
    result = train(datasets.from_frame(frame, "target"), registry=Registry(settings),
                   store_url=settings.database_url, model_name=MODEL_NAME, actor="benchmark", promote=True)
    print(f"registered {MODEL_NAME} version {result.version} (accuracy {result.metrics['accuracy']:.3f})")
    return {name: round(float(v), 4) for name, v in frame[FEATURES].iloc[0].items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=3, help="seconds of each Vigil load")
    parser.add_argument("--mlflow-duration", type=int, default=15, help="seconds of load on mlflow models serve")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--rounds", type=int, default=20, help="pairs of loads (logging on, logging off)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="vigil-api-bench-"))
    env = bench_env(tmp, MODEL_NAME)
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; work dir {tmp}")
    row = register_model(env)
    results = [load_mlflow_serve(f"models:/{MODEL_NAME}@champion", row, env, tmp, args, args.mlflow_duration)]

    # Both Vigil servers run side by side (the idle one only polls the alias)
    on_name, off_name = "Vigil, logging on", "Vigil, logging off"
    servers: dict[str, tuple[subprocess.Popen, str]] = {}
    try:
        for name, logging_on in ((on_name, True), (off_name, False)):
            servers[name] = start_vigil({**env, "VIGIL_PREDICTION_LOGGING": str(logging_on).lower()},
                                        tmp / f"vigil-{'logging' if logging_on else 'nolog'}.log")
        for process, base in servers.values():
            wait_until(f"{base}/health/ready", process)

        def report(pair: int, last: dict[str, Result]) -> None:
            on, off = last[on_name], last[off_name]
            print(f"pair {pair}/{args.rounds}: logging on {on.requests_per_s:,.0f} req/s, "
                  f"off {off.requests_per_s:,.0f} req/s, "
                  f"cost {100 * (1 - on.requests_per_s / off.requests_per_s):.1f}%", flush=True)

        rounds = paired_rounds(servers, lua_script(tmp / "vigil.lua", row), args, report)
        results += [median_round(rounds[on_name]), median_round(rounds[off_name])]
        costs = sorted(1 - on.requests_per_s / off.requests_per_s
                       for on, off in zip(rounds[on_name], rounds[off_name], strict=True))
        logging_check, logging_ok = logging_complete(servers[on_name][1], env["VIGIL_DATABASE_URL"],
                                                     "logging server")
    finally:
        for process, _ in servers.values():
            stop(process)

    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"\nwrk: {args.connections} connections, {args.threads} threads, one row per POST, 1 server worker each; "
          f"MLflow {args.mlflow_duration} s, Vigil: the median of {args.rounds} rounds of {args.duration} s")
    print_results(results)
    mlflow, on, off = results
    print(f"\nVigil (logging on) / MLflow throughput: {on.requests_per_s / mlflow.requests_per_s:.1f}x   (target >= 8x)")
    print(f"Vigil (logging off) / MLflow throughput: {off.requests_per_s / mlflow.requests_per_s:.1f}x")
    print(f"cost of logging: {100 * statistics.median(costs):.1f}% of throughput, median of {len(costs)} pairs "
          f"(spread {100 * costs[0]:.1f}% to {100 * costs[-1]:.1f}%)   (target <= 10%); "
          f"{100 * (on.cpu_us_per_request / off.cpu_us_per_request - 1):.1f}% more server CPU per request")
    print(logging_check)
    failed = failed_loads([results[0], *rounds[on_name], *rounds[off_name]])
    failed = [name for name in failed if name != "mlflow models serve"]
    if failed or not logging_ok:
        print(f"errors during the load of: {', '.join(failed) or 'none'}; logging complete: {logging_ok}; "
              f"see the logs in {tmp}")
        return 1
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

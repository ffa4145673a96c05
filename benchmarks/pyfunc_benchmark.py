"""Benchmark: POST /predict for a gradient-boosting model served as a pyfunc (no linear fast path),
Vigil with and without micro-batching, against ``mlflow models serve`` on the same version.

    .venv/bin/python benchmarks/pyfunc_benchmark.py [--model sklearn|pyfunc] [--rounds 10]
        [--duration 3] [--mlflow-duration 15] [--connections 16] [--threads 2]

In a temporary MLflow store (SQLite) it fits a HistGradientBoostingClassifier (100 trees, 20
features, 5,000 rows) and registers it with a signature and an input example, either with the
scikit-learn flavor (``--model sklearn``: Vigil scores it with the model's own predict and
predict_proba) or as a custom ``mlflow.pyfunc.PythonModel`` wrapping it and answering
``prediction`` and ``probability`` columns (``--model pyfunc``: Vigil calls ``pyfunc.predict``).
Then, on this machine, with wrk (16 connections, single-row POSTs):
- ``mlflow models serve`` (--env-manager local, 1 worker), ``POST /invocations``: a warm-up,
  then --mlflow-duration seconds;
- two Vigil APIs (1 uvicorn worker each, prediction logging on, each to its own SQLite store):
  ``VIGIL_MICRO_BATCHING=auto`` (batched: this model has no fast path) and ``off`` (each request
  scored in a worker thread), loaded in --rounds alternating pairs of --duration seconds after a
  warm-up; each figure is the median round.
It checks that every Vigil request got a 2xx and that every prediction each Vigil server answered
reached its store (exit status 1 otherwise), and prints the load average before and after: other
work on the machine inflates every figure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from wrk_harness import (
    ROOT,
    Result,
    bench_env,
    failed_loads,
    load_mlflow_serve,
    logging_complete,
    lua_script,
    median_round,
    paired_rounds,
    print_results,
    prometheus_value,
    start_vigil,
    stop,
    wait_until,
)

sys.path.insert(0, str(ROOT))

MODEL_NAME = "bench-hgb-20"
FEATURES = [f"f{i:02d}" for i in range(20)]
REQUIREMENTS = ["scikit-learn>=1.9,<1.10", "pandas<3", "numpy", "cloudpickle"]


def training_frame(rows: int = 5_000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(rows, len(FEATURES))), columns=FEATURES)
    z = X.f00 * X.f01 + np.sin(2 * X.f02) + X.f03.abs() - 0.8 + 0.3 * X.iloc[:, 4:].sum(axis=1) / 4
    return X, (rng.random(rows) < 1 / (1 + np.exp(-2 * z))).astype(int).to_numpy()


def register_model(env: dict[str, str], kind: str) -> dict[str, float]:
    """Fit, log and register the model as champion; returns one request row."""
    os.environ.update(env)
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, y = training_frame()
    model = HistGradientBoostingClassifier(max_iter=100, random_state=0).fit(X, y)
    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    experiment = mlflow.create_experiment("bench", artifact_location=Path(env["VIGIL_MLFLOW_ARTIFACT_ROOT"]).as_uri())
    with mlflow.start_run(experiment_id=experiment):
        if kind == "sklearn":
            info = mlflow.sklearn.log_model(model, name="model", signature=infer_signature(X, y),
                                            input_example=X.head(3), pip_requirements=REQUIREMENTS,
                                            serialization_format="cloudpickle")
        else:
            wrapped = _wrapper_class(mlflow)(model)
            info = mlflow.pyfunc.log_model(name="model", python_model=wrapped, input_example=X.head(3),
                                           signature=infer_signature(X, wrapped.predict(None, X.head(3))),
                                           pip_requirements=REQUIREMENTS)
    version = mlflow.register_model(info.model_uri, MODEL_NAME).version
    mlflow.MlflowClient().set_registered_model_alias(MODEL_NAME, "champion", version)
    print(f"registered {MODEL_NAME} version {version} ({kind} flavor, HistGradientBoostingClassifier, "
          f"100 trees, training accuracy {model.score(X, y):.3f})")
    return {name: round(float(v), 4) for name, v in X.iloc[0].items()}


def _wrapper_class(mlflow):
    class GradientBoostingPyfunc(mlflow.pyfunc.PythonModel):
        """A team's own pyfunc around a fitted classifier: prediction and probability columns."""

        def __init__(self, model):
            self.model = model

        def predict(self, context, model_input, params=None):
            probability = self.model.predict_proba(model_input[FEATURES])[:, 1]
            return pd.DataFrame({"prediction": (probability > 0.5).astype(int), "probability": probability})

    return GradientBoostingPyfunc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("sklearn", "pyfunc"), default="sklearn")
    parser.add_argument("--duration", type=int, default=3, help="seconds of each Vigil load")
    parser.add_argument("--mlflow-duration", type=int, default=15, help="seconds of load on mlflow models serve")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--rounds", type=int, default=10, help="pairs of loads (batching on, off)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="vigil-pyfunc-bench-"))
    env = bench_env(tmp, MODEL_NAME)
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; work dir {tmp}")
    row = register_model(env, args.model)
    results = [load_mlflow_serve(f"models:/{MODEL_NAME}@champion", row, env, tmp, args, args.mlflow_duration)]

    names = {"auto": "Vigil, micro-batching on", "off": "Vigil, micro-batching off"}
    servers: dict[str, tuple[subprocess.Popen, str]] = {}
    checks: list[tuple[str, bool]] = []
    try:
        for mode, name in names.items():
            servers[name] = start_vigil({**env, "VIGIL_MICRO_BATCHING": mode,
                                         "VIGIL_DATABASE_URL": f"sqlite:///{tmp / f'vigil-{mode}.db'}"},
                                        tmp / f"vigil-{mode}.log")
        for process, base in servers.values():
            wait_until(f"{base}/health/ready", process)

        def report(pair: int, last: dict[str, Result]) -> None:
            print(f"pair {pair}/{args.rounds}: " + ", ".join(
                f"{name} {r.requests_per_s:,.0f} req/s (p99 {r.p99_ms:.1f} ms)" for name, r in last.items()),
                flush=True)

        rounds = paired_rounds(servers, lua_script(tmp / "vigil.lua", row), args, report)
        results += [median_round(rounds[name]) for name in names.values()]
        base = servers[names["auto"]][1]
        batches = prometheus_value(base, "vigil_micro_batches_total")
        batched = prometheus_value(base, "vigil_micro_batched_requests_total")
        for mode, name in names.items():
            checks.append(logging_complete(servers[name][1], f"sqlite:///{tmp / f'vigil-{mode}.db'}", name))
    finally:
        for process, _ in servers.values():
            stop(process)

    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"\nwrk: {args.connections} connections, {args.threads} threads, one row per POST, 1 server worker "
          f"each, logging on; MLflow {args.mlflow_duration} s, Vigil: the median of {args.rounds} rounds of "
          f"{args.duration} s; model: {args.model} flavor")
    print_results(results)
    mlflow, on, off = results
    for r in (on, off):
        print(f"{r.name} / MLflow throughput: {r.requests_per_s / mlflow.requests_per_s:.1f}x "
              f"(target >= 10x), p99 {r.p99_ms:.1f} ms (target < 50 ms)")
    print(f"micro-batching: {batched / max(batches, 1):.1f} requests per model call on average")
    for text, _ in checks:
        print(text)
    failed = [n for n in failed_loads([mlflow, *rounds[names["auto"]], *rounds[names["off"]]])
              if n != mlflow.name]
    logging_ok = all(ok for _, ok in checks)
    if failed or not logging_ok:
        print(f"errors during the load of: {', '.join(failed) or 'none'}; logging complete: {logging_ok}; "
              f"see the logs in {tmp}")
        return 1
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

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
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODEL_NAME = "bench-lr-20"
FEATURES = [f"f{i:02d}" for i in range(20)]
WRK = shutil.which("wrk") or "/usr/bin/wrk"


@dataclass
class Result:
    name: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: str
    cpu_us_per_request: float  # the server's CPU (all its processes and threads, user + system)


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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(url: str, process: subprocess.Popen, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before answering {url}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def start(command: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    log = log_path.open("w")
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)  # its own session: the server and its workers only
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def lua_script(path: Path, body: dict) -> Path:
    payload = json.dumps(body).replace("\\", "\\\\").replace('"', '\\"')
    path.write_text('wrk.method = "POST"\n'
                    f'wrk.body = "{payload}"\n'
                    'wrk.headers["Content-Type"] = "application/json"\n')
    return path


def server_cpu_seconds(process: subprocess.Popen) -> float:
    """CPU time (user + system) used so far by the server and every process it started."""
    import psutil

    root = psutil.Process(process.pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def run_wrk(name: str, url: str, script: Path, args: argparse.Namespace, server: subprocess.Popen,
            *, duration: int, warm_up: bool = True) -> Result:
    base = [WRK, f"-t{args.threads}", f"-c{args.connections}", "--timeout", "10s", "--latency", "-s", str(script)]
    if warm_up:
        subprocess.run([*base, "-d3s", url], capture_output=True, check=True)
    cpu_before = server_cpu_seconds(server)
    out = subprocess.run([*base, f"-d{duration}s", url], capture_output=True, text=True, check=True).stdout
    cpu = server_cpu_seconds(server) - cpu_before
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    return Result(
        name=name,
        requests_per_s=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        p50_ms=_ms(re.search(r"\s50%\s+([\d.]+\w+)", out).group(1)),
        p99_ms=_ms(re.search(r"\s99%\s+([\d.]+\w+)", out).group(1)),
        requests=requests,
        non_2xx=int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)) else 0,
        socket_errors=m.group(0).strip() if (m := re.search(r"Socket errors:.*", out)) else "none",
        cpu_us_per_request=cpu / max(requests, 1) * 1e6,
    )


def median_round(rounds: list[Result]) -> Result:
    """The round with the median throughput (the lower middle one for an even count)."""
    return sorted(rounds, key=lambda r: r.requests_per_s)[(len(rounds) - 1) // 2]


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def logged_rows(database_url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.connect() as connection:
        count = connection.execute(text("SELECT count(*) FROM predictions")).scalar_one()
    engine.dispose()
    return count


def prometheus_value(base: str, name: str) -> float:
    """A metric's value, summed over its labels."""
    values = [float(line.rsplit(" ", 1)[1]) for line in httpx.get(f"{base}/metrics", timeout=5).text.splitlines()
              if line.startswith((name + " ", name + "{"))]
    if not values:
        raise KeyError(name)
    return sum(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=3, help="seconds of each Vigil load")
    parser.add_argument("--mlflow-duration", type=int, default=15, help="seconds of load on mlflow models serve")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--rounds", type=int, default=20, help="pairs of loads (logging on, logging off)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="vigil-api-bench-"))
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}",
           "VIGIL_DATABASE_URL": f"sqlite:///{tmp / 'vigil.db'}", "VIGIL_VAR_DIR": str(tmp / "var"),
           "VIGIL_MLFLOW_ARTIFACT_ROOT": str(tmp / "artifacts"), "VIGIL_MODEL_NAME": MODEL_NAME,
           "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "GRADIO_ANALYTICS_ENABLED": "False",
           # mlflow models serve starts `uvicorn` from PATH
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; work dir {tmp}")
    row = register_model(env)
    bin_dir = Path(sys.executable).parent
    results: list[Result] = []

    port = free_port()
    mlflow = start([str(bin_dir / "mlflow"), "models", "serve", "-m", f"models:/{MODEL_NAME}@champion",
                    "--env-manager", "local", "-w", "1", "-h", "127.0.0.1", "-p", str(port)],
                   env, tmp / "mlflow-serve.log")
    try:
        wait_until(f"http://127.0.0.1:{port}/ping", mlflow)
        results.append(run_wrk("mlflow models serve", f"http://127.0.0.1:{port}/invocations",
                               lua_script(tmp / "mlflow.lua", {"dataframe_records": [row]}), args, mlflow,
                               duration=args.mlflow_duration))
    finally:
        stop(mlflow)

    # Both Vigil servers run side by side (the idle one only polls the alias) and are loaded in
    # pairs, back to back, so that a change in the machine's speed hits both alike.
    servers: dict[bool, tuple[subprocess.Popen, str]] = {}
    try:
        for logging_on in (True, False):
            port = free_port()
            servers[logging_on] = (start(
                [sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app", "--host", "127.0.0.1",
                 "--port", str(port), "--workers", "1", "--no-access-log", "--log-level", "warning"],
                {**env, "VIGIL_PREDICTION_LOGGING": str(logging_on).lower(), "PYTHONPATH": str(ROOT)},
                tmp / f"vigil-{'logging' if logging_on else 'nolog'}.log"), f"http://127.0.0.1:{port}")
        for process, base in servers.values():
            wait_until(f"{base}/health/ready", process)
        script = lua_script(tmp / "vigil.lua", row)
        rounds: dict[bool, list[Result]] = {True: [], False: []}
        for pair in range(args.rounds + 1):  # pair 0 is the warm-up
            for logging_on in ((True, False) if pair % 2 else (False, True)):
                process, base = servers[logging_on]
                result = run_wrk(f"Vigil, logging {'on' if logging_on else 'off'}", f"{base}/predict", script,
                                 args, process, duration=3 if pair == 0 else args.duration, warm_up=False)
                if pair:
                    rounds[logging_on].append(result)
            if pair:
                on, off = rounds[True][-1], rounds[False][-1]
                print(f"pair {pair}/{args.rounds}: logging on {on.requests_per_s:,.0f} req/s, "
                      f"off {off.requests_per_s:,.0f} req/s, cost {100 * (1 - on.requests_per_s / off.requests_per_s):.1f}%",
                      flush=True)
        for logging_on in (True, False):
            results.append(median_round(rounds[logging_on]))
        costs = sorted(1 - on.requests_per_s / off.requests_per_s for on, off in zip(rounds[True], rounds[False], strict=False))
        base = servers[True][1]
        deadline = time.monotonic() + 60
        while prometheus_value(base, "vigil_prediction_log_queue_rows") > 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        answered = int(prometheus_value(base, "vigil_predictions_total"))
        written = logged_rows(env["VIGIL_DATABASE_URL"])
        dropped = prometheus_value(base, "vigil_prediction_log_dropped_rows_total")
        logging_check = (f"logging server (all rounds and warm-ups): {answered:,} predictions answered, "
                         f"{written:,} rows in the store, {dropped:.0f} dropped")
        logging_ok = written == answered and not dropped
    finally:
        for process, _ in servers.values():
            stop(process)

    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"\nwrk: {args.connections} connections, {args.threads} threads, one row per POST, 1 server worker each; "
          f"MLflow {args.mlflow_duration} s, Vigil: the median of {args.rounds} rounds of {args.duration} s")
    print(f"{'server':<24}{'requests/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'requests':>11}{'non-2xx':>9}"
          f"{'server CPU us/req':>19}")
    for r in results:
        print(f"{r.name:<24}{r.requests_per_s:>12,.0f}{r.p50_ms:>10.2f}{r.p99_ms:>10.2f}{r.requests:>11,}{r.non_2xx:>9}"
              f"{r.cpu_us_per_request:>19,.0f}")
    mlflow, on, off = results
    print(f"\nVigil (logging on) / MLflow throughput: {on.requests_per_s / mlflow.requests_per_s:.1f}x   (target >= 8x)")
    print(f"Vigil (logging off) / MLflow throughput: {off.requests_per_s / mlflow.requests_per_s:.1f}x")
    print(f"cost of logging: {100 * statistics.median(costs):.1f}% of throughput, median of {len(costs)} pairs "
          f"(spread {100 * costs[0]:.1f}% to {100 * costs[-1]:.1f}%)   (target <= 10%); "
          f"{100 * (on.cpu_us_per_request / off.cpu_us_per_request - 1):.1f}% more server CPU per request")
    print(logging_check)
    vigil_rounds = rounds[True] + rounds[False]
    for r in [mlflow, *vigil_rounds]:
        if r.socket_errors != "none" or r.non_2xx:
            print(f"{r.name}: {r.non_2xx} non-2xx answers; {r.socket_errors}")
    failed = sorted({r.name for r in vigil_rounds if r.non_2xx or r.socket_errors != "none"})
    if failed or not logging_ok:
        print(f"errors during the load of: {', '.join(failed) or 'none'}; logging complete: {logging_ok}; "
              f"see the logs in {tmp}")
        return 1
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

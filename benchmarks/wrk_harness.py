"""What the HTTP benchmarks share: starting and stopping servers in their own sessions, wrk loads
with a Lua body, wrk's figures parsed, the server's CPU time, and reading the results back
(Prometheus values, rows in the store). Used by api_benchmark.py and pyfunc_benchmark.py.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
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


def lua_script(path: Path, body: dict, delay_ms: float | None = None) -> Path:
    """wrk's Lua script POSTing ``body``; with ``delay_ms`` each connection waits that long before
    each request (wrk's ``delay()``), which offers a fixed load instead of saturating the server."""
    payload = json.dumps(body).replace("\\", "\\\\").replace('"', '\\"')
    pacing = f"function delay()\n  return {delay_ms:g}\nend\n" if delay_ms else ""
    path.write_text('wrk.method = "POST"\n'
                    f'wrk.body = "{payload}"\n'
                    'wrk.headers["Content-Type"] = "application/json"\n' + pacing)
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


def bench_env(tmp: Path, model_name: str) -> dict[str, str]:
    """The environment of every process of a run: temporary stores, no telemetry."""
    return {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}",
            "VIGIL_DATABASE_URL": f"sqlite:///{tmp / 'vigil.db'}", "VIGIL_VAR_DIR": str(tmp / "var"),
            "VIGIL_MLFLOW_ARTIFACT_ROOT": str(tmp / "artifacts"), "VIGIL_MODEL_NAME": model_name,
            "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "GRADIO_ANALYTICS_ENABLED": "False",
            "VIGIL_OPEN_ACCESS": "true",  # the loads measure serving; the client keys have tests of their own
            # mlflow models serve starts `uvicorn` from PATH
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def load_mlflow_serve(model_uri: str, row: dict, env: dict[str, str], tmp: Path, args: argparse.Namespace,
                      duration: int) -> Result:
    """``mlflow models serve`` (1 worker, the local environment) under wrk: a warm-up, then ``duration`` s."""
    port = free_port()
    mlflow = start([str(Path(sys.executable).parent / "mlflow"), "models", "serve", "-m", model_uri,
                    "--env-manager", "local", "-w", "1", "-h", "127.0.0.1", "-p", str(port)],
                   env, tmp / "mlflow-serve.log")
    try:
        wait_until(f"http://127.0.0.1:{port}/ping", mlflow)
        return run_wrk("mlflow models serve", f"http://127.0.0.1:{port}/invocations",
                       lua_script(tmp / "mlflow.lua", {"dataframe_records": [row]}), args, mlflow,
                       duration=duration)
    finally:
        stop(mlflow)


def start_vigil(env: dict[str, str], log_path: Path) -> tuple[subprocess.Popen, str]:
    """Vigil's API (1 uvicorn worker) on a free port, its store migrated first (what `vigil db
    upgrade` does: the API checks the schema, it does not migrate); returns the process and its URL."""
    from monitoring.store.migrations import upgrade

    upgrade(env["VIGIL_DATABASE_URL"])
    port = free_port()
    process = start([sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app", "--host",
                     "127.0.0.1", "--port", str(port), "--workers", "1", "--no-access-log", "--log-level",
                     "warning"], {**env, "PYTHONPATH": str(ROOT)}, log_path)
    return process, f"http://127.0.0.1:{port}"


def paired_rounds(servers: dict[str, tuple[subprocess.Popen, str]], script: Path, args: argparse.Namespace,
                  report: Callable[[int, dict[str, Result]], None]) -> dict[str, list[Result]]:
    """``args.rounds`` rounds of ``args.duration`` s on every server, back to back, the order reversed
    from one round to the next (after a warm-up round), so that a change in the machine's speed hits
    all of them alike; ``report`` sees each round."""
    rounds: dict[str, list[Result]] = {name: [] for name in servers}
    names = list(servers)
    for pair in range(args.rounds + 1):  # round 0 is the warm-up
        for name in names if pair % 2 else names[::-1]:
            process, base = servers[name]
            result = run_wrk(name, f"{base}/predict", script, args, process,
                             duration=3 if pair == 0 else args.duration, warm_up=False)
            if pair:
                rounds[name].append(result)
        if pair:
            report(pair, {name: rounds[name][-1] for name in names})
    return rounds


def logging_complete(base: str, database_url: str, name: str) -> tuple[str, bool]:
    """Whether every prediction the server answered reached its store (after its queue drained)."""
    deadline = time.monotonic() + 60
    while prometheus_value(base, "vigil_prediction_log_queue_rows") > 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    answered = int(prometheus_value(base, "vigil_predictions_total"))
    written = logged_rows(database_url)
    dropped = prometheus_value(base, "vigil_prediction_log_dropped_rows_total")
    return (f"{name} (all rounds and warm-ups): {answered:,} predictions answered, {written:,} rows in the "
            f"store, {dropped:.0f} dropped"), written == answered and not dropped


def print_results(results: list[Result]) -> None:
    print(f"{'server':<34}{'requests/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'requests':>11}{'non-2xx':>9}"
          f"{'server CPU us/req':>19}")
    for r in results:
        print(f"{r.name:<34}{r.requests_per_s:>12,.0f}{r.p50_ms:>10.2f}{r.p99_ms:>10.2f}{r.requests:>11,}"
              f"{r.non_2xx:>9}{r.cpu_us_per_request:>19,.0f}")


def failed_loads(results: list[Result]) -> list[str]:
    """The loads with an error answer or a socket error (each printed)."""
    failed = []
    for r in results:
        if r.socket_errors != "none" or r.non_2xx:
            print(f"{r.name}: {r.non_2xx} non-2xx answers; {r.socket_errors}")
            failed.append(r.name)
    return sorted(set(failed))

"""Benchmark: what a shadow release costs the champion's latency (p99 at 16 connections).

    .venv/bin/python benchmarks/shadow_cost_benchmark.py [--rounds 10] [--duration 3] [--rate 2000]
                                                         [--connections 16] [--threads 2]

In temporary stores it trains and registers two versions of the API benchmark's model (a 20-feature
logistic regression, api_benchmark.py), version 1 on @champion and version 2 on @challenger, and
starts two Vigil APIs side by side (1 uvicorn worker each, prediction logging on, each with a
store of its own): one whose store has a running shadow release of version 2 at share 1.0 (every
request is also scored by the challenger, off the response path, and logged as a shadow row), one
with no release (the baseline). wrk loads them in --rounds pairs of --duration seconds, back to
back, the order flipped from one pair to the next; the cost is the median over pairs of
p99 (shadow) / p99 (baseline) - 1, printed with its spread and the median rounds' figures. This is
done twice: with wrk saturating the servers (every connection sends its next request as soon as
the answer is in), and at a fixed offered load of --rate requests/s (each connection waits
connections / rate s before each request, wrk's ``delay()``; 0 skips it), the way a service is run
below its capacity. It checks
that every request got a 2xx and that the shadow server logged one shadow row per champion row (or
counted it as dropped); exit status 1 otherwise. The load average is
printed before and after.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from api_benchmark import FEATURES, MODEL_NAME, training_frame
from wrk_harness import (
    Result,
    bench_env,
    failed_loads,
    lua_script,
    median_round,
    paired_rounds,
    print_results,
    prometheus_value,
    start_vigil,
    stop,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def register_versions(env: dict[str, str], shadow_store: str) -> dict[str, float]:
    """Versions 1 (@champion) and 2 (@challenger), and a running shadow release of 2 in ``shadow_store``."""
    os.environ.update(env)
    from monitoring.registry.mlflow_registry import Registry
    from monitoring.settings import get_settings, reset_settings
    from monitoring.store.engine import session_scope, utcnow
    from monitoring.store.migrations import upgrade
    from monitoring.store.tables import Release
    from monitoring.training import datasets
    from monitoring.training.trainer import train

    reset_settings()
    settings = get_settings()
    upgrade(shadow_store)
    registry = Registry(settings)
    frame = training_frame()
    for seed, promote in ((0, True), (1, False)):
        train(datasets.from_frame(training_frame(seed=seed), "target"), registry=registry, store_url=shadow_store,
              model_name=MODEL_NAME, actor="benchmark", promote=promote, seed=seed)
    registry.set_alias(MODEL_NAME, "challenger", 2)
    now = utcnow()
    with session_scope(shadow_store) as session:
        session.add(Release(model_name=MODEL_NAME, mode="shadow", challenger_version=2, champion_version=1,
                            share=1.0, state="running", started_at=now, started_by="benchmark",
                            bake_until=now + timedelta(hours=1), updated_at=now))
    return {name: round(float(v), 4) for name, v in frame[FEATURES].iloc[0].items()}


def shadow_rows_complete(base: str, database_url: str) -> tuple[str, bool]:
    """Whether the shadow server logged one shadow row for every champion row (or counted it dropped)."""
    from sqlalchemy import create_engine, text

    deadline = time.monotonic() + 60
    while prometheus_value(base, "vigil_prediction_log_queue_rows") > 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    engine = create_engine(database_url)
    with engine.connect() as connection:
        counts = dict(connection.execute(text("SELECT role, count(*) FROM predictions GROUP BY role")).all())
    engine.dispose()
    dropped = prometheus_value(base, "vigil_shadow_dropped_requests_total")
    champion, shadow = counts.get("champion", 0), counts.get("shadow", 0)
    ok = champion > 0 and shadow + dropped == champion and set(counts) <= {"champion", "shadow"}
    return (f"shadow server: {champion:,} champion rows, {shadow:,} shadow rows, {dropped:.0f} shadow "
            f"requests dropped (queue full)"), ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=3, help="seconds of each load")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--rounds", type=int, default=10, help="pairs of loads (shadow on, shadow off)")
    parser.add_argument("--rate", type=float, default=2000.0,
                        help="the fixed offered load, requests/s over all connections (0: saturated only)")
    args = parser.parse_args()
    if args.rate < 0:
        parser.error("--rate must be >= 0")

    tmp = Path(tempfile.mkdtemp(prefix="vigil-shadow-bench-"))
    env = {**bench_env(tmp, MODEL_NAME), "VIGIL_ALIAS_POLL_SECONDS": "1"}
    stores = {"shadow on": f"sqlite:///{tmp / 'shadow.db'}", "shadow off": f"sqlite:///{tmp / 'plain.db'}"}
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; work dir {tmp}")
    row = register_versions(env, stores["shadow on"])
    on_name, off_name = "Vigil, shadow on (share 1.0)", "Vigil, no release (baseline)"
    servers: dict[str, tuple[subprocess.Popen, str]] = {}
    try:
        for name, store in ((on_name, stores["shadow on"]), (off_name, stores["shadow off"])):
            servers[name] = start_vigil({**env, "VIGIL_DATABASE_URL": store},
                                        tmp / f"vigil-{'shadow' if store == stores['shadow on'] else 'plain'}.log")
        for process, base in servers.values():
            wait_until(f"{base}/health/ready", process)
        wait_until_challenger_loaded(servers[on_name][1])

        def report(pair: int, last: dict[str, Result]) -> None:
            on, off = last[on_name], last[off_name]
            print(f"pair {pair}/{args.rounds}: p99 shadow {on.p99_ms:.2f} ms, baseline {off.p99_ms:.2f} ms "
                  f"({on.requests_per_s:,.0f} / {off.requests_per_s:,.0f} req/s), "
                  f"cost {100 * (on.p99_ms / off.p99_ms - 1):.1f}%", flush=True)

        loads = [("saturated", None)]
        if args.rate:
            loads.append((f"{args.rate:,.0f} requests/s offered", 1000 * args.connections / args.rate))
        measured = []
        for load, delay_ms in loads:
            print(f"\n{load}:")
            rounds = paired_rounds(servers, lua_script(tmp / "vigil.lua", row, delay_ms), args, report)
            measured.append((load, rounds))
        shadow_check, shadow_ok = shadow_rows_complete(servers[on_name][1], stores["shadow on"])
    finally:
        for process, _ in servers.values():
            stop(process)

    print(f"load average after: {os.getloadavg()[0]:.2f}")
    failed = []
    for load, rounds in measured:
        costs = sorted(on.p99_ms / off.p99_ms - 1 for on, off in zip(rounds[on_name], rounds[off_name], strict=True))
        print(f"\n{load}; wrk: {args.connections} connections, {args.threads} threads, one row per POST, 1 server "
              f"worker each; the median of {args.rounds} rounds of {args.duration} s")
        print_results([median_round(rounds[on_name]), median_round(rounds[off_name])])
        print(f"cost of shadow mode to the champion's p99 ({load}): {100 * statistics.median(costs):.1f}%, median "
              f"of {len(costs)} pairs (spread {100 * costs[0]:.1f}% to {100 * costs[-1]:.1f}%)   (target < 10%)")
        failed += failed_loads([*rounds[on_name], *rounds[off_name]])
    print(shadow_check)
    if failed or not shadow_ok:
        print(f"errors during the load of: {', '.join(failed) or 'none'}; shadow rows complete: {shadow_ok}; "
              f"see the logs in {tmp}")
        return 1
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


def wait_until_challenger_loaded(base: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if prometheus_value(base, "vigil_challenger_version") == 2:
                return
        except KeyError:
            pass
        time.sleep(0.5)
    raise RuntimeError("the shadow server did not load the challenger")


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: time to recover after a bad version is put on @champion through MLflow directly.

    .venv/bin/python benchmarks/recovery_benchmark.py [--trials 3] [--model sklearn|pyfunc]

In temporary stores (SQLite for Vigil and MLflow): a team's own scikit-learn model (a random
forest pipeline, ``tests/team_models.py``: logged with ``mlflow.sklearn.log_model`` and a
signature, registered and put on @champion with ``MlflowClient``, never by ``vigil train``; with
``--model pyfunc`` the same pipeline inside a team's own ``PythonModel``) is
adopted with ``vigil adopt``; ``vigil serve`` (1 worker, alias polled every 2 s) answers a client
sending 20 predictions/s and each true label 1 s later (20 labels/s); ``vigil watch --interval 2``
runs. Once the good version has a healthy record, --trials times: a version fitted on corrupted
labels (offline it looks fine; on traffic it is clearly worse) is registered by the team's code
and put on @champion with ``set_registered_model_alias``. Measured: seconds from the alias move
until the API's answers carry the good version again (and when the watchdog recorded the outside
move and committed the rollback).

Baseline, in the same run and on the same traffic: a bad version promoted through Vigil (what
``vigil promote`` does, called in this process so that the command's start-up is not counted),
--trials times. Before this change an alias moved outside Vigil was never
judged (no baseline, no quality test): no recovery at all.
Cooldown is 0 and the daily budget 100 here, so that trials can follow each other.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.watchdog_benchmark import (  # noqa: E402 - after the repo root is on sys.path
    RATE,
    VIGIL,
    Traffic,
    _free_port,
    _health,
    _ready,
    _start_watch,
    _stop,
    _wait,
)

MODEL_NAME = "bench-loan"  # the helpers above read this name's rows


def _events(url: str, kind: str, bad: int) -> float | None:
    from sqlalchemy import select

    from monitoring.store.engine import session_scope
    from monitoring.store.tables import RegistryEvent

    column = RegistryEvent.to_version if kind == "outside_move" else RegistryEvent.from_version
    with session_scope(url) as session:
        event = session.scalars(select(RegistryEvent).where(
            RegistryEvent.model_name == MODEL_NAME, RegistryEvent.kind == kind, column == bad)
            .order_by(RegistryEvent.id.desc())).first()
        return None if event is None else event.created_at.timestamp()


def _trial(settings, traffic: Traffic, good: int, number: int, how: str, flavor: str) -> dict:
    import mlflow

    from tests.team_models import register_team_version

    bad = register_team_version(settings.mlflow_tracking_uri, MODEL_NAME, bad=True, seed=100 + number,
                                champion=False, flavor=flavor)
    if how == "mlflow":
        moved = time.time()
        mlflow.MlflowClient(tracking_uri=settings.mlflow_tracking_uri).set_registered_model_alias(
            MODEL_NAME, "champion", str(bad))
    else:  # what `vigil promote` does, in this process: the command's start-up is not counted
        from monitoring.registry.promotion import promote
        from monitoring.runtime import Runtime

        moved = time.time()
        promote(Runtime(settings), model_name=MODEL_NAME, version=bad, actor="benchmark",
                reason="benchmark")
    served_bad = _wait(lambda: next((a.at for a in reversed(traffic.answers) if a.version == bad), None),
                       60, f"the API to serve v{bad}")
    back = _wait(lambda: next((a.at for a in traffic.answers if a.at > served_bad and a.version == good), None),
                 300, f"the API to serve v{good} again")
    rolled = _wait(lambda: _events(settings.database_url, "auto_rollback", bad), 30, "the rollback event")
    noticed = _events(settings.database_url, "outside_move", bad) if how == "mlflow" else moved
    return {"how": how, "bad": bad, "seconds": back - moved, "noticed_after": noticed - moved,
            "served_bad_after": served_bad - moved, "rollback_after": rolled - moved}


def run(trials: int, flavor: str) -> list[dict]:
    tmp = Path(tempfile.mkdtemp(prefix="vigil-recovery-bench-"))
    env = {**os.environ, "VIGIL_DATABASE_URL": f"sqlite:///{tmp / 'vigil.db'}",
           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}", "VIGIL_VAR_DIR": str(tmp),
           "VIGIL_MLFLOW_ARTIFACT_ROOT": str(tmp / "artifacts"), "VIGIL_MODEL_NAME": MODEL_NAME,
           "VIGIL_COOLDOWN_MINUTES": "0", "VIGIL_MAX_AUTO_ROLLBACKS_PER_DAY": "100",
           "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
           "VIGIL_OPEN_ACCESS": "true"}  # the clients send no key: serving and the watchdog are measured
    os.environ.update(env)
    from monitoring.settings import get_settings, reset_settings
    from monitoring.store.migrations import upgrade
    from tests.team_models import register_team_version

    reset_settings()
    settings = get_settings()
    upgrade(settings.database_url)
    good = register_team_version(settings.mlflow_tracking_uri, MODEL_NAME, flavor=flavor)
    adopted = subprocess.run([*VIGIL, "adopt", MODEL_NAME], env=env, capture_output=True, text=True,
                             check=False)
    if adopted.returncode != 0:
        raise RuntimeError(adopted.stderr)
    print(f"  {adopted.stdout.strip()}")
    port, log = _free_port(), tmp / "processes.log"
    api = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([*VIGIL, "serve", "--port", str(port)], env=env, cwd=tmp,
                              stdout=log.open("a"), stderr=subprocess.STDOUT)
    watcher, traffic, results = None, Traffic(api), []
    try:
        _wait(lambda: _ready(api), 180, "the API to be ready")
        watcher = _start_watch(env, 2.0, log)
        threading.Thread(target=traffic.run, daemon=True).start()
        started = time.monotonic()
        _wait(lambda: _health(settings.database_url, good) == "healthy", 300, "the good version's healthy record", 1)
        print(f"  version {good} serving; healthy record after {time.monotonic() - started:.0f}s of traffic")
        for number, how in enumerate(["mlflow"] * trials + ["vigil promote"] * trials, start=1):
            result = _trial(settings, traffic, good, number, how, flavor)
            results.append(result)
            noticed = f"outside move recorded after {result['noticed_after']:.1f}s, " if how == "mlflow" else ""
            print(f"  trial {number} ({how}): back on v{good} {result['seconds']:.1f}s after v{result['bad']} "
                  f"got @champion; {noticed}API served v{result['bad']} after "
                  f"{result['served_bad_after']:.1f}s, rollback committed after {result['rollback_after']:.1f}s")
    finally:
        traffic.stop.set()
        if watcher is not None:
            _stop(watcher)
        _stop(server)
    span = traffic.answers[-1].at - traffic.answers[0].at if len(traffic.answers) > 1 else 0.0
    rate = len(traffic.answers) / span if span else 0.0
    print(f"  traffic: {len(traffic.answers)} answers ({rate:.1f}/s achieved, {RATE:g}/s asked), "
          f"{traffic.errors} client errors; logs in {log}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3, help="bad versions per way of moving the alias")
    parser.add_argument("--model", choices=("sklearn", "pyfunc"), default="sklearn",
                        help="the team's model as the scikit-learn flavor or as a custom PythonModel")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; model: {args.model}")
    results = run(args.trials, args.model)
    for how, label in (("mlflow", "alias moved in MLflow directly"),
                       ("vigil promote", "baseline: promoted through Vigil")):
        seconds = [r["seconds"] for r in results if r["how"] == how]
        print(f"{label}: median {np.median(seconds):.1f}s, max {max(seconds):.1f}s over {len(seconds)} "
              f"trial(s) (target < 15 s)")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

"""Benchmark: wrong answers a clearly bad version serves to users, sent to a 10 % canary judged by
the watchdog, against promoted straight to @champion and rolled back automatically.

    .venv/bin/python benchmarks/blast_radius_benchmark.py [--trials 3] [--share 0.1] [--label-delay 1]

In temporary stores (SQLite for Vigil and MLflow): a team's own scikit-learn model
(``tests/team_models.py``, registered and put on @champion by the team's code) is adopted with
``vigil adopt``; ``vigil serve`` (1 worker, aliases polled every 2 s) answers a client sending 20
predictions/s and each true label --label-delay s later (20 labels/s); ``vigil watch --interval 2`` runs. Once
the good version has a healthy record, --trials times each, alternating on the same traffic:

- direct (the baseline, what Vigil did before releases): a version fitted on corrupted labels is
  promoted to @champion (``promote``, as ``vigil promote`` does) and the watchdog rolls it back;
- canary: another such version is sent to a canary at --share (``start_release``, as
  ``vigil canary start`` does, no bake time) and the watchdog's judge aborts it.

Counted from the client's side: answers given by the bad version that were wrong (the prediction
is not the true label), and all its answers, until the good version answers everything again.
Target: the canary serves at least 5x fewer wrong answers.
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


def _release_state(url: str, release_id: int) -> str:
    from monitoring.store.engine import session_scope
    from monitoring.store.tables import Release

    with session_scope(url) as session:
        return session.get(Release, release_id).state


def _trial(settings, traffic: Traffic, good: int, number: int, how: str, share: float) -> dict:
    from monitoring.registry.promotion import promote
    from monitoring.registry.releases import start_release
    from monitoring.runtime import Runtime
    from tests.team_models import register_team_version

    runtime = Runtime(settings)
    bad = register_team_version(settings.mlflow_tracking_uri, MODEL_NAME, bad=True, seed=100 + number,
                                champion=False)
    first = len(traffic.answers)
    moved = time.time()
    if how == "direct":
        promote(runtime, model_name=MODEL_NAME, version=bad, actor="benchmark", reason="benchmark")
        served_bad = _wait(lambda: next((a.at for a in reversed(traffic.answers) if a.version == bad), None),
                           60, f"the API to serve v{bad}")
        _wait(lambda: next((a for a in traffic.answers if a.at > served_bad and a.version == good), None),
              300, f"the API to serve v{good} again")
        ended = "rolled back"
    else:
        release = start_release(runtime, model_name=MODEL_NAME, version=bad, mode="canary", share=share,
                                actor="benchmark", reason="benchmark", bake_minutes=0)
        ended = _wait(lambda: (s := _release_state(settings.database_url, release.id)) != "running" and s,
                      600, f"the canary of v{bad} to end", step=0.5)
    done = time.time()
    # The API follows the release and the alias every 2 s: answers by the bad version end a little
    # after the move; wait that out so that none is missed.
    time.sleep(5)
    answers = [a for a in traffic.answers[first:] if a.version == bad]
    return {"how": how, "bad": bad, "ended": ended, "seconds": done - moved, "answers": len(answers),
            "wrong": sum(1 for a in answers if not a.correct)}


def run(trials: int, share: float, label_delay: float) -> list[dict]:
    tmp = Path(tempfile.mkdtemp(prefix="vigil-blast-bench-"))
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
    good = register_team_version(settings.mlflow_tracking_uri, MODEL_NAME)
    adopted = subprocess.run([*VIGIL, "adopt", MODEL_NAME], env=env, capture_output=True, text=True,
                             check=False)
    if adopted.returncode != 0:
        raise RuntimeError(adopted.stderr)
    port, log = _free_port(), tmp / "processes.log"
    api = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([*VIGIL, "serve", "--port", str(port)], env=env, cwd=tmp,
                              stdout=log.open("a"), stderr=subprocess.STDOUT)
    watcher, traffic, results = None, Traffic(api, label_delay), []
    try:
        _wait(lambda: _ready(api), 180, "the API to be ready")
        watcher = _start_watch(env, 2.0, log)
        threading.Thread(target=traffic.run, daemon=True).start()
        started = time.monotonic()
        _wait(lambda: _health(settings.database_url, good) == "healthy", 300, "the good version's healthy record", 1)
        print(f"  version {good} serving; healthy record after {time.monotonic() - started:.0f}s of traffic")
        for number, how in enumerate(["direct", "canary"] * trials, start=1):
            result = _trial(settings, traffic, good, number, how, share)
            results.append(result)
            print(f"  trial {number} ({how}): v{result['bad']} {result['ended']} after {result['seconds']:.1f}s; "
                  f"it answered {result['answers']} requests, {result['wrong']} of them wrong")
    finally:
        traffic.stop.set()
        if watcher is not None:
            _stop(watcher)
        _stop(server)
    print(f"  traffic: {len(traffic.answers)} answers, {traffic.errors} client errors; logs in {log}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3, help="bad versions per way of releasing")
    parser.add_argument("--share", type=float, default=0.1, help="the canary's share of the requests")
    parser.add_argument("--label-delay", type=float, default=1.0, help="seconds from an answer to its true label")
    args = parser.parse_args()
    if args.label_delay < 0 or not 0 < args.share < 1:
        parser.error("--label-delay must be >= 0 and --share in (0, 1)")
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          f"{RATE:g} requests and labels per second, labels {args.label_delay:g} s late; canary share {args.share:.0%}")
    results = run(args.trials, args.share, args.label_delay)
    medians = {}
    for how, label in (("direct", "baseline: promoted, rolled back automatically"),
                       ("canary", f"canary at {args.share:.0%}, aborted by the judge")):
        wrong = [r["wrong"] for r in results if r["how"] == how]
        medians[how] = float(np.median(wrong))
        print(f"{label}: median {medians[how]:.0f} wrong answers (min {min(wrong)}, max {max(wrong)}) "
              f"over {len(wrong)} trial(s)")
    ratio = medians["direct"] / medians["canary"] if medians["canary"] else float("inf")
    print(f"the canary served {ratio:.1f}x fewer wrong answers (target: at least 5x)")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

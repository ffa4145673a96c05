"""Benchmark: time to recover from a bad promotion, and false rollbacks in a long healthy run.

    .venv/bin/python benchmarks/watchdog_benchmark.py [--trials 3] [--no-dag] [--no-api]

Part 1, end to end (unless --no-api), in temporary stores (SQLite for Vigil and MLflow):
a good version (demo loan-default task) is trained and promoted; Vigil's API serves it on
loopback (``vigil serve``, 1 worker, alias polled every 2 s); ``vigil watch --interval 2`` runs;
a client sends 20 predictions/s and each true label 1 s after its answer (20 labels/s). Once the
good version has earned a healthy record, a version trained on corrupted labels (its offline
accuracy looks as good; on real traffic it is ~0.3 worse) is trained and promoted, --trials
times. Reported per trial: seconds from the promotion until the API's answers carry the good
version again, and the labels of the bad version's answers sent until then. With --dag (default)
one more trial runs with ``vigil watch --interval 60``: the every-minute Airflow DAG's cadence.
Cooldown is 0 and the daily budget 100 here, so that trials can follow each other.

Part 2, on the pure decision functions (the rules ``vigil watch`` applies), with simulated noise:
10,000 healthy evaluations (labels per evaluation as at 20 labels/s every 2 s, and every 60 s;
latency and errors per evaluation as 100 requests) count the rollbacks, with production accuracy
equal to the offline score and 0.02 below it (the version's healthy record, earned on its first
accepted test, then joins its baseline, as in the service); the same streams
judged by a plain fixed-window rule (3 consecutive 30-label windows below baseline - margin) are
the baseline measured in the same run, for false trips and for labels needed to catch the bad
version.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODEL_NAME = "bench-loan"
RATE = 20.0  # predictions (and labels) per second
LABEL_DELAY = 1.0
VIGIL = [sys.executable, "-c", "from cli.main import main; main()"]


# -- part 1: end to end --------------------------------------------------------------------------

@dataclass
class Answer:
    at: float  # wall clock
    version: int
    labelled_at: float | None = None
    correct: bool = True  # the answer's prediction equals the true label


@dataclass
class Traffic:
    """A client sending one prediction every 1/RATE s and each true label ``label_delay`` s later."""

    api: str
    label_delay: float = LABEL_DELAY
    answers: list[Answer] = field(default_factory=list)
    errors: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        from monitoring.training import datasets

        features = datasets.generate_features(200_000, 123)
        truth = np.random.default_rng(5).random(len(features)) < datasets.true_default_probability(features)
        rows = features.to_dict(orient="records")
        pending: deque[tuple[float, str, int, Answer]] = deque()
        started = time.monotonic()
        with httpx.Client(base_url=self.api, timeout=10) as http:
            for index, row in enumerate(rows):
                if self.stop.is_set():
                    return
                delay = started + index / RATE - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                self._send_labels(http, pending)
                try:
                    response = http.post("/predict", json=row)
                    response.raise_for_status()
                except httpx.HTTPError:
                    self.errors += 1
                    continue
                body = response.json()
                answer = Answer(time.time(), body["model_version"],
                                correct=int(float(body["prediction"])) == int(truth[index]))
                self.answers.append(answer)
                pending.append((time.monotonic() + self.label_delay, body["prediction_id"], int(truth[index]), answer))

    def _send_labels(self, http: httpx.Client, pending: deque) -> None:
        due = []
        while pending and pending[0][0] <= time.monotonic():
            due.append(pending.popleft())
        if not due:
            return
        try:
            http.post("/feedback", json=[{"prediction_id": p, "label": y} for _, p, y, _ in due]).raise_for_status()
        except httpx.HTTPError:
            self.errors += 1
            return
        for *_, answer in due:
            answer.labelled_at = time.time()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(condition, timeout: float, what: str, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f}s")


def _health(url: str, version: int) -> str | None:
    from monitoring.store.engine import session_scope
    from monitoring.store.tables import VersionHealth

    with session_scope(url) as session:
        row = session.get(VersionHealth, (MODEL_NAME, version))
        return row.state if row else None


def _rollback_evidence(url: str, bad: int) -> dict:
    from sqlalchemy import select

    from monitoring.store.engine import session_scope
    from monitoring.store.tables import RegistryEvent

    with session_scope(url) as session:
        event = session.scalars(select(RegistryEvent).where(
            RegistryEvent.model_name == MODEL_NAME, RegistryEvent.kind == "auto_rollback",
            RegistryEvent.from_version == bad)).first()
        return {} if event is None else {"at": event.created_at.timestamp(), **event.evidence.get("numbers", {})}


def _start_watch(env: dict[str, str], interval: float, log: Path) -> subprocess.Popen:
    return subprocess.Popen([*VIGIL, "watch", "--interval", str(interval)], env=env, cwd=log.parent,
                            stdout=log.open("a"), stderr=subprocess.STDOUT)


def _stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def end_to_end(trials: int, dag: bool) -> list[dict]:
    tmp = Path(tempfile.mkdtemp(prefix="vigil-watchdog-bench-"))
    env = {**os.environ, "VIGIL_DATABASE_URL": f"sqlite:///{tmp / 'vigil.db'}",
           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}", "VIGIL_VAR_DIR": str(tmp),
           "VIGIL_MLFLOW_ARTIFACT_ROOT": str(tmp / "artifacts"), "VIGIL_MODEL_NAME": MODEL_NAME,
           "VIGIL_COOLDOWN_MINUTES": "0", "VIGIL_MAX_AUTO_ROLLBACKS_PER_DAY": "100",
           "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
           "VIGIL_OPEN_ACCESS": "true"}  # the clients send no key: serving and the watchdog are measured
    os.environ.update(env)
    from monitoring.registry.mlflow_registry import Registry
    from monitoring.settings import get_settings, reset_settings
    from monitoring.store.migrations import upgrade
    from monitoring.training import datasets
    from monitoring.training.trainer import train

    reset_settings()
    settings = get_settings()
    upgrade(settings.database_url)
    registry = Registry(settings)
    good = train(datasets.generate(20_000, 0), registry=registry, store_url=settings.database_url,
                 model_name=MODEL_NAME, actor="benchmark", promote=True).version
    port = _free_port()
    api = f"http://127.0.0.1:{port}"
    log = tmp / "processes.log"
    server = subprocess.Popen([*VIGIL, "serve", "--port", str(port)], env=env, cwd=tmp,
                              stdout=log.open("a"), stderr=subprocess.STDOUT)
    watcher = None
    traffic = Traffic(api)
    results = []
    try:
        _wait(lambda: _ready(api), 180, "the API to be ready")
        watcher = _start_watch(env, 2.0, log)
        sender = threading.Thread(target=traffic.run, daemon=True)
        sender.start()
        started = time.monotonic()
        _wait(lambda: _health(settings.database_url, good) == "healthy", 300, "the good version's healthy record", 1)
        print(f"  version {good} serving; healthy record after {time.monotonic() - started:.0f}s of traffic")
        plan = [("vigil watch --interval 2", 2.0)] * trials + ([("every minute (DAG cadence)", 60.0)] if dag else [])
        for number, (label, interval) in enumerate(plan, start=1):
            if interval != 2.0:
                _stop(watcher)
                watcher = _start_watch(env, interval, log)
                time.sleep(5)  # let it start (its first run happens at once)
            result = _one_trial(settings, registry, traffic, number, good, label)
            results.append(result)
            print(f"  trial {number} ({label}): back on v{good} {result['seconds']:.1f}s after promoting "
                  f"v{result['bad']}; {result['labels_sent']} labels of v{result['bad']} answers sent, "
                  f"{result['labels_used']} used by the watchdog; API served v{result['bad']} after "
                  f"{result['served_bad_after']:.1f}s, rollback committed after {result['rollback_after']:.1f}s")
    finally:
        traffic.stop.set()
        if watcher is not None:
            _stop(watcher)
        _stop(server)
    print(f"  traffic: {len(traffic.answers)} answers, {traffic.errors} client errors; logs in {log}")
    return results


def _ready(api: str) -> bool:
    try:
        return httpx.get(f"{api}/health/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _one_trial(settings, registry, traffic: Traffic, number: int, good: int, label: str) -> dict:
    from monitoring.training import datasets
    from monitoring.training.trainer import train

    bad = train(datasets.bad_training_set(20_000, 100 + number), registry=registry,
                store_url=settings.database_url, model_name=MODEL_NAME, actor="benchmark",
                promote=True, seed=number).version
    promoted = time.time()
    served_bad = _wait(lambda: next((a.at for a in reversed(traffic.answers) if a.version == bad), None),
                       60, f"the API to serve v{bad}")
    back = _wait(lambda: next((a.at for a in traffic.answers if a.at > served_bad and a.version == good), None),
                 300, f"the API to serve v{good} again")
    evidence = _wait(lambda: _rollback_evidence(settings.database_url, bad), 30, "the rollback event")
    bad_answers = [a for a in traffic.answers if a.version == bad]
    return {"trial": number, "cadence": label, "bad": bad, "seconds": back - promoted,
            "served_bad_after": served_bad - promoted, "rollback_after": evidence["at"] - promoted,
            "labels_sent": sum(1 for a in bad_answers if a.labelled_at is not None and a.labelled_at <= back),
            "labels_used": evidence.get("labels"), "bad_accuracy": evidence.get("accuracy")}


# -- part 2: long healthy runs on the decision functions --------------------------------------------

def healthy_runs(evaluations: int, seed: int = 0) -> list[str]:
    from monitoring.settings import WatchdogPolicy
    from monitoring.watchdog import decisions

    policy = WatchdogPolicy()
    baseline = 0.81
    margin = decisions.quality_margin(baseline, policy)
    rng = np.random.default_rng(seed)
    lines = []
    for cadence, labels_per_eval in (("every 2 s at 20 labels/s", 40), ("every 60 s at 20 labels/s", 1200)):
        for production_accuracy in (baseline, baseline - 0.02):
            quality, test = decisions.SprtState(), decisions.error_rate_test(baseline, policy)
            streaks = {"p95": decisions.StreakState(), "p99": decisions.StreakState(), "errors": decisions.StreakState()}
            sprt_rollbacks = service_rollbacks = 0
            window_trips, window_run, window_buffer = 0, 0, np.zeros(0, dtype=bool)
            for _ in range(evaluations):
                errors = rng.random(labels_per_eval) > production_accuracy
                before = quality.trips
                quality = decisions.sprt_update(quality, errors, test)
                if quality.trips > before:
                    sprt_rollbacks += 1
                    quality, test = decisions.SprtState(), decisions.error_rate_test(baseline, policy)  # a new tenure
                elif decisions.earns_health("unknown", quality, False, policy) and test.p0 == 1 - baseline:
                    # as the service does: the healthy record joins the baseline (the lower one counts)
                    test = decisions.error_rate_test(min(baseline, quality.accuracy), policy)
                latencies = rng.lognormal(np.log(15), 0.5, 100)
                failed = rng.random(100) < 0.005
                numbers = decisions.summarise_service(latencies.tolist(), failed.tolist())
                tripped = False
                for key, value, limit in (("p95", numbers.latency_p95_ms, policy.latency_p95_slo_ms),
                                          ("p99", numbers.latency_p99_ms, policy.latency_p99_slo_ms),
                                          ("errors", numbers.error_rate, policy.error_rate_limit)):
                    streaks[key] = decisions.streak_update(streaks[key], value, limit, numbers.requests, policy)
                    tripped |= streaks[key].breaching
                if tripped:
                    service_rollbacks += 1
                    streaks = {k: decisions.StreakState() for k in streaks}
                # the baseline rule: 3 consecutive 30-label windows below baseline - margin
                window_buffer = np.concatenate([window_buffer, errors])
                whole = len(window_buffer) // 30 * 30
                for low in 1 - window_buffer[:whole].reshape(-1, 30).mean(axis=1) < baseline - margin:
                    window_run = window_run + 1 if low else 0
                    if window_run >= 3:
                        window_trips, window_run = window_trips + 1, 0
                window_buffer = window_buffer[whole:]
            lines.append(f"| {cadence} | {production_accuracy:.2f} | {evaluations:,} | "
                         f"{evaluations * labels_per_eval:,} | {sprt_rollbacks} | {service_rollbacks} | "
                         f"{window_trips} |")
    return lines


def labels_to_detect(bad_accuracy: float, trials: int = 2000, seed: int = 1) -> tuple[list[int], list[int]]:
    from monitoring.settings import WatchdogPolicy
    from monitoring.watchdog import decisions

    policy = WatchdogPolicy()
    baseline = 0.81
    test = decisions.error_rate_test(baseline, policy)
    rng = np.random.default_rng(seed)
    sprt, window = [], []
    for _ in range(trials):
        errors = rng.random(5000) > bad_accuracy
        state = decisions.SprtState()
        for count, error in enumerate(errors, start=1):
            state = decisions.sprt_update(state, [error], test)
            if state.breaching and count >= policy.min_labels:
                sprt.append(count)
                break
        run = 0
        for end in range(30, len(errors) + 1, 30):
            run = run + 1 if 1 - errors[end - 30:end].mean() < baseline - test.margin else 0
            if run >= 3:
                window.append(end)
                break
    return sprt, window


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3, help="bad promotions with vigil watch --interval 2")
    parser.add_argument("--dag", action=argparse.BooleanOptionalAction, default=True,
                        help="one more trial at the every-minute cadence")
    parser.add_argument("--api", action=argparse.BooleanOptionalAction, default=True,
                        help="run part 1 (end to end through the API)")
    parser.add_argument("--evaluations", type=int, default=10_000)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")

    from monitoring.settings import WatchdogPolicy
    from monitoring.watchdog import decisions

    policy = WatchdogPolicy()
    test = decisions.error_rate_test(0.81, policy)
    print(f"SPRT: p0={test.p0:.3f} vs p1={test.p1:.3f}, alpha={policy.sprt_alpha:g}, beta={policy.sprt_beta:g}, "
          f"bounds [{test.lower:.2f}, {test.upper:.2f}], min labels {policy.min_labels}")

    if args.api:
        print("part 1: end to end (API on loopback, 20 predictions and 20 labels per second)")
        results = end_to_end(args.trials, args.dag)
        watch = [r["seconds"] for r in results if r["cadence"].startswith("vigil watch")]
        if watch:
            print(f"  vigil watch --interval 2: median {np.median(watch):.1f}s, max {max(watch):.1f}s "
                  f"over {len(watch)} trial(s) (target < 15 s)")

    print(f"part 2: {args.evaluations:,} healthy evaluations on the decision functions")
    print("| cadence | production accuracy (baseline 0.81) | evaluations | labels | SPRT rollbacks "
          "| latency/error rollbacks | baseline rule: 3 x 30-label windows |")
    print("|---|---|---|---|---|---|---|")
    for line in healthy_runs(args.evaluations):
        print(line)
    sprt, window = labels_to_detect(0.52)
    print(f"labels to catch a version at accuracy 0.52 (baseline 0.81), 2000 runs: SPRT median "
          f"{np.median(sprt):.0f} (p95 {np.percentile(sprt, 95):.0f}); baseline rule median "
          f"{np.median(window):.0f} (p95 {np.percentile(window, 95):.0f})")


if __name__ == "__main__":
    main()

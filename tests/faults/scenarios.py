"""The faults driven here, each under prediction traffic, and what each one did (one ``Row``).

- MLflow killed (SIGKILL) and started again on its port;
- MLflow hung (SIGSTOP: connections are accepted, nothing answers) and resumed;
- the watchdog process stalled (SIGSTOP) and resumed; the monitoring DAG's check (its task
  function, every 2 s here instead of every 5 minutes) announces it;
- PostgreSQL (a private cluster holding Vigil's store) stopped and started.

A row counts the predictions answered and failed from the fault's start until the system was
whole again, the logged rows missing at the end, the Slack messages lost or duplicated (each
outbox row's text against what the fake Slack received), the seconds from the end of the fault
(MLflow answering again, the process resumed, PostgreSQL accepting connections) until everything
was back (alerts resolved and delivered, skips cleared, the log drained) and how long from the
fault's start until it was announced, and where.
"""

from __future__ import annotations

import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from monitoring.alerts.delivery import deliver_pending
from monitoring.settings import Settings
from monitoring.store.engine import dispose_engines, lock_model, session_scope
from monitoring.watchdog import heartbeat, skips
from tests.faults.harness import MlflowServer, Traffic, wait_for
from tests.faults.system import SETTINGS, Vigil

DOWN_SECONDS = 20.0
ANNOUNCE_TARGET = 60.0


@dataclass
class Row:
    fault: str
    answered: int
    failed: int
    rows_lost: int
    slack_lost: int
    slack_duplicated: int
    seconds_to_whole: float
    announced_after: float | None
    announced_by: str
    observations: dict

    def as_dict(self) -> dict:
        return asdict(self)


class Run:
    """Marks taken at a fault's start, and the row made from them at its end."""

    def __init__(self, vigil: Vigil, traffic: Traffic, fault: str):
        self.vigil, self.traffic, self.fault = vigil, traffic, fault
        self.outbox_mark, self.posted_mark = vigil.outbox_size(), len(vigil.slack.posted())
        self.answered_mark = len(traffic.answered)
        self.started = time.monotonic()
        self.announced_after: float | None = None
        self.observations: dict = {}

    def announced(self) -> None:
        if self.announced_after is None:
            self.announced_after = round(time.monotonic() - self.started, 1)

    def row(self, ended: float, announced_by: str) -> Row:
        whole = time.monotonic()
        answered, failed = self.traffic.between(self.started, whole)
        ids = [pid for _, pid in self.traffic.answered[self.answered_mark:]]
        wait_for(lambda: self.vigil.logged(ids) == len(ids) or time.monotonic() - whole > 30,
                 what="the prediction log", timeout=60)
        _, lost, duplicated = self.vigil.slack_accounting(self.outbox_mark, self.posted_mark)
        return Row(self.fault, answered, failed, len(ids) - self.vigil.logged(ids), lost, duplicated,
                   round(whole - ended, 1), self.announced_after, announced_by, self.observations)


def mlflow_down(vigil: Vigil, traffic: Traffic, mlflow: MlflowServer, *, hang: bool) -> Row:
    """MLflow killed and restarted (or stopped and resumed): skips, the alert, serving goes on."""
    run = Run(vigil, traffic, "MLflow server hung (SIGSTOP)" if hang else "MLflow server killed")
    key = skips.alert_key(vigil.model_name)
    mlflow.signal(signal.SIGSTOP) if hang else mlflow.kill()
    wait_for(lambda: vigil.control().skipped_since is not None, what="a recorded skip", timeout=60)
    run.observations["first skip recorded after s"] = round(time.monotonic() - run.started, 1)
    run.observations["model lock taken in s"] = _time_to_lock(vigil)
    wait_for(lambda: not vigil.ready()["registry_reachable"], what="readiness says MLflow is down",
             timeout=30)
    run.observations["serving during it"] = vigil.ready()["model_loaded"]
    wait_for(lambda: vigil.posted_since(run.posted_mark, "MLflow unreachable"), what="the alert in Slack",
             timeout=120)
    run.announced()
    _wait_out(run)
    if hang:
        mlflow.signal(signal.SIGCONT)
    else:
        run.observations["mlflow restart took s"] = round(mlflow.start_and_wait(), 1)
    ended = time.monotonic()  # MLflow answers again: from here on it is Vigil's recovery
    wait_for(lambda: _resolved_and_told(vigil, run, key) and vigil.control().skipped_since is None
             and vigil.ready()["registry_reachable"], what="MLflow back in use", timeout=180)
    return run.row(ended, "Slack (mlflow_unreachable), /health/ready")


def watchdog_stalled(vigil: Vigil, traffic: Traffic) -> Row:
    """The watchdog stopped (SIGSTOP): readiness, the gauge and the DAG's check say so."""
    run = Run(vigil, traffic, "watchdog process stalled (SIGSTOP)")
    settings = Settings(database_url=vigil.store_url, slack_bot_token=vigil.slack.token,
                        slack_base_url=vigil.slack.base_url)
    threshold = float(SETTINGS["VIGIL_WATCHDOG_STALE_SECONDS"])
    vigil.watchdog.signal(signal.SIGSTOP)

    def dag_check() -> bool:  # what the vigil_monitoring DAG's check_watchdog task does
        heartbeat.check_and_alert(vigil.store_url, threshold)
        deliver_pending(vigil.store_url, settings=settings)
        return vigil.posted_since(run.posted_mark, "The watchdog is stalled")

    wait_for(lambda: vigil.ready()["watchdog"]["stale"], what="readiness says stale", timeout=60)
    run.observations["readiness stale after s"] = round(time.monotonic() - run.started, 1)
    run.observations["gauge at that time"] = round(vigil.gauge("vigil_watchdog_seconds_since_last_evaluation"), 1)
    wait_for(dag_check, what="watchdog_stalled in Slack", timeout=60, every=2)
    run.announced()
    _wait_out(run)
    vigil.watchdog.signal(signal.SIGCONT)
    ended = time.monotonic()
    wait_for(lambda: _resolved_and_told(vigil, run, heartbeat.ALERT_KEY)
             and not vigil.ready()["watchdog"]["stale"], what="the watchdog back", timeout=120)
    return run.row(ended, "/health/ready + gauge, then Slack (watchdog_stalled) via the DAG's check")


def postgres_stopped(vigil: Vigil, traffic: Traffic, postgres) -> Row:
    """Vigil's store stopped: the API answers and buffers, readiness says so; all rows arrive."""
    run = Run(vigil, traffic, "PostgreSQL (Vigil's store) stopped")
    postgres.stop()
    wait_for(lambda: not vigil.ready()["store_reachable"], what="readiness says store down", timeout=60)
    run.announced()
    run.observations["log queue during it"] = vigil.gauge("vigil_prediction_log_queue_rows")
    _wait_out(run)
    postgres.start()
    dispose_engines()  # this process's pooled connections died with the server
    ended = time.monotonic()
    # The backlog is the rows answered while the store was down: the queue itself is seldom empty
    # under 20 predictions a second on a busy machine, so it cannot be the mark.
    backlog = [pid for _, pid in traffic.answered[run.answered_mark:]]

    def state() -> dict:
        ready = vigil.ready()
        return {"store_reachable": ready["store_reachable"], "watchdog_stale": ready["watchdog"]["stale"],
                "backlog_unwritten": len(backlog) - vigil.logged(backlog)}

    wait_for(lambda: state() == {"store_reachable": True, "watchdog_stale": False, "backlog_unwritten": 0},
             what="the store back in use", timeout=180, explain=state)
    return run.row(ended, "/health/ready (503: store unreachable), vigil_prediction_log_store_ok")


def _wait_out(run: Run) -> None:
    left = DOWN_SECONDS - (time.monotonic() - run.started)
    if left > 0:
        time.sleep(left)


def _resolved_and_told(vigil: Vigil, run: Run, key: str) -> bool:
    alert = vigil.alert(key)
    return alert is not None and alert.state == "resolved" \
        and vigil.posted_since(run.posted_mark, f"Resolved: {alert.title}")


def _time_to_lock(vigil: Vigil) -> float:
    started = time.monotonic()
    with session_scope(vigil.store_url) as session:
        lock_model(session, vigil.model_name)
    return round(time.monotonic() - started, 2)


def markdown(rows: list[Row]) -> str:
    head = ("| fault | predictions answered | failed | log rows lost | Slack lost | Slack duplicated "
            "| s until whole again | announced after (s) | announced by |")
    lines = [head, "|" + " --- |" * 9]
    for r in rows:
        lines.append(f"| {r.fault} | {r.answered} | {r.failed} | {r.rows_lost} | {r.slack_lost} | "
                     f"{r.slack_duplicated} | {r.seconds_to_whole} | {r.announced_after} | {r.announced_by} |")
    return "\n".join(lines)


def outcome_path(root: Path) -> Path:
    return root / "fault_table.json"

"""The watched watchdog: a heartbeat per run, and the judgement of whether any watchdog is alive.

Every watchdog run (``evaluate_and_act``: ``vigil watch``, ``vigil watchdog``, the DAG) ends with
a beat: a row per process, written at the wall clock, even when every model was skipped or there
was none to watch. A row per process rather than the models' ``last_evaluated_at``: a watchdog
with nothing to evaluate, or skipping every model while MLflow is down, is alive (the outage has
its own alert), and a container's health check asks about its own process, not any watchdog.

Others judge the beats, never the watchdog itself: ``freshness`` (pure) says whether the newest
beat is older than ``VIGIL_WATCHDOG_STALE_SECONDS``; ``check_and_alert`` (the monitoring DAG)
raises the ``watchdog_stalled`` alert, or resolves it, and the next beat resolves it too.
"""

from __future__ import annotations

import math
import os
import socket
from dataclasses import dataclass
from datetime import datetime

from monitoring.store import alerts
from monitoring.store.engine import session_scope, utcnow
from monitoring.store.heartbeats import Beat, newest_beat, record_beat

KIND = "watchdog_stalled"
ALERT_KEY = f"vigil:{KIND}"
SYSTEM = "(all models)"  # the alert is about every model: no single model's name fits


@dataclass(frozen=True)
class Freshness:
    """How long ago the newest watchdog run ended, judged against the stale threshold."""

    seconds_since: float  # math.inf: no watchdog has ever run
    stale: bool
    threshold_seconds: float
    beat: Beat | None

    def describe(self) -> str:
        if self.beat is None:
            return "no watchdog has run yet: nothing rolls back a bad version"
        age = f"the last watchdog run ended {self.seconds_since:.0f} s ago " \
              f"({self.beat.watcher}, at {self.beat.beat_at:%H:%M:%S} UTC)"
        if not self.stale:
            return age
        return f"{age}, over {self.threshold_seconds:g} s: the watchdog is stalled and nothing " \
               f"rolls back a bad version"


def freshness(beat: Beat | None, now: datetime, threshold_seconds: float) -> Freshness:
    """Pure: the judgement of the newest beat at ``now``."""
    seconds = math.inf if beat is None else max(0.0, (now - beat.beat_at).total_seconds())
    return Freshness(seconds, seconds > threshold_seconds, threshold_seconds, beat)


def this_host() -> str:
    return socket.gethostname()


def beat(url: str, *, evaluated: int, skipped: int, failed: int) -> None:
    """This process's beat after a run; a stalled-watchdog alert is resolved by it."""
    now = utcnow()
    with session_scope(url) as session:
        record_beat(session, host=this_host(), pid=os.getpid(), now=now, evaluated=evaluated,
                    skipped=skipped, failed=failed)
        alerts.resolve_alert(session, key=ALERT_KEY, now=now,
                             facts={"watchdog": f"{this_host()}:{os.getpid()}"},
                             text="A watchdog run completed again.")


def read_freshness(url: str, threshold_seconds: float, *, host: str | None = None) -> Freshness:
    """The newest beat (of any process, or of those on ``host``) judged now."""
    return freshness(newest_beat(url, host=host), utcnow(), threshold_seconds)


def check_and_alert(url: str, threshold_seconds: float) -> Freshness:
    """Raise ``watchdog_stalled`` when no watchdog ran for the threshold, else resolve it."""
    found = read_freshness(url, threshold_seconds)
    facts = {"seconds since the last run": None if found.beat is None else round(found.seconds_since),
             "threshold seconds": threshold_seconds,
             "last run by": found.beat.watcher if found.beat else None}
    with session_scope(url) as session:
        if found.stale and not alerts.is_firing(session, ALERT_KEY):  # a re-run changes nothing
            title = "The watchdog is stalled" if found.beat else "No watchdog is running"
            alerts.raise_alert(session, key=ALERT_KEY, model_name=SYSTEM, kind=KIND,
                               severity="critical", title=title, facts=facts,
                               text=found.describe() + ". Check `vigil watch` (compose service "
                                    "`watchdog`) or the vigil_watchdog DAG.")
        elif not found.stale:
            alerts.resolve_alert(session, key=ALERT_KEY, facts=facts, text=found.describe())
    return found

"""Watchdog heartbeats: each watchdog process's last completed run, and the newest of them.

A watchdog writes its beat at the end of every run (``monitoring.watchdog.heartbeat``); whoever
must notice a silent watchdog reads them from here: the API (readiness, metrics), the
monitoring DAG, ``vigil watchdog-health``. A beat also deletes the rows of processes that have
not beaten for a day, so the table holds about one row per live watchdog process.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from monitoring.store.dialect import upsert
from monitoring.store.engine import session_scope
from monitoring.store.tables import WatchdogHeartbeat

FORGET_AFTER = timedelta(days=1)


class Beat(NamedTuple):
    """One watchdog process's last completed run."""

    watcher: str
    host: str
    pid: int
    started_at: datetime
    beat_at: datetime
    evaluated: int
    skipped: int
    failed: int


def record_beat(session: Session, *, host: str, pid: int, now: datetime, evaluated: int,
                skipped: int, failed: int) -> None:
    """Write this process's beat (its first run sets ``started_at``); forget long-gone ones."""
    row = {"watcher": f"{host}:{pid}", "host": host, "pid": pid, "started_at": now, "beat_at": now,
           "evaluated": evaluated, "skipped": skipped, "failed": failed}
    upsert(session, WatchdogHeartbeat, [row], key=["watcher"],
           set_columns=["beat_at", "evaluated", "skipped", "failed"])
    session.execute(delete(WatchdogHeartbeat).where(WatchdogHeartbeat.beat_at < now - FORGET_AFTER))


def newest_beat(url: str, *, host: str | None = None) -> Beat | None:
    """The most recent beat of any watchdog (or of those on ``host``); None if there is none."""
    query = select(*WatchdogHeartbeat.__table__.columns).order_by(WatchdogHeartbeat.beat_at.desc())
    if host is not None:
        query = query.where(WatchdogHeartbeat.host == host)
    with session_scope(url) as session:
        row = session.execute(query.limit(1)).first()
    return Beat(*row) if row is not None else None

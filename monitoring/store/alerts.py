"""The alert lifecycle: raise, update, acknowledge, resolve, follow up, re-notify, by alert key.

Each function works in the caller's session and transaction, so an alert changes if and only if
its outbox message (``monitoring.store.outbox``) is written with it. One key is one row: raising a key
that is already firing updates its details without a new message; raising it again after it was
resolved starts a new incident (a new "firing" message and, once delivered, a new Slack thread).

Concurrent callers are safe: the first statement of each change is a write on the alert row
(an upsert or a conditional UPDATE), which PostgreSQL row-locks and SQLite serialises with its
write lock, so two watchdogs raising or re-notifying the same key produce one message.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from monitoring.settings import get_settings
from monitoring.store.dialect import insert_ignore
from monitoring.store.engine import utcnow
from monitoring.store.outbox import SEVERITIES, enqueue
from monitoring.store.tables import Alert, OutboxMessage

KEY_CHARS = 300
KIND_CHARS = 32


def raise_alert(
    session: Session,
    *,
    key: str,
    model_name: str,
    kind: str,
    severity: str,
    title: str,
    facts: dict[str, Any],
    text: str = "",
    link: str | None = None,
    now: datetime | None = None,
    event: dict[str, Any] | None = None,
) -> Alert:
    """Open the alert ``key`` (one "firing" message), or update it if it is already firing.

    ``link`` (default: the dashboard) is where its messages point, such as an incident's page;
    ``event``: the typed registry event its message carries to webhook routes (``monitoring.events``)."""
    _check_key(key)
    if not kind or len(kind) > KIND_CHARS:
        raise ValueError(f"alert kind must be 1-{KIND_CHARS} characters, not {kind!r}")
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, not {severity!r}")
    if not title:
        raise ValueError("an alert needs a title")
    now = now or utcnow()
    details = {"facts": dict(facts), "text": text, **({"link": link} if link else {})}

    created = insert_ignore(session, Alert, [{
        "alert_key": key, "model_name": model_name, "kind": kind, "severity": severity,
        "state": "firing", "title": title, "details": details, "opened_at": now, "updated_at": now,
        "last_notified_at": now,
    }], key=["alert_key"], returning=Alert.id)
    alert = _locked(session, key)
    if not created:
        if alert.model_name != model_name:
            raise ValueError(f"alert {key!r} belongs to model {alert.model_name!r}, not {model_name!r}")
        was_firing = alert.state == "firing"
        alert.kind, alert.severity, alert.title = kind, severity, title
        alert.details = {**_carried(alert.details, was_firing), **details}
        alert.updated_at = now
        if was_firing:
            return alert
        alert.state, alert.opened_at, alert.resolved_at, alert.last_notified_at = "firing", now, None, now
    _announce(session, alert, kind="firing", title=title, severity=severity, facts=facts, text=text, now=now,
              event=event)
    return alert


def resolve_alert(
    session: Session, *, key: str, facts: dict[str, Any], text: str = "", now: datetime | None = None,
    event: dict[str, Any] | None = None,
) -> Alert | None:
    """Resolve a firing alert (a "resolved" message in its thread, carrying ``event`` if given);
    None if it was not firing."""
    _check_key(key)
    now = now or utcnow()
    resolved = session.execute(
        update(Alert)
        .where(Alert.alert_key == key, Alert.state == "firing")
        .values(state="resolved", resolved_at=now, updated_at=now)
        .returning(Alert.id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if resolved is None:
        return None
    alert = _locked(session, key)
    alert.details = {**alert.details, "resolution": {"facts": dict(facts), "text": text}}
    _announce(session, alert, kind="resolved", title=f"Resolved: {alert.title}", severity="info",
              facts=facts, text=text, now=now, event=event)
    return alert


def acknowledge_alert(session: Session, *, key: str, actor: str,
                      now: datetime | None = None) -> Alert:
    """An operator took a firing alert (an "acknowledged" message in its thread, a PagerDuty
    acknowledge). ``LookupError`` for no such alert; ``ValueError`` if it is not firing or was
    acknowledged already in this incident (nothing changes)."""
    _check_key(key)
    if not actor.strip():
        raise ValueError("an acknowledgement needs the operator's name")
    now = now or utcnow()
    touched = session.execute(  # a write first, like the other changes (see the module docstring)
        update(Alert).where(Alert.alert_key == key).values(updated_at=Alert.updated_at)
        .returning(Alert.id).execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if touched is None:
        raise LookupError(f"no alert with key {key!r}")
    alert = _locked(session, key)
    if alert.state != "firing":
        raise ValueError(f"alert {key!r} is {alert.state}: only a firing alert can be acknowledged")
    done = (alert.details or {}).get("acknowledged")
    if done:
        raise ValueError(f"alert {key!r} was acknowledged by {done['by']} at {done['at']}")
    alert.details = {**(alert.details or {}), "acknowledged": {"by": actor, "at": now.isoformat()}}
    alert.updated_at = now
    _announce(session, alert, kind="acknowledged", title=f"Acknowledged by {actor}: {alert.title}",
              severity="info", facts={"acknowledged by": actor}, text="", now=now)
    return alert


def add_followup(
    session: Session,
    *,
    key: str,
    title: str,
    facts: dict[str, Any],
    text: str = "",
    severity: str = "info",
    now: datetime | None = None,
) -> OutboxMessage:
    """A message in the alert's thread (e.g. "recovered" after a rollback), firing or not."""
    _check_key(key)
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, not {severity!r}")
    now = now or utcnow()
    touched = session.execute(  # a write first, like the other changes (see the module docstring)
        update(Alert).where(Alert.alert_key == key).values(updated_at=now).returning(Alert.id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if touched is None:
        raise LookupError(f"no alert with key {key!r}")
    alert = session.get(Alert, touched, populate_existing=True)
    return _announce(session, alert, kind="followup", title=title, severity=severity, facts=facts,
                     text=text, now=now)


def renotify_due(session: Session, *, now: datetime, interval: timedelta) -> int:
    """Remind about alerts firing for ``interval`` since their last message; returns how many.

    An alert whose previous message is still undelivered (Slack down) gets no reminder on top.
    """
    if interval <= timedelta(0):
        raise ValueError(f"the re-notify interval must be positive, not {interval}")
    undelivered = exists().where(OutboxMessage.alert_id == Alert.id, OutboxMessage.delivered_at.is_(None))
    due_ids = session.execute(
        update(Alert)
        .where(Alert.state == "firing", Alert.last_notified_at <= now - interval, ~undelivered)
        .values(last_notified_at=now)
        .returning(Alert.id)
        .execution_options(synchronize_session=False)
    ).scalars().all()
    for alert_id in sorted(due_ids):
        alert = session.get(Alert, alert_id, populate_existing=True)
        minutes = int((now - alert.opened_at).total_seconds() // 60)
        _announce(session, alert, kind="renotify", title=f"Still firing: {alert.title}",
                  severity=alert.severity, facts=alert.details.get("facts", {}),
                  text=" ".join(part for part in (
                      f"Firing for {minutes} min, since {alert.opened_at:%Y-%m-%d %H:%M} UTC.",
                      alert.details.get("text", "")) if part),
                  now=now)
    return len(due_ids)


def is_firing(session: Session, key: str) -> bool:
    return session.scalar(select(Alert.state).where(Alert.alert_key == key)) == "firing"


def _carried(details: dict[str, Any] | None, same_incident: bool) -> dict[str, Any]:
    """What an alert's details keep when it is raised again: its Slack route threads, and while
    it is the same incident its acknowledgement."""
    kept = ("slack_threads", "acknowledged") if same_incident else ("slack_threads",)
    return {key: value for key, value in (details or {}).items() if key in kept}


def _announce(session: Session, alert: Alert, *, kind: str, title: str, severity: str,
              facts: dict[str, Any], text: str, now: datetime,
              event: dict[str, Any] | None = None) -> OutboxMessage:
    return enqueue(session, model_name=alert.model_name, kind=kind, title=title, severity=severity,
                   facts=facts, text=text, link=(alert.details or {}).get("link") or get_settings().dashboard_url,
                   alert_id=alert.id, now=now, event=event)


def _locked(session: Session, key: str) -> Alert:
    return session.scalars(
        select(Alert).where(Alert.alert_key == key).with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def _check_key(key: str) -> None:
    if not key or len(key) > KEY_CHARS:
        raise ValueError(f"alert key must be 1-{KEY_CHARS} characters, not {key!r}")

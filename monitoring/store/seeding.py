"""Writes only a seeded history makes (the demo, tests, the dashboard benchmark): a model's
watchdog state reset, and an alert from the past with its already delivered Slack messages.

Live alerts go through ``monitoring.store.alerts``; these rows tell a story that already happened.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from monitoring.store import outbox
from monitoring.store.tables import Alert, ModelControl

SEED_CHANNEL = "#vigil-oncall"


def reset_control(session: Session, model_name: str, now: datetime) -> None:
    """The model's watchdog state as a fresh one: not frozen, no breaches, no detector state."""
    session.merge(ModelControl(model_name=model_name, frozen=False, consecutive_breaches=0,
                               detector_state={}, updated_at=now))


def past_alert(
    session: Session, *, key: str, model_name: str, kind: str, severity: str, title: str,
    facts: dict[str, Any], opened: datetime, resolved: datetime | None,
    resolved_facts: dict[str, Any] | None = None,
) -> Alert:
    """An alert opened at ``opened`` (and resolved at ``resolved``) whose "firing" (and
    "resolved") messages were delivered to Slack two seconds after each, in one thread."""
    alert = Alert(alert_key=key, model_name=model_name, kind=kind, severity=severity,
                  state="resolved" if resolved else "firing", title=title,
                  details={"facts": facts, "text": ""}, opened_at=opened,
                  updated_at=resolved or opened, resolved_at=resolved, last_notified_at=opened,
                  slack_channel=SEED_CHANNEL, slack_thread_ts=f"{opened.timestamp():.6f}")
    session.add(alert)
    session.flush()
    messages = [("firing", severity, title, facts, opened)]
    if resolved:
        messages.append(("resolved", "info", f"{title}: resolved", resolved_facts or {}, resolved))
    for message_kind, message_severity, message_title, message_facts, when in messages:
        row = outbox.enqueue(session, model_name=model_name, kind=message_kind,
                             severity=message_severity, title=message_title, facts=message_facts,
                             alert_id=alert.id, now=when)
        row.delivered_at, row.attempts = when + timedelta(seconds=2), 1
    return alert

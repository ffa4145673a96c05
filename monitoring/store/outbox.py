"""The notification outbox: the only writer of ``notification_outbox`` rows.

A row is added in the same transaction as the event it announces (an alias move, an alert), so a
notification exists if and only if the event committed. Delivery (to Slack) happens later, with
retries, from ``monitoring.alerts.delivery``; nothing here does I/O beyond the session.

A payload is structured, not pre-rendered: ``title``, ``severity`` (info|warning|critical),
``facts`` (label -> value, shown as fields), ``text`` (free text), optional ``link``, and for a
registry move its typed ``event`` (``monitoring.events``, sent to webhook routes). It is turned
into Slack Block Kit at delivery time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from monitoring.store.engine import utcnow
from monitoring.store.tables import OutboxMessage

SEVERITIES = ("info", "warning", "critical")


def enqueue(
    session: Session,
    *,
    model_name: str,
    kind: str,
    title: str,
    severity: str = "info",
    facts: dict[str, Any] | None = None,
    text: str = "",
    link: str | None = None,
    alert_id: int | None = None,
    event: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> OutboxMessage:
    """Add one message to the outbox in the caller's transaction."""
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, not {severity!r}")
    now = now or utcnow()
    message = OutboxMessage(
        alert_id=alert_id,
        model_name=model_name,
        kind=kind,
        payload={
            "title": title,
            "severity": severity,
            "facts": {str(k): v for k, v in (facts or {}).items()},
            "text": text,
            "link": link,
            **({"event": event} if event is not None else {}),
        },
        created_at=now,
        attempts=0,
        next_attempt_at=now,
    )
    session.add(message)
    session.flush()
    return message

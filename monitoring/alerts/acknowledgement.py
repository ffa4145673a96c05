"""Acknowledging a firing alert: an operator says "I have it", audited, announced on every route.

The one entry point of ``vigil alerts ack KEY`` and the dashboard's Acknowledge button. In one
transaction: the alert records who acknowledged it and when (``store.alerts.acknowledge_alert``),
an "acknowledged" message goes to the outbox (into the alert's Slack thread; PagerDuty
``acknowledge`` with the alert's dedup key; the webhook and e-mail routes), and the access log
keeps the action. The alert stays firing: it is resolved when the watchdog sees it clear.
Re-notify reminders continue while it fires (PagerDuty folds them into the acknowledged incident).
"""

from __future__ import annotations

from monitoring.store import alerts, history
from monitoring.store.engine import session_scope


def acknowledge(url: str, key: str, actor: str, *, channel: str = "cli") -> str:
    """Acknowledge the firing alert ``key`` as ``actor``; what happened, in one line.

    ``LookupError`` for an unknown key, ``ValueError`` for one not firing or already acknowledged.
    """
    with session_scope(url) as session:
        alert = alerts.acknowledge_alert(session, key=key, actor=actor)
        history.record_access(session, actor=actor, action="acknowledge", allowed=True, channel=channel,
                              model_name=alert.model_name, detail=f"alert {key}")
        return f"{alert.model_name}: alert {key!r} acknowledged by {actor}"

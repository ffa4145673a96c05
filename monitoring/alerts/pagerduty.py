"""The PagerDuty route (Events API v2): an alert triggers an incident; acknowledging the alert in
Vigil (``vigil alerts ack``, the dashboard) acknowledges it; the alert's resolve resolves it.

The dedup key is ``vigil-alert-<alert id>`` (a message with no alert, such as a promotion, gets
``vigil-message-<id>``), so every message of one alert lands on one incident: "resolved"
resolves it, "acknowledged" acknowledges it, any other kind (firing, re-notify, update)
triggers (PagerDuty folds a repeat into the open incident, acknowledged or not). Severities map one to one (info, warning, critical); the routing key comes
from the environment variable the route names.
"""

from __future__ import annotations

import json

from monitoring.alerts.route_http import post_json
from monitoring.alerts.routes import PagerDutyRoute, secret
from monitoring.store.route_deliveries import RoutedMessage

ACTIONS = {"resolved": "resolve", "acknowledged": "acknowledge"}  # every other kind triggers


def dedup_key(message: RoutedMessage) -> str:
    """One incident per alert."""
    if message.alert_id is not None:
        return f"vigil-alert-{message.alert_id}"
    return f"vigil-message-{message.message_id}"


def event(message: RoutedMessage, routing_key: str) -> dict:
    """The Events API v2 body for one message."""
    if message.kind in ACTIONS:
        return {"routing_key": routing_key, "event_action": ACTIONS[message.kind],
                "dedup_key": dedup_key(message)}
    payload = message.payload
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key(message),
        "payload": {
            "summary": f"[{message.model_name}] {payload.get('title', message.kind)}"[:1024],
            "source": f"vigil/{message.model_name}",
            "severity": payload.get("severity", "info"),
            "timestamp": message.created_at.isoformat(),
            "custom_details": {"kind": message.kind, **(payload.get("facts") or {}),
                               "text": payload.get("text", "")},
        },
        **({"links": [{"href": payload["link"], "text": "Vigil"}]} if payload.get("link") else {}),
    }


def send(route: PagerDutyRoute, message: RoutedMessage) -> None:
    """Send one message to the events endpoint; ``RouteError`` if PagerDuty did not take it."""
    body = json.dumps(event(message, secret(route.routing_key_env))).encode()
    post_json(route.events_url, body, {}, timeout=route.timeout_seconds)

"""The generic webhook route: a signed JSON body per outbox message.

Headers: ``X-Vigil-Timestamp`` (Unix seconds), ``X-Vigil-Signature`` =
``sha256=`` + hex HMAC-SHA256 of ``f"{timestamp}.{body}"`` with the route's shared secret (from
the environment variable the route names), and ``Idempotency-Key`` (``vigil-<message id>``, the
same on every retry). A receiver checks the signature and that the timestamp is recent, and
drops a key it has seen. The body is ``webhook_body``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime

from monitoring.alerts.route_http import post_json
from monitoring.alerts.routes import WebhookRoute, secret
from monitoring.store.route_deliveries import RoutedMessage


def signature(secret_value: str, timestamp: str, body: bytes) -> str:
    """The ``X-Vigil-Signature`` value of a body sent at ``timestamp``."""
    digest = hmac.new(secret_value.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def idempotency_key(message: RoutedMessage) -> str:
    """The same for every attempt at one message, different for every message."""
    return f"vigil-{message.message_id}"


def webhook_body(message: RoutedMessage) -> bytes:
    """The JSON the receiver gets: the message's identity, model, kind and structured payload."""
    document = {
        "id": idempotency_key(message),
        "message_id": message.message_id,
        "alert_id": message.alert_id,
        "model": message.model_name,
        "kind": message.kind,
        "created_at": message.created_at.isoformat(),
        **{k: message.payload.get(k) for k in ("title", "severity", "facts", "text", "link")},
    }
    if "event" in message.payload:
        document["event"] = message.payload["event"]
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def send(route: WebhookRoute, message: RoutedMessage, *, now: datetime) -> None:
    """Sign and POST one message; ``RouteError`` if the receiver did not take it."""
    body = webhook_body(message)
    timestamp = str(int(now.timestamp()))
    post_json(route.url, body, {
        "X-Vigil-Timestamp": timestamp,
        "X-Vigil-Signature": signature(secret(route.secret_env), timestamp, body),
        "Idempotency-Key": idempotency_key(message),
    }, timeout=route.timeout_seconds)

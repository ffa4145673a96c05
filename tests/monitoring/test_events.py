"""Registry events: docs/events.md matches the models, and a move carries its typed event."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from monitoring.events import EVENTS, AliasMoved, render_doc
from monitoring.store.engine import session_scope
from monitoring.store.tables import OutboxMessage
from monitoring.watchdog.evaluation import freeze

DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"


def test_the_events_doc_is_generated_from_the_models():
    assert DOC.read_text() == render_doc(), "run: python -m monitoring.events > docs/events.md"


def test_an_event_is_parsed_by_its_type_and_checked():
    event = EVENTS.validate_python({
        "type": "auto_rollback", "model": "churn", "occurred_at": "2026-12-03T12:00:00Z",
        "actor": "watchdog", "alias": "champion", "from_version": 4, "to_version": 3})
    assert isinstance(event, AliasMoved) and event.to_version == 3
    with pytest.raises(ValidationError):
        EVENTS.validate_python({"type": "promote", "model": "churn"})


def test_freeze_enqueues_its_event_in_the_same_message(store_url):
    freeze(store_url, "churn", "ana", "incident 42")
    with session_scope(store_url) as session:
        (message,) = session.query(OutboxMessage).all()
        event = EVENTS.validate_python(message.payload["event"])
    assert (event.type, event.model, event.actor, event.reason) == (
        "freeze", "churn", "ana", "incident 42")

"""The delivery side of the notification outbox: claiming due rows, and recording what happened.

``monitoring.alerts.delivery`` decides and talks to Slack; this module owns its SQL. A claim
leases the due, undelivered rows in id order (``next_attempt_at`` moved ``lease`` ahead) in one
short transaction, so a second deliverer running at the same time skips them: on PostgreSQL it
reads with ``FOR UPDATE SKIP LOCKED``; on SQLite it takes the database's write lock first.

Writing transactions here start with their write: on SQLite, a transaction that read first and
then writes after another writer committed fails at once ("database is locked") instead of
waiting for the lock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from monitoring.store.dialect import is_sqlite
from monitoring.store.engine import session_scope
from monitoring.store.tables import Alert, OutboxMessage


@dataclass(frozen=True)
class PendingMessage:
    """One claimed outbox row with what its delivery needs to know about its alert's thread."""

    id: int
    alert_id: int | None
    model_name: str
    kind: str
    payload: dict[str, Any]
    slack_channel: str | None = None
    slack_thread_ts: str | None = None


def claim(url: str, *, now: datetime, limit: int, lease: timedelta) -> list[tuple[int, int | None]]:
    """Lease the due rows this run may send, in id order: (message id, alert id) pairs.

    A row waits while an earlier message of its alert is undelivered and not claimed with it,
    so a follow-up never overtakes the message that opens its thread.
    """
    with session_scope(url) as session:
        sqlite = is_sqlite(url)
        if sqlite:
            _take_sqlite_write_lock(session)
        due_query = (
            select(OutboxMessage.id, OutboxMessage.alert_id)
            .where(OutboxMessage.delivered_at.is_(None), OutboxMessage.next_attempt_at <= now)
            .order_by(OutboxMessage.id)
            .limit(limit)
        )
        if not sqlite:
            due_query = due_query.with_for_update(skip_locked=True)
        due = [(row.id, row.alert_id) for row in session.execute(due_query)]
        undelivered_of_alert = _undelivered_by_alert(session, {a for _, a in due if a is not None})
        claimed: list[tuple[int, int | None]] = []
        claimed_ids: set[int] = set()
        for message_id, alert_id in due:
            earlier = [m for m in undelivered_of_alert.get(alert_id, []) if m < message_id]
            if all(m in claimed_ids for m in earlier):
                claimed.append((message_id, alert_id))
                claimed_ids.add(message_id)
        if claimed_ids:
            _write(
                session,
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(claimed_ids))
                .values(next_attempt_at=now + lease),
            )
        return claimed


def _undelivered_by_alert(session: Session, alert_ids: set[int]) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {}
    if alert_ids:
        for row in session.execute(
            select(OutboxMessage.id, OutboxMessage.alert_id).where(
                OutboxMessage.delivered_at.is_(None), OutboxMessage.alert_id.in_(alert_ids)
            )
        ):
            found.setdefault(row.alert_id, []).append(row.id)
    return found


def _take_sqlite_write_lock(session: Session) -> None:
    # A write as the first statement makes SQLite take its write lock now, so a second
    # deliverer waits here instead of reading the same due rows (see monitoring.store.engine).
    _write(
        session,
        update(OutboxMessage).where(OutboxMessage.id == -1).values(attempts=OutboxMessage.attempts),
    )


def _write(session: Session, statement):
    return session.execute(statement.execution_options(synchronize_session=False))


def pending_message(url: str, message_id: int) -> PendingMessage:
    """A claimed row, with its alert's Slack thread (if it has one)."""
    with session_scope(url) as session:
        message = session.get(OutboxMessage, message_id)
        alert = session.get(Alert, message.alert_id) if message.alert_id is not None else None
        return PendingMessage(
            id=message.id,
            alert_id=message.alert_id,
            model_name=message.model_name,
            kind=message.kind,
            payload=message.payload,
            slack_channel=alert.slack_channel if alert else None,
            slack_thread_ts=alert.slack_thread_ts if alert else None,
        )


def mark_delivered(
    url: str, message: PendingMessage, *, now: datetime, channel: str | None, ts: str | None
) -> None:
    """The row is delivered; a "firing" message (or the alert's first one) opens its thread."""
    with session_scope(url) as session:
        _write(
            session,
            update(OutboxMessage)
            .where(OutboxMessage.id == message.id)
            .values(delivered_at=now, last_error=None),
        )
        if message.alert_id is not None and ts:
            opens_thread = update(Alert).where(Alert.id == message.alert_id)
            if message.kind != "firing":
                opens_thread = opens_thread.where(Alert.slack_thread_ts.is_(None))
            _write(session, opens_thread.values(slack_channel=channel, slack_thread_ts=ts))


def record_failure(
    url: str, message_id: int, error: str, retry_at: Callable[[int], datetime]
) -> datetime:
    """Count a failed attempt and keep its error; schedule the retry at ``retry_at(attempts)``."""
    with session_scope(url) as session:
        attempts = _write(
            session,
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id)
            .values(attempts=OutboxMessage.attempts + 1, last_error=error)
            .returning(OutboxMessage.attempts),
        ).scalar_one()
        when = retry_at(attempts)
        _write(
            session,
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id)
            .values(next_attempt_at=when),
        )
        return when


def defer_queue(url: str, claimed_rest: list[int], *, until: datetime) -> None:
    """Every waiting message (and the rest of a claimed batch) retries at ``until``, not before."""
    with session_scope(url) as session:
        _write(
            session,
            update(OutboxMessage)
            .where(
                OutboxMessage.delivered_at.is_(None),
                or_(OutboxMessage.next_attempt_at < until, OutboxMessage.id.in_(claimed_rest)),
            )
            .values(next_attempt_at=until),
        )


def release(url: str, message_ids: list[int], *, at: datetime) -> None:
    """Give claimed rows back, due at ``at``."""
    with session_scope(url) as session:
        _write(
            session,
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(message_ids))
            .values(next_attempt_at=at),
        )


def count_pending(url: str) -> int:
    """Undelivered rows in the outbox."""
    with session_scope(url) as session:
        return session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.delivered_at.is_(None))
        )

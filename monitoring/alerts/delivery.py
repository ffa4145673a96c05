"""Delivering the outbox to Slack: in order, with retries and backoff, never losing a message.

``deliver_pending`` is called by the watch loop and the watchdog DAG; it never raises because of
Slack. One run:

1. Claims a batch of due, undelivered rows in id order in a short transaction, by leasing them
   (``next_attempt_at`` moved ``LEASE`` ahead), so a second deliverer running at the same time
   skips them. On PostgreSQL the claim reads with ``FOR UPDATE SKIP LOCKED``; on SQLite the claim
   takes the database's write lock first. Nothing is locked while talking to Slack, so a slow or
   dead Slack never holds up a rollback's transaction.
2. Keeps each alert's messages in order: a row waits while an earlier message of its alert is
   undelivered, so a follow-up never overtakes the message that opens its thread.
3. Posts each row: an alert's "firing" message opens a thread (its channel and ts are stored on
   the alert); the alert's later messages go into that thread.
4. On failure the row's ``attempts`` goes up, ``last_error`` is kept and the retry is scheduled:
   at Slack's Retry-After on a 429, else with capped exponential backoff. If Slack as a whole is
   unavailable (down, 5xx, 429, bad token) the run stops and every waiting row is moved to that
   same retry time, so they all go out, in order, when Slack is back. If Slack refuses only
   this message's blocks, it is sent again as plain text at once.

A crash between Slack accepting a message and the commit re-sends that one message after the
lease: delivery is at least once; each row is sent once otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from monitoring.alerts.messages import render, render_plain
from monitoring.alerts.slack import Posted, SlackError, SlackSender, sender_from_settings
from monitoring.settings import Settings, get_settings
from monitoring.store.engine import is_sqlite, session_scope, utcnow
from monitoring.store.tables import Alert, OutboxMessage

LEASE = timedelta(minutes=2)  # far longer than one send can take (two tries of slack.TIMEOUT_SECONDS)
BACKOFF_BASE_SECONDS = 10.0
BACKOFF_CAP_SECONDS = 600.0
BROADCAST_KINDS = frozenset({"renotify", "resolved"})  # thread replies also shown in the channel


@dataclass(frozen=True)
class DeliveryReport:
    delivered: int
    failed: int
    pending: int  # undelivered rows left in the outbox after this run
    slack_enabled: bool = True

    def __str__(self) -> str:
        if not self.slack_enabled:
            return (f"Slack is off (no VIGIL_SLACK_BOT_TOKEN or VIGIL_SLACK_WEBHOOK_URL): "
                    f"nothing sent, {self.pending} messages wait in the outbox")
        return f"Slack: {self.delivered} delivered, {self.failed} failed, {self.pending} pending"


def backoff_seconds(attempts: int) -> float:
    """Wait before the next try after ``attempts`` failed ones: 10 s, 20 s, 40 s ... 10 min."""
    return min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1))


def deliver_pending(
    url: str,
    *,
    sender: SlackSender | None = None,
    settings: Settings | None = None,
    now: datetime | None = None,
    limit: int = 100,
) -> DeliveryReport:
    """Send up to ``limit`` due outbox messages of the store at ``url`` to Slack."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    now = now or utcnow()
    if sender is None:
        sender = sender_from_settings(settings or get_settings())
    if sender is None:
        return DeliveryReport(delivered=0, failed=0, pending=_count_pending(url), slack_enabled=False)

    claimed = _claim(url, now=now, limit=limit)
    delivered = failed = 0
    stalled_alerts: set[int] = set()  # an earlier message of theirs failed in this run
    for position, (message_id, alert_id) in enumerate(claimed):
        if alert_id in stalled_alerts:
            _release(url, [message_id], at=now)
            continue
        error = _send(url, sender, message_id, now=now)
        if error is None:
            delivered += 1
            continue
        failed += 1
        retry_at = _record_failure(url, message_id, error, now=now)
        if not error.rejected:
            _defer_queue(url, [m for m, _ in claimed[position + 1:]], until=retry_at)
            break
        if alert_id is not None:
            stalled_alerts.add(alert_id)
    return DeliveryReport(delivered=delivered, failed=failed, pending=_count_pending(url))


def _claim(url: str, *, now: datetime, limit: int) -> list[tuple[int, int | None]]:
    """Lease the due rows this run may send, in id order: (message id, alert id) pairs."""
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
        undelivered_of_alert: dict[int, list[int]] = {}
        alert_ids = {alert_id for _, alert_id in due if alert_id is not None}
        if alert_ids:
            for row in session.execute(
                select(OutboxMessage.id, OutboxMessage.alert_id)
                .where(OutboxMessage.delivered_at.is_(None), OutboxMessage.alert_id.in_(alert_ids))
            ):
                undelivered_of_alert.setdefault(row.alert_id, []).append(row.id)
        claimed: list[tuple[int, int | None]] = []
        claimed_ids: set[int] = set()
        for message_id, alert_id in due:
            earlier = [m for m in undelivered_of_alert.get(alert_id, []) if m < message_id]
            if all(m in claimed_ids for m in earlier):
                claimed.append((message_id, alert_id))
                claimed_ids.add(message_id)
        if claimed_ids:
            _write(session, update(OutboxMessage).where(OutboxMessage.id.in_(claimed_ids))
                   .values(next_attempt_at=now + LEASE))
        return claimed


def _take_sqlite_write_lock(session: Session) -> None:
    # A write as the first statement makes SQLite take its write lock now, so a second
    # deliverer waits here instead of reading the same due rows (see monitoring.store.engine).
    _write(session, update(OutboxMessage).where(OutboxMessage.id == -1)
           .values(attempts=OutboxMessage.attempts))


def _write(session: Session, statement):
    # Writing transactions here start with their write: on SQLite, a transaction that read first
    # and then writes after another writer committed fails at once ("database is locked")
    # instead of waiting for the lock.
    return session.execute(statement.execution_options(synchronize_session=False))


def _send(url: str, sender: SlackSender, message_id: int, *, now: datetime) -> SlackError | None:
    """Post one claimed row and mark it delivered; the error if Slack did not take it."""
    with session_scope(url) as session:
        message = session.get(OutboxMessage, message_id)
        alert = session.get(Alert, message.alert_id) if message.alert_id is not None else None
        rendered = render(message.payload, model_name=message.model_name, kind=message.kind)
        plain = render_plain(message.payload, model_name=message.model_name, kind=message.kind)
        kind = message.kind
        thread = {}
        if sender.threads and alert is not None and kind != "firing" and alert.slack_thread_ts:
            thread = {"channel": alert.slack_channel, "thread_ts": alert.slack_thread_ts,
                      "broadcast": kind in BROADCAST_KINDS}
    try:
        posted = _post(sender, rendered.text, rendered.blocks, plain, thread)
    except SlackError as error:
        return error
    with session_scope(url) as session:  # writes only: see _write
        _write(session, update(OutboxMessage).where(OutboxMessage.id == message_id)
               .values(delivered_at=now, last_error=None))
        if alert is not None and posted.ts:
            opens_thread = update(Alert).where(Alert.id == alert.id)
            if kind != "firing":  # the first delivered message opens the thread otherwise
                opens_thread = opens_thread.where(Alert.slack_thread_ts.is_(None))
            _write(session, opens_thread.values(slack_channel=posted.channel, slack_thread_ts=posted.ts))
    return None


def _post(sender: SlackSender, text: str, blocks: list, plain: str, thread: dict) -> Posted:
    try:
        return sender.post(text=text, blocks=blocks, **thread)
    except SlackError as error:
        if not error.rejected:
            raise
        return sender.post(text=plain, blocks=None, **thread)


def _record_failure(url: str, message_id: int, error: SlackError, *, now: datetime) -> datetime:
    with session_scope(url) as session:
        attempts = _write(
            session, update(OutboxMessage).where(OutboxMessage.id == message_id)
            .values(attempts=OutboxMessage.attempts + 1, last_error=str(error))
            .returning(OutboxMessage.attempts)
        ).scalar_one()
        wait = error.retry_after if error.retry_after is not None else backoff_seconds(attempts)
        retry_at = now + timedelta(seconds=wait)
        _write(session, update(OutboxMessage).where(OutboxMessage.id == message_id)
               .values(next_attempt_at=retry_at))
        return retry_at


def _defer_queue(url: str, claimed_rest: list[int], *, until: datetime) -> None:
    """Slack is unavailable: every waiting message (and the rest of our batch) retries at ``until``."""
    with session_scope(url) as session:
        _write(session, update(OutboxMessage)
               .where(OutboxMessage.delivered_at.is_(None),
                      or_(OutboxMessage.next_attempt_at < until, OutboxMessage.id.in_(claimed_rest)))
               .values(next_attempt_at=until))


def _release(url: str, message_ids: list[int], *, at: datetime) -> None:
    with session_scope(url) as session:
        _write(session, update(OutboxMessage).where(OutboxMessage.id.in_(message_ids))
               .values(next_attempt_at=at))


def _count_pending(url: str) -> int:
    with session_scope(url) as session:
        return session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.delivered_at.is_(None))
        )

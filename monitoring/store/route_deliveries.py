"""Per-route delivery state of outbox messages (``route_deliveries``): the SQL of alert routes.

``monitoring.alerts.route_delivery`` decides and sends; this module owns the rows. A claim for
one route, in one short transaction serialised per route (PostgreSQL: an advisory lock on the
route's name; SQLite: the database's write lock taken first):

1. fans out: adds a row for each recent outbox message the route accepts and has no row for
   (``ON CONFLICT DO NOTHING``, so a message gets one row per route, ever); a follow-up of an
   alert whose current incident the route holds is taken whatever its severity (a critical-only
   route still gets the alert's "resolved", which is info); a new "firing" is filtered anew;
2. leases the route's oldest undelivered rows that are due, in message order, stopping at the
   first one that is not due (failed and waiting, or leased by another deliverer), so a route's
   messages never overtake each other (a PagerDuty resolve never precedes its trigger).

Each route has its own rows, so a route that is down holds back only its own messages.

A Slack route keeps one thread per alert and route, under ``slack_threads`` in the alert's
``details`` (``slack_thread``, ``keep_slack_thread``). When Slack routes replace the default
Slack channel, ``settle`` marks an outbox row delivered once no route it fanned out to still
owes it, so re-notify (which waits for the previous message) and retention work as before.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from monitoring.store.dialect import is_sqlite
from monitoring.store.engine import session_scope
from monitoring.store.tables import Alert, OutboxMessage, RouteDelivery


@dataclass(frozen=True)
class RoutedMessage:
    """One claimed delivery of an outbox message to a route."""

    delivery_id: int
    message_id: int
    alert_id: int | None
    model_name: str
    kind: str
    payload: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class DeliveryRow:
    """What a route was sent and whether it was delivered (for the dashboard)."""

    route: str
    message_id: int
    model_name: str
    kind: str
    title: str
    severity: str
    created_at: datetime
    attempts: int
    delivered_at: datetime | None
    next_attempt_at: datetime
    last_error: str | None


def claim(
    url: str,
    route: str,
    accepts: Callable[[str, str], bool],
    *,
    now: datetime,
    since: datetime,
    limit: int,
    lease: timedelta,
) -> list[RoutedMessage]:
    """Fan out messages created since ``since`` that ``accepts(severity, model)``; lease due ones."""
    with session_scope(url) as session:
        _lock_route(session, url, route)
        _fan_out(session, url, route, accepts, now=now, since=since)
        rows = session.execute(
            select(RouteDelivery, OutboxMessage)
            .join(OutboxMessage, OutboxMessage.id == RouteDelivery.message_id)
            .where(RouteDelivery.route == route, RouteDelivery.delivered_at.is_(None))
            .order_by(RouteDelivery.message_id)
            .limit(limit)
        ).all()
        claimed = []
        for delivery, message in rows:
            if delivery.next_attempt_at > now:
                break
            claimed.append(RoutedMessage(
                delivery_id=delivery.id, message_id=message.id, alert_id=message.alert_id,
                model_name=message.model_name, kind=message.kind, payload=message.payload,
                created_at=message.created_at,
            ))
        if claimed:
            _write(session, update(RouteDelivery)
                   .where(RouteDelivery.id.in_([m.delivery_id for m in claimed]))
                   .values(next_attempt_at=now + lease))
        return claimed


def _lock_route(session: Session, url: str, route: str) -> None:
    if is_sqlite(url):  # a write first takes SQLite's write lock now (see outbox_claims)
        _write(session, update(RouteDelivery).where(RouteDelivery.id == -1)
               .values(attempts=RouteDelivery.attempts))
    else:
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                        {"key": zlib.crc32(f"vigil-route:{route}".encode())})


def _fan_out(session: Session, url: str, route: str, accepts, *, now: datetime,
             since: datetime) -> None:
    has_row = (select(RouteDelivery.id)
               .where(RouteDelivery.message_id == OutboxMessage.id, RouteDelivery.route == route)
               .exists())
    new = {row.id: row for row in session.execute(
        select(OutboxMessage.id, OutboxMessage.alert_id, OutboxMessage.model_name,
               OutboxMessage.payload)
        .where(OutboxMessage.created_at >= since, ~has_row)
        .order_by(OutboxMessage.id)
    )}
    take = {message_id for message_id, row in new.items()
            if row.alert_id is None and _accepted(accepts, row)}
    take |= _follow_alerts(session, route, accepts, new)
    values = [{"message_id": message_id, "route": route, "created_at": now, "attempts": 0,
               "next_attempt_at": now} for message_id in sorted(take)]
    if values:
        insert = (sqlite.insert if is_sqlite(url) else postgresql.insert)(RouteDelivery)
        session.execute(insert.values(values).on_conflict_do_nothing(
            index_elements=["message_id", "route"]))


def _accepted(accepts, row) -> bool:
    return accepts(str(row.payload.get("severity", "info")), row.model_name)


def _follow_alerts(session: Session, route: str, accepts, new: dict) -> set[int]:
    """The new alert messages the route takes: a "firing" one if its filters accept it; any other
    if they accept it or the route holds the alert's current incident (it took its firing, or a
    later message of it). Walks every message of those alerts in order, old ones included."""
    alert_ids = {row.alert_id for row in new.values()} - {None}
    if not alert_ids:
        return set()
    on_route = (select(RouteDelivery.id)
                .where(RouteDelivery.message_id == OutboxMessage.id, RouteDelivery.route == route)
                .exists())
    history = session.execute(
        select(OutboxMessage.id, OutboxMessage.alert_id, OutboxMessage.kind, on_route.label("on_route"))
        .where(OutboxMessage.alert_id.in_(alert_ids)).order_by(OutboxMessage.id))
    holds: dict[int, bool] = {}
    take = set()
    for message_id, alert_id, kind, had in history:
        if message_id not in new:
            taken = bool(had)
        else:
            follows = kind != "firing" and holds.get(alert_id, False)
            taken = follows or _accepted(accepts, new[message_id])
            if taken:
                take.add(message_id)
        holds[alert_id] = taken if kind == "firing" else holds.get(alert_id, False) or taken
    return take


def _write(session: Session, statement):
    return session.execute(statement.execution_options(synchronize_session=False))


def mark_delivered(url: str, delivery_id: int, *, now: datetime) -> None:
    """The route took the message."""
    with session_scope(url) as session:
        _write(session, update(RouteDelivery).where(RouteDelivery.id == delivery_id)
               .values(delivered_at=now, last_error=None))


def record_failure(
    url: str, delivery_id: int, error: str, retry_at: Callable[[int], datetime]
) -> datetime:
    """Count a failed attempt, keep its error, retry at ``retry_at(attempts)``."""
    with session_scope(url) as session:
        attempts = _write(
            session,
            update(RouteDelivery).where(RouteDelivery.id == delivery_id)
            .values(attempts=RouteDelivery.attempts + 1, last_error=error[:2000])
            .returning(RouteDelivery.attempts),
        ).scalar_one()
        when = retry_at(attempts)
        _write(session, update(RouteDelivery).where(RouteDelivery.id == delivery_id)
               .values(next_attempt_at=when))
        return when


def release(url: str, delivery_ids: list[int], *, at: datetime) -> None:
    """Give claimed rows back, due at ``at``."""
    if delivery_ids:
        with session_scope(url) as session:
            _write(session, update(RouteDelivery).where(RouteDelivery.id.in_(delivery_ids))
                   .values(next_attempt_at=at))


def slack_thread(url: str, alert_id: int, route: str) -> tuple[str, str] | None:
    """The (channel, ts) of the alert's thread on a Slack route, if it has one."""
    with session_scope(url) as session:
        details = session.scalar(select(Alert.details).where(Alert.id == alert_id)) or {}
    thread = (details.get("slack_threads") or {}).get(route)
    return (thread["channel"], thread["ts"]) if thread else None


def keep_slack_thread(url: str, alert_id: int, route: str, *, channel: str, ts: str,
                      opens: bool) -> None:
    """Remember where a route posted an alert's message: a "firing" one (``opens``) starts the
    alert's new thread; another one only when the alert has none on this route yet."""
    with session_scope(url) as session:
        # a write first (SQLite's lock; PostgreSQL's row lock), then read-modify-write the JSON
        _write(session, update(Alert).where(Alert.id == alert_id).values(updated_at=Alert.updated_at))
        alert = session.get(Alert, alert_id, populate_existing=True)
        threads = dict((alert.details or {}).get("slack_threads") or {})
        if opens or route not in threads:
            threads[route] = {"channel": channel, "ts": ts}
            alert.details = {**(alert.details or {}), "slack_threads": threads}


def newest_message_id(url: str) -> int:
    """The newest outbox row's id (0 for none): what a delivery run may settle."""
    with session_scope(url) as session:
        return session.scalar(select(func.max(OutboxMessage.id))) or 0


def settle(url: str, *, up_to: int, since: datetime, now: datetime) -> int:
    """Mark delivered the outbox rows up to id ``up_to`` (created since ``since``) that no route
    still owes; returns how many. Used when the routes, not the default Slack, deliver Slack."""
    owed = (select(RouteDelivery.id)
            .where(RouteDelivery.message_id == OutboxMessage.id, RouteDelivery.delivered_at.is_(None))
            .exists())
    with session_scope(url) as session:
        return _write(session, update(OutboxMessage).where(
            OutboxMessage.delivered_at.is_(None), OutboxMessage.id <= up_to,
            OutboxMessage.created_at >= since, ~owed,
        ).values(delivered_at=now, last_error=None)).rowcount


def count_pending(url: str, route: str) -> int:
    """The route's undelivered rows."""
    with session_scope(url) as session:
        return session.scalar(
            select(func.count()).select_from(RouteDelivery)
            .where(RouteDelivery.route == route, RouteDelivery.delivered_at.is_(None))
        )


def recent_deliveries(url: str, *, limit: int = 200) -> list[DeliveryRow]:
    """The newest route deliveries, newest first: what each route was sent and its state."""
    with session_scope(url) as session:
        rows = session.execute(
            select(RouteDelivery, OutboxMessage)
            .join(OutboxMessage, OutboxMessage.id == RouteDelivery.message_id)
            .order_by(RouteDelivery.id.desc())
            .limit(limit)
        ).all()
        return [
            DeliveryRow(
                route=d.route, message_id=m.id, model_name=m.model_name, kind=m.kind,
                title=str(m.payload.get("title", "")), severity=str(m.payload.get("severity", "")),
                created_at=m.created_at, attempts=d.attempts, delivered_at=d.delivered_at,
                next_attempt_at=d.next_attempt_at, last_error=d.last_error,
            )
            for d, m in rows
        ]

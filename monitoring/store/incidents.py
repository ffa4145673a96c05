"""Reads behind the incident view and the demo's narration: every rollback of a champion and the
facts of one (``monitoring.incidents`` assembles them).

An incident is a registry event of kind ``auto_rollback`` or ``manual_rollback``; its facts come
from the alias history (the promotion it undid, the next move), the prediction log (first answers
of both versions, what the bad version served), the feedback (wrong answers, compared with the one
label rule of ``monitoring.labels``), the rollback's alert and the outbox (its Slack thread).
Nothing here writes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from monitoring.alerts.messages import render_plain
from monitoring.incidents import ROLLBACK_KINDS, Facts, Message, Move, Served
from monitoring.labels import is_error
from monitoring.store.engine import session_scope
from monitoring.store.served import SERVED
from monitoring.store.tables import Alert, Feedback, OutboxMessage, Prediction, RegistryEvent

ROLLBACK_ALERT = "rollback"  # the kind of the alert an automatic rollback raises


def _move(event: RegistryEvent) -> Move:
    return Move(event.id, event.kind, event.actor, event.reason or "", event.from_version,
                event.to_version, event.created_at, dict(event.evidence or {}))


def rollbacks(url: str, model_name: str | None = None, *, since: datetime | None = None,
              after_id: int | None = None, limit: int = 200) -> list[tuple[str, Move]]:
    """(model, rollback) of the newest ``limit`` rollbacks, newest first; optionally of one
    model, since a time, or recorded after the event ``after_id``."""
    query = select(RegistryEvent).where(RegistryEvent.kind.in_(ROLLBACK_KINDS),
                                        RegistryEvent.alias.is_not(None))
    if model_name is not None:
        query = query.where(RegistryEvent.model_name == model_name)
    if since is not None:
        query = query.where(RegistryEvent.created_at >= since)
    if after_id is not None:
        query = query.where(RegistryEvent.id > after_id)
    query = query.order_by(RegistryEvent.created_at.desc(), RegistryEvent.id.desc()).limit(limit)
    with session_scope(url) as session:
        return [(event.model_name, _move(event)) for event in session.scalars(query)]


def facts(url: str, event_id: int) -> Facts | None:
    """Everything about the rollback ``event_id`` (None: no such rollback)."""
    with session_scope(url) as session:
        event = session.get(RegistryEvent, event_id)
        if event is None or event.kind not in ROLLBACK_KINDS or event.alias is None:
            return None
        promotion = _promotion(session, event)
        next_at = session.scalars(
            select(RegistryEvent.created_at).where(
                RegistryEvent.model_name == event.model_name, RegistryEvent.alias == event.alias,
                RegistryEvent.id > event.id).order_by(RegistryEvent.id).limit(1)).first()
        bad_since = promotion.created_at if promotion else event.created_at
        return Facts(
            model_name=event.model_name, rollback=_move(event), promotion=_move(promotion) if promotion else None,
            first_bad_answer_at=_first_answer(session, event.model_name, event.from_version, bad_since, next_at),
            restored_serving_at=_first_answer(session, event.model_name, event.to_version, event.created_at, next_at),
            served=_served(session, event.model_name, event.from_version, bad_since, next_at),
            messages=tuple(_thread(session, event)),
        )


def _promotion(session: Session, event: RegistryEvent) -> RegistryEvent | None:
    """The move that gave the alias to the version this rollback took it from."""
    return session.scalars(
        select(RegistryEvent).where(
            RegistryEvent.model_name == event.model_name, RegistryEvent.alias == event.alias,
            RegistryEvent.to_version == event.from_version, RegistryEvent.id < event.id)
        .order_by(RegistryEvent.id.desc()).limit(1)).first()


def _first_answer(session: Session, name: str, version: int | None, since: datetime,
                  until: datetime | None) -> datetime | None:
    if version is None:
        return None
    query = select(func.min(Prediction.created_at)).where(
        Prediction.model_name == name, Prediction.model_version == version, Prediction.created_at >= since, SERVED)
    if until is not None:
        query = query.where(Prediction.created_at < until)
    return session.scalar(query)


def _served(session: Session, name: str, version: int | None, since: datetime, until: datetime | None) -> Served:
    """The version's answers from ``since`` until the next alias move: requests, failed, labelled
    and wrong. Labelled answers are grouped by (prediction, label) in SQL, then judged with the
    one label rule: a few groups for a classifier, however many rows."""
    if version is None:
        return Served()
    where = [Prediction.model_name == name, Prediction.model_version == version, Prediction.created_at >= since,
             SERVED]
    if until is not None:
        where.append(Prediction.created_at < until)
    requests, failed = session.execute(
        select(func.count(), func.count().filter(Prediction.status != "ok")).where(*where)).one()
    labelled = wrong = 0
    for prediction, label, count in session.execute(
            select(Prediction.prediction, Feedback.label, func.count())
            .join(Feedback, Feedback.prediction_id == Prediction.id).where(*where)
            .group_by(Prediction.prediction, Feedback.label)):
        labelled += count
        wrong += count if is_error(prediction, label) else 0
    return Served(int(requests), int(failed or 0), labelled, wrong)


def _thread(session: Session, event: RegistryEvent) -> list[Message]:
    """The rollback's own message and, for an automatic one, its alert's thread, oldest first."""
    alert_id = session.scalars(
        select(Alert.id).where(Alert.model_name == event.model_name, Alert.kind == ROLLBACK_ALERT,
                               Alert.opened_at == event.created_at).limit(1)).first()
    own = (OutboxMessage.alert_id.is_(None) & (OutboxMessage.kind == event.kind)
           & (OutboxMessage.created_at == event.created_at))
    query = select(OutboxMessage).where(
        OutboxMessage.model_name == event.model_name,
        or_(own, (OutboxMessage.alert_id == alert_id) & (OutboxMessage.created_at >= event.created_at))
        if alert_id is not None else own,
    ).order_by(OutboxMessage.created_at, OutboxMessage.id)
    return [message(row) for row in session.scalars(query)]


def message(row: OutboxMessage) -> Message:
    """An outbox row as an incident shows it, with the text Slack shows (or would show)."""
    return Message(row.id, row.kind, str(row.payload.get("title") or ""), row.created_at, row.delivered_at,
                   row.attempts, row.last_error, render_plain(row.payload, model_name=row.model_name, kind=row.kind))


def messages_after(url: str, after_id: int, model_name: str | None = None) -> list[Message]:
    """Outbox messages written after the row ``after_id``, oldest first (what the demo prints
    when Slack is off)."""
    query = select(OutboxMessage).where(OutboxMessage.id > after_id)
    if model_name is not None:
        query = query.where(OutboxMessage.model_name == model_name)
    with session_scope(url) as session:
        return [message(row) for row in session.scalars(query.order_by(OutboxMessage.id))]


def newest_ids(url: str) -> tuple[int, int]:
    """The newest registry event id and outbox message id (0 when none): where to watch from."""
    with session_scope(url) as session:
        return (session.scalar(select(func.coalesce(func.max(RegistryEvent.id), 0))),
                session.scalar(select(func.coalesce(func.max(OutboxMessage.id), 0))))

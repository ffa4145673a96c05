"""Reads and writes of the registry history, version health and reference data in Vigil's store.

Functions take the caller's session, so they join the caller's transaction; the few that take
the store's URL instead (``record_attempt``, ``champion_since``) run in a transaction of their own,
for adapters that write or read one row and do nothing else.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitoring.store.engine import session_scope, utcnow
from monitoring.store.tables import AccessLog, ReferenceData, RegistryEvent, VersionHealth

EVENT_KINDS = ("train", "promote", "manual_rollback", "auto_rollback", "adopt", "outside_move",
               "release_start", "release_end")
OUTSIDE_ACTOR = "mlflow (outside Vigil)"  # who moved an alias that Vigil found moved
# a reference row with this uri: none yet, taken from the version's first healthy production window
PENDING_REFERENCE = "pending:first-healthy-window"
HEALTH_STATES = ("unknown", "healthy", "degraded", "bad")


def record_event(
    session: Session,
    *,
    model_name: str,
    kind: str,
    actor: str,
    reason: str = "",
    alias: str | None = None,
    from_version: int | None = None,
    to_version: int | None = None,
    evidence: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> RegistryEvent:
    if kind not in EVENT_KINDS:
        raise ValueError(f"event kind must be one of {EVENT_KINDS}, not {kind!r}")
    event = RegistryEvent(
        model_name=model_name, alias=alias, from_version=from_version, to_version=to_version,
        kind=kind, actor=actor, reason=reason, evidence=evidence or {}, created_at=now or utcnow(),
    )
    session.add(event)
    session.flush()
    return event


def alias_history(session: Session, model_name: str, alias: str) -> list[RegistryEvent]:
    """Every move of the alias, oldest first."""
    return list(session.scalars(
        select(RegistryEvent)
        .where(RegistryEvent.model_name == model_name, RegistryEvent.alias == alias)
        .order_by(RegistryEvent.created_at, RegistryEvent.id)
    ))


def last_alias_event(session: Session, model_name: str, alias: str) -> RegistryEvent | None:
    """The last move of the alias recorded in Vigil's history (None: Vigil never recorded one).

    Last by insertion: moves are recorded under the model's lock, one after the other, whereas
    their times come from the clocks of whichever processes made them.
    """
    return session.scalars(
        select(RegistryEvent)
        .where(RegistryEvent.model_name == model_name, RegistryEvent.alias == alias)
        .order_by(RegistryEvent.id.desc())
        .limit(1)
    ).first()


def events(session: Session, model_name: str | None = None, limit: int = 500) -> list[RegistryEvent]:
    """The most recent registry events, newest first."""
    query = select(RegistryEvent).order_by(RegistryEvent.created_at.desc(), RegistryEvent.id.desc())
    if model_name is not None:
        query = query.where(RegistryEvent.model_name == model_name)
    return list(session.scalars(query.limit(limit)))


def upsert_version(
    session: Session,
    *,
    model_name: str,
    version: int,
    registered_at: datetime | None = None,
    run_id: str | None = None,
    eval_metrics: dict[str, float] | None = None,
    now: datetime | None = None,
) -> VersionHealth:
    """Make sure Vigil knows the version; its health starts as ``unknown``."""
    row = session.get(VersionHealth, (model_name, version))
    if row is None:
        row = VersionHealth(model_name=model_name, version=version, state="unknown",
                            since=now or utcnow(), evidence={})
        session.add(row)
    if registered_at is not None:
        row.registered_at = registered_at
    if run_id is not None:
        row.run_id = run_id
    if eval_metrics is not None:
        row.eval_metrics = dict(eval_metrics)
    session.flush()
    return row


def set_health(
    session: Session,
    *,
    model_name: str,
    version: int,
    state: str,
    evidence: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> VersionHealth:
    if state not in HEALTH_STATES:
        raise ValueError(f"health state must be one of {HEALTH_STATES}, not {state!r}")
    row = upsert_version(session, model_name=model_name, version=version, now=now)
    if row.state != state:
        row.state = state
        row.since = now or utcnow()
    row.evidence = evidence or {}
    session.flush()
    return row


def versions_health(session: Session, model_name: str) -> list[VersionHealth]:
    return list(session.scalars(
        select(VersionHealth).where(VersionHealth.model_name == model_name).order_by(VersionHealth.version)
    ))


def health_states(url: str, model_name: str) -> dict[int, str]:
    """Each version's health state (unknown / healthy / degraded / bad), in its own read."""
    with session_scope(url) as session:
        return {row.version: row.state for row in versions_health(session, model_name)}


def record_reference(session: Session, *, model_name: str, version: int, uri: str, rows: int) -> None:
    row = session.get(ReferenceData, (model_name, version))
    if row is None:
        session.add(ReferenceData(model_name=model_name, version=version, uri=uri, rows=rows,
                                  created_at=utcnow()))
    else:
        row.uri, row.rows = uri, rows
    session.flush()


def reference_for(session: Session, model_name: str, version: int) -> ReferenceData | None:
    return session.get(ReferenceData, (model_name, version))


def reference_uri(url: str, model_name: str, version: int) -> str | None:
    """Where the version's reference data is (``PENDING_REFERENCE``: not taken yet), in its own read."""
    with session_scope(url) as session:
        row = reference_for(session, model_name, version)
        return row.uri if row is not None else None


def record_access(
    session: Session, *, actor: str, action: str, allowed: bool, channel: str,
    model_name: str | None = None, detail: str = "",
) -> AccessLog:
    row = AccessLog(actor=actor, action=action, model_name=model_name, allowed=allowed,
                    detail=detail, channel=channel, created_at=utcnow())
    session.add(row)
    session.flush()
    return row


def record_attempt(
    url: str, *, actor: str, action: str, allowed: bool, channel: str,
    model_name: str | None = None, detail: str = "",
) -> None:
    """An operator action asked for (allowed or refused), in the access log, in its own transaction."""
    with session_scope(url) as session:
        record_access(session, actor=actor, action=action, allowed=allowed, channel=channel,
                      model_name=model_name, detail=detail)


def refusal_times(url: str, *, channel: str, client: str, since: datetime) -> list[datetime]:
    """When the access log refused ``client`` (marked ``[client <id>]`` in the detail) since a time."""
    marker = client_marker(client).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    with session_scope(url) as session:
        return list(session.scalars(select(AccessLog.created_at).where(
            AccessLog.channel == channel, AccessLog.allowed.is_(False), AccessLog.created_at >= since,
            AccessLog.detail.like(f"%{marker}", escape="\\"))))


def client_marker(client: str) -> str:
    """The suffix of a refusal's detail that names the client it came from."""
    return f" [client {client}]"


def champion_since(url: str, model_name: str, alias: str, version: int) -> datetime | None:
    """When the alias last moved to ``version`` by Vigil's history (None: no such move)."""
    with session_scope(url) as session:
        moves = [e for e in alias_history(session, model_name, alias) if e.to_version == version]
    return moves[-1].created_at if moves else None

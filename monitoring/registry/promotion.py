"""Moving the champion alias: promotions and rollbacks, each one locked, audited transaction.

Every alias move (by ``vigil train``, an operator, the API, the dashboard or the watchdog) goes
through ``move_alias_in``: under the per-model lock it writes the registry event, moves the MLflow
alias and enqueues the Slack message. If the transaction then fails to commit, the alias is put
back, so MLflow and Vigil's history never disagree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from monitoring.events import AliasMoved
from monitoring.incidents import ROLLBACK_KINDS, incident_url
from monitoring.registry.mlflow_registry import Registry
from monitoring.registry.rollback_target import choose_rollback_target
from monitoring.runtime import Runtime
from monitoring.store import history, outbox
from monitoring.store.engine import (
    Session,
    lock_model,
    session_scope,
    undo_if_not_committed,
    utcnow,
)
from monitoring.store.tables import RegistryEvent
from monitoring.watchdog import trajectory

KIND_TITLES = {
    "promote": "promoted",
    "manual_rollback": "rolled back by an operator",
    "auto_rollback": "rolled back automatically",
}


class PromotionError(RuntimeError):
    """The alias move was refused; nothing was changed."""


def move_alias_in(
    session: Session,
    registry: Registry,
    *,
    model_name: str,
    to_version: int,
    actor: str,
    reason: str,
    kind: str,
    evidence: dict[str, Any] | None = None,
    severity: str = "info",
    now: datetime | None = None,
) -> RegistryEvent:
    """Move the champion alias inside the caller's transaction, which holds ``lock_model``."""
    alias = registry.settings.champion_alias
    if not reason.strip():
        raise PromotionError("a reason is required for every alias move")
    registry.get_version(model_name, to_version)  # raises RegistryError for an unknown version
    from_version = registry.alias_version(model_name, alias)
    if from_version == to_version:
        raise PromotionError(f"{model_name} version {to_version} already holds @{alias}")
    now = now or utcnow()
    recorded = history.record_event(
        session, model_name=model_name, kind=kind, actor=actor, reason=reason, alias=alias,
        from_version=from_version, to_version=to_version, evidence=evidence, now=now,
    )
    history.upsert_version(session, model_name=model_name, version=to_version, now=now)
    outbox.enqueue(
        session, model_name=model_name, kind=kind, severity=severity,
        title=f"{model_name}: {KIND_TITLES.get(kind, kind)} to version {to_version}",
        facts={"model": model_name, "from version": from_version, "to version": to_version,
               "by": actor, "reason": reason, **(evidence or {}).get("numbers", {})},
        # a rollback, the watchdog's or an operator's, links its incident; a promotion the dashboard
        link=incident_url(registry.settings.dashboard_url, recorded.id) if kind in ROLLBACK_KINDS
        else registry.settings.dashboard_url, now=now,
        event=AliasMoved(type=kind, model=model_name, occurred_at=now, actor=actor, reason=reason,
                         alias=alias, from_version=from_version, to_version=to_version).document(),
    )
    session.flush()  # a constraint problem surfaces before MLflow is touched
    registry.set_alias(model_name, alias, to_version)
    _restore_alias_if_not_committed(session, registry, model_name, alias, from_version)
    return recorded


def _restore_alias_if_not_committed(
    session: Session, registry: Registry, model_name: str, alias: str, previous: int | None
) -> None:
    def restore() -> None:
        if previous is None:
            registry.delete_alias(model_name, alias)
        else:
            registry.set_alias(model_name, alias, previous)

    undo_if_not_committed(session, restore)


def promote(
    runtime: Runtime, *, model_name: str, version: int, actor: str, reason: str,
    channel: str = "cli",
) -> RegistryEvent:
    """Make ``version`` the champion (an operator's decision)."""
    url, registry = runtime.store_url, runtime.registry
    with session_scope(url) as session:
        lock_model(session, model_name)
        health = {v.version: v.state for v in history.versions_health(session, model_name)}
        if health.get(version) == "bad":
            raise PromotionError(f"{model_name} version {version} is marked bad; it cannot be promoted")
        recorded = move_alias_in(session, registry, model_name=model_name, to_version=version,
                                 actor=actor, reason=reason, kind="promote")
        history.record_access(session, actor=actor, action="promote", allowed=True,
                                 channel=channel, model_name=model_name, detail=f"to version {version}")
        return recorded


def rollback(
    runtime: Runtime, *, model_name: str, actor: str, reason: str,
    to_version: int | None = None, channel: str = "cli",
) -> RegistryEvent:
    """Give the alias back to a former champion (``to_version``, or the most recent not marked bad)."""
    url, registry = runtime.store_url, runtime.registry
    alias = registry.settings.champion_alias
    with session_scope(url) as session:
        control = lock_model(session, model_name)
        current = registry.alias_version(model_name, alias)
        health = {v.version: v.state for v in history.versions_health(session, model_name)}
        if to_version is None:
            moves = [(e.from_version, e.to_version) for e in history.alias_history(session, model_name, alias)]
            to_version = choose_rollback_target(moves, health, current, require_healthy=False)
            if to_version is None:
                raise PromotionError(
                    f"{model_name} has no former champion to roll back to; name one with --to VERSION"
                )
        elif health.get(to_version) == "bad":
            raise PromotionError(f"{model_name} version {to_version} is marked bad; pick another version")
        recorded = move_alias_in(session, registry, model_name=model_name, to_version=to_version,
                                 actor=actor, reason=reason, kind="manual_rollback",
                                 severity="warning", evidence=_tenure_evidence(control.detector_state, current))
        history.record_access(session, actor=actor, action="rollback", allowed=True,
                                 channel=channel, model_name=model_name,
                                 detail=f"from version {current} to version {to_version}")
        return recorded


def _tenure_evidence(state: dict | None, version: int | None) -> dict | None:
    """The watchdog's quality test of the version rolled back (its trajectory for the incident
    page), when the saved detector state is that version's."""
    if not state or version is None or state.get("version") != version:
        return None
    return {"quality": trajectory.snapshot(state), "took_over_at": state.get("took_over_at")}

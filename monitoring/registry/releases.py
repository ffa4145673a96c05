"""Starting and ending a release: a challenger version on ``@challenger`` beside the champion.

Each move is one locked, audited transaction, like every alias move (``promotion``):

- ``start_release`` puts ``@challenger`` on the version, writes the ``releases`` row the API
  follows (monitoring/serving/release_follower.py), the registry event, and opens the release's
  alert: its Slack thread carries the release from start to verdict.
- ``end_release`` promotes (``@champion`` to the challenger, through ``move_alias_in``) or aborts,
  stops a release whose champion moved away, deletes ``@challenger`` and posts the verdict in the
  thread. An automatic abort marks the version bad, so it is never promoted by accident later.
- ``abort_unloadable`` is the API's abort of a release whose challenger it cannot load, with a
  critical alert that names the reason; the version is not marked bad (fix it, release it again).

If a transaction fails to commit, the aliases it moved are put back.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from monitoring.events import CanaryStarted, CanaryVerdict
from monitoring.registry.mlflow_registry import Registry
from monitoring.registry.promotion import PromotionError, move_alias_in
from monitoring.runtime import Runtime
from monitoring.store import alerts, history
from monitoring.store.engine import Session, lock_model, session_scope, undo_if_not_committed, utcnow
from monitoring.store.releases import running_release
from monitoring.store.tables import Alert, Release

CHALLENGER_ALIAS = "challenger"
MODES = ("canary", "shadow")
ENDINGS = {"promote": "promoted", "abort": "aborted", "stop": "stopped"}
API_ACTOR = "api"


def release_alert_key(release: Release) -> str:
    return f"release:{release.model_name}:{release.id}"


def start_release(
    runtime: Runtime, *, model_name: str, version: int, mode: str, share: float, actor: str,
    reason: str, bake_minutes: float, channel: str = "cli", now: datetime | None = None,
) -> Release:
    """Send ``version`` to a canary (``share`` of the requests answered by it) or a shadow
    (``share`` of the requests also scored by it, never returned)."""
    if mode not in MODES:
        raise PromotionError(f"a release is a canary or a shadow, not {mode!r}")
    if mode == "canary" and not 0 < share < 1:
        raise PromotionError(f"a canary's share must be above 0 and below 1, not {share}")
    if mode == "shadow" and not 0 < share <= 1:
        raise PromotionError(f"a shadow's share must be above 0 and at most 1, not {share}")
    if bake_minutes < 0:
        raise PromotionError("the bake time cannot be negative")
    if not reason.strip():
        raise PromotionError("a reason is required to start a release")
    registry, champion_alias = runtime.registry, runtime.settings.champion_alias
    registry.get_version(model_name, version)  # an unknown version: RegistryError, nothing changed
    now = now or utcnow()
    with session_scope(runtime.store_url) as session:
        lock_model(session, model_name)
        champion = registry.alias_version(model_name, champion_alias)
        if champion is None:
            raise PromotionError(f"{model_name} has no @{champion_alias} to compare a challenger with")
        if champion == version:
            raise PromotionError(f"{model_name} version {version} is the champion already")
        running = running_release(session, model_name)
        if running is not None:
            raise PromotionError(f"{model_name} already has a running {running.mode} of version "
                                 f"{running.challenger_version} (release {running.id}): end it first")
        health = {v.version: v.state for v in history.versions_health(session, model_name)}
        if health.get(version) == "bad":
            raise PromotionError(f"{model_name} version {version} is marked bad; it cannot be released")
        release = Release(model_name=model_name, mode=mode, challenger_version=version,
                          champion_version=champion, share=share, state="running", started_at=now,
                          started_by=actor, bake_until=now + timedelta(minutes=bake_minutes),
                          verdict_reason="", evidence={}, updated_at=now)
        session.add(release)
        session.flush()
        history.upsert_version(session, model_name=model_name, version=version, now=now)
        previous = registry.alias_version(model_name, CHALLENGER_ALIAS)
        history.record_event(session, model_name=model_name, kind="release_start", actor=actor, reason=reason,
                             alias=CHALLENGER_ALIAS, from_version=previous, to_version=version,
                             evidence={"release": release.id, "mode": mode, "share": share}, now=now)
        history.record_access(session, actor=actor, action=f"{mode}_start", allowed=True, channel=channel,
                              model_name=model_name, detail=f"version {version} at {share:.0%}")
        alert = alerts.raise_alert(
            session, key=release_alert_key(release), model_name=model_name, kind="release", severity="info",
            title=f"{model_name}: {mode} of version {version} against version {champion}",
            facts={"model": model_name, "challenger": version, "champion": champion, "mode": mode,
                   "share": share, "bake until": f"{now + timedelta(minutes=bake_minutes):%Y-%m-%d %H:%M:%S} UTC", "by": actor,
                   "reason": reason},
            link=runtime.settings.dashboard_url, now=now,
            event=CanaryStarted(type="canary_started", mode=mode, model=model_name, occurred_at=now, actor=actor,
                                reason=reason, release=release.id, version=version, champion_version=champion,
                                traffic_share=share).document())
        release.alert_id = alert.id
        session.flush()
        registry.set_alias(model_name, CHALLENGER_ALIAS, version)
        _restore_challenger_if_not_committed(session, registry, model_name, previous)
        return release


def end_release(
    session: Session, registry: Registry, release: Release, *, decision: str, actor: str, reason: str,
    numbers: dict[str, Any] | None = None, automatic: bool = False, now: datetime | None = None,
) -> Release:
    """Promote, abort or stop ``release`` inside the caller's transaction (which holds the lock)."""
    if decision not in ENDINGS:
        raise PromotionError(f"a release ends by promote, abort or stop, not {decision!r}")
    if not reason.strip():
        raise PromotionError("a reason is required to end a release")
    now = now or utcnow()
    numbers = dict(numbers or {})
    if decision == "promote":
        move_alias_in(session, registry, model_name=release.model_name, to_version=release.challenger_version,
                      actor=actor, reason=reason, kind="promote",
                      evidence={"release": release.id, "numbers": _plain(numbers)}, now=now)
    elif decision == "abort" and automatic:
        history.set_health(session, model_name=release.model_name, version=release.challenger_version,
                           state="bad", evidence={"release": release.id, "reason": reason, **_plain(numbers)},
                           now=now)
    history.record_event(session, model_name=release.model_name, kind="release_end", actor=actor, reason=reason,
                         alias=CHALLENGER_ALIAS, from_version=release.challenger_version, to_version=None,
                         evidence={"release": release.id, "decision": decision, "numbers": _plain(numbers)},
                         now=now)
    release.state, release.ended_at, release.ended_by = ENDINGS[decision], now, actor
    release.verdict_reason, release.updated_at = reason, now
    release.evidence = {**(release.evidence or {}), "final": _plain(numbers)}
    if release.alert_id is not None:  # the thread's last message names the verdict
        alert = session.get(Alert, release.alert_id)
        alert.title = (f"{release.model_name}: {release.mode} of version {release.challenger_version} "
                       f"{ENDINGS[decision]}")
    alerts.resolve_alert(session, key=release_alert_key(release),
                         facts={"verdict": ENDINGS[decision], "by": actor, "reason": reason, **_plain(numbers)},
                         text=f"Version {release.challenger_version} {ENDINGS[decision]} by {actor}: {reason}",
                         now=now,
                         event=CanaryVerdict(type="canary_verdict", mode=release.mode, model=release.model_name,
                                             occurred_at=now, actor=actor, reason=reason, release=release.id,
                                             version=release.challenger_version, verdict=decision).document())
    session.flush()
    if registry.alias_version(release.model_name, CHALLENGER_ALIAS) == release.challenger_version:
        registry.delete_alias(release.model_name, CHALLENGER_ALIAS)
        _restore_challenger_if_not_committed(session, registry, release.model_name, release.challenger_version)
    return release


def end_release_by_operator(
    runtime: Runtime, *, model_name: str, decision: str, actor: str, reason: str, channel: str = "cli",
) -> Release:
    """An operator's promote or abort of the model's running release (audited)."""
    with session_scope(runtime.store_url) as session:
        lock_model(session, model_name)
        release = running_release(session, model_name)
        if release is None:
            raise PromotionError(f"{model_name} has no running release")
        end_release(session, runtime.registry, release, decision=decision, actor=actor, reason=reason,
                    numbers=(release.evidence or {}).get("latest"))
        history.record_access(session, actor=actor, action=f"release_{decision}", allowed=True, channel=channel,
                              model_name=model_name, detail=f"release {release.id}: {reason}")
        return release


def abort_unloadable(runtime: Runtime, *, model_name: str, release_id: int, version: int, reason: str,
                     now: datetime | None = None) -> Release | None:
    """Abort release ``release_id`` whose challenger ``version`` the API cannot load, and raise a
    critical alert; None when that release is no longer running (another API process did it)."""
    now = now or utcnow()
    with session_scope(runtime.store_url) as session:
        lock_model(session, model_name)
        release = running_release(session, model_name)
        if release is None or release.id != release_id or release.challenger_version != version:
            return None
        why = f"the API cannot load version {version}: {reason}"
        end_release(session, runtime.registry, release, decision="abort", actor=API_ACTOR, reason=why, now=now)
        alerts.raise_alert(
            session, key=f"{release_alert_key(release)}:load", model_name=model_name, kind="load_failure",
            severity="critical",
            title=f"{model_name}: {release.mode} of version {version} aborted: the API cannot load it",
            facts={"model": model_name, "challenger": version, "champion": release.champion_version,
                   "release": release.id, "reason": reason},
            text=(f"The {release.mode} of version {version} was aborted: {why}. The champion, version "
                  f"{release.champion_version}, answers everything. Fix the version (or log a new one) and "
                  f"start the release again."),
            link=runtime.settings.dashboard_url, now=now)
        return release


def _restore_challenger_if_not_committed(session: Session, registry: Registry, model_name: str,
                                         previous: int | None) -> None:
    def restore() -> None:
        if previous is None:
            registry.delete_alias(model_name, CHALLENGER_ALIAS)
        else:
            registry.set_alias(model_name, CHALLENGER_ALIAS, previous)

    undo_if_not_committed(session, restore)


def _plain(numbers: dict[str, Any]) -> dict[str, Any]:
    return {str(k): v for k, v in numbers.items() if isinstance(v, (int, float, str)) or v is None}

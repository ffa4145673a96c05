"""Evaluate each model's champion and act on it: one locked, audited transaction per model.

``evaluate_and_act`` is what the Airflow watchdog DAG calls every minute and ``vigil watch`` calls
in a loop. For each model it takes the per-model lock first (``monitoring.store.engine.lock_model``), so two
watchdogs running at once take turns: the second one sees the first one's rollback and the
detector state it saved. Inside the lock it

1. reads the evidence straight from the store: the champion's labelled predictions since it took
   over (feedback joined to the prediction log), its latency and failures in new predictions, and
   the latest drift results;
2. advances the detectors kept in ``model_controls`` (the SPRT on per-prediction errors, the
   latency / error-rate streaks) and judges them with ``decisions``;
3. acts: a rollback moves the alias (``promotion.move_alias_in``, kind ``auto_rollback``) after
   checking that the target loads and predicts on recent logged rows, marks the bad version bad,
   starts the cooldown, counts the day's budget and opens the alert -- all in the transaction
   that writes the outbox rows announcing it; otherwise it raises or resolves alerts, promotes a
   version that proved itself to ``healthy``, and reports the bake (recovered / not recovered)
   into the rollback's alert thread.

Feedback is read in the order it was received. Rows received in the last ``SETTLE`` are counted
provisionally and read again next time, so a row committed a little after its timestamp (the
API writes in batches) is not skipped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from monitoring.registry.mlflow_registry import Registry, RegistryError
from monitoring.registry.promotion import move_alias_in
from monitoring.registry.rollback_target import choose_rollback_target
from monitoring.settings import Settings
from monitoring.store import alerts, history, outbox
from monitoring.store.engine import lock_model, session_scope, utcnow
from monitoring.store.tables import (
    AccessLog,
    DriftResult,
    Feedback,
    ModelControl,
    Prediction,
    RegistryEvent,
)
from monitoring.watchdog import decisions as d

log = logging.getLogger(__name__)

ACTOR = "watchdog"
SETTLE = timedelta(seconds=10)
RECHECK = timedelta(minutes=5)  # how long a data-problem verdict stands before the next check
MAX_SERVICE_ROWS = 20_000  # predictions read per latency window step
ATTRIBUTION_ROWS = 500  # most recent labelled rows both versions are scored on
CHECK_ROWS = 20  # logged rows the target must predict before it gets the alias
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Outcome:
    """What one evaluation of one model found and did."""

    model_name: str
    version: int
    status: str  # ok | inconclusive | degraded | error
    action: str = "none"  # none | rollback | alert | error
    rolled_back_to: int | None = None
    findings: tuple[d.Finding, ...] = ()
    notes: tuple[str, ...] = ()  # what was done besides the action (health, bake, alerts)

    def __str__(self) -> str:
        head = f"{self.model_name} v{self.version}: {self.status}"
        if self.action == "rollback":
            head += f", rolled back to v{self.rolled_back_to}"
        elif self.action != "none":
            head += f", {self.action}"
        lines = [head] + [f"  {f.signal}: {f.status} - {f.reason}" for f in self.findings]
        return "\n".join(lines + [f"  {note}" for note in self.notes])


def evaluate_and_act(
    url: str, registry: Registry, settings: Settings, *, model_name: str | None = None,
    now: datetime | None = None,
) -> list[Outcome]:
    """Evaluate the champion of ``model_name`` (default: every model with a champion) and act."""
    policy = d.Policy.from_settings(settings)
    names = [model_name] if model_name else watched_models(url, settings.champion_alias)
    outcomes = []
    for name in names:
        try:
            outcome = _evaluate_model(url, registry, settings, policy, name, now or utcnow())
        except Exception as error:  # one model's failure must not stop the others
            log.exception("watchdog: evaluating %s failed; nothing was changed", name)
            outcome = Outcome(name, 0, "error", "error", notes=(f"{type(error).__name__}: {error}",))
        if outcome is not None:
            outcomes.append(outcome)
    return outcomes


def watched_models(url: str, alias: str) -> list[str]:
    """Models whose champion alias Vigil has ever moved."""
    with session_scope(url) as session:
        return list(session.scalars(
            select(RegistryEvent.model_name).where(RegistryEvent.alias == alias)
            .distinct().order_by(RegistryEvent.model_name)))


def freeze(url: str, model_name: str, actor: str, reason: str, *, channel: str = "cli") -> None:
    """Stop automatic rollbacks of ``model_name`` until an operator releases it (audited)."""
    _set_frozen(url, model_name, actor, reason, channel, frozen=True)


def release(url: str, model_name: str, actor: str, reason: str, *, channel: str = "cli") -> None:
    """Allow automatic rollbacks again; the day's budget counts from now (audited)."""
    _set_frozen(url, model_name, actor, reason, channel, frozen=False)


def _set_frozen(url: str, model_name: str, actor: str, reason: str, channel: str, *, frozen: bool) -> None:
    if not reason.strip():
        raise ValueError("a reason is required to freeze or release automatic rollbacks")
    verb = "freeze" if frozen else "release"
    with session_scope(url) as session:
        control = lock_model(session, model_name)
        control.frozen = frozen
        control.frozen_reason = f"{actor}: {reason}" if frozen else None
        history.record_access(session, actor=actor, action=verb, allowed=True, channel=channel,
                                 model_name=model_name, detail=reason)
        outbox.enqueue(session, model_name=model_name, kind=verb, severity="warning" if frozen else "info",
                       title=f"{model_name}: automatic rollback {'frozen' if frozen else 'released'} by {actor}",
                       facts={"model": model_name, "by": actor, "reason": reason})


# -- one model -----------------------------------------------------------------------------------

def _evaluate_model(url: str, registry: Registry, settings: Settings, policy: d.Policy, name: str,
                    now: datetime) -> Outcome | None:
    alias = settings.champion_alias
    with session_scope(url) as session:
        control = lock_model(session, name)
        champion = registry.alias_version(name, alias)
        if champion is None:
            return None
        took_over = _took_over_at(session, name, alias, champion)
        state = _state_for(control.detector_state or {}, champion, took_over)
        health = {v.version: v for v in history.versions_health(session, name)}
        row = health.get(champion)
        baseline = d.baseline_accuracy(row.eval_metrics if row else {},
                                       row.evidence if row and row.state == "healthy" else None, policy)
        test = d.error_rate_test(baseline, policy) if baseline is not None else None

        quality = _advance_quality(session, state, name, champion, took_over, test, now)
        service = _advance_service(session, state, name, champion, took_over, now, policy)
        findings = [d.judge_quality(quality, test, policy), *service]
        drift = _drift_finding(session, name, champion, took_over, policy)
        degraded = any(f.status == d.DEGRADED for f in findings)
        status = d.DEGRADED if degraded else findings[0].status  # otherwise quality decides
        notes: list[str] = []

        _bake(session, state, name, champion, quality, test, now, policy, notes)
        if drift.status == d.DEGRADED:
            alerts.raise_alert(session, key=_key(name, champion, "drift"), model_name=name, kind="drift",
                               severity="warning", title=f"{name} v{champion}: input data drifted",
                               facts={"version": champion, **drift.numbers},
                               text="Drift alone does not roll back: a new model would not fix the data.",
                               now=now)
            notes.append("drift alert raised")
        elif drift.status == d.OK:
            alerts.resolve_alert(session, key=_key(name, champion, "drift"), facts=drift.numbers, now=now)
        findings.append(drift)

        action = d.NO_ACTION
        if degraded:
            action = _act_on_degradation(session, registry, control, state, name, champion, took_over,
                                         findings, quality, test, now, policy, health, notes)
        else:
            for suffix in ("degraded", "data"):
                if alerts.resolve_alert(session, key=_key(name, champion, suffix),
                                        facts={"version": champion, **findings[0].numbers}, now=now):
                    notes.append(f"{suffix} alert resolved")
            service_breaching = any(f.status == d.DEGRADED for f in service)
            if row is not None and d.earns_health(row.state, quality, service_breaching, policy):
                history.set_health(session, model_name=name, version=champion, state="healthy",
                                      evidence={"accuracy": quality.accuracy, "labels": quality.labels,
                                                "since": took_over.isoformat()}, now=now)
                notes.append(f"version {champion} is now healthy "
                             f"(accuracy {quality.accuracy:.3f} on {quality.labels} labels)")

        if action.kind != "rollback":
            control.detector_state = state
        control.consecutive_breaches = max(
            (int(state.get(s, {}).get("consecutive", 0)) for s in _SERVICE_SIGNALS), default=0)
        control.last_evaluated_at = now
        return Outcome(name, champion, status, action.kind, action.target, tuple(findings), tuple(notes))


def _act_on_degradation(
    session: Session, registry: Registry, control: ModelControl, state: dict[str, Any], name: str,
    champion: int, took_over: datetime, findings: list[d.Finding], quality: d.SprtState,
    test: d.ErrorRateTest | None, now: datetime, policy: d.Policy, health: dict[int, Any],
    notes: list[str],
) -> d.Action:
    alias = registry.settings.champion_alias
    moves = [(e.from_version, e.to_version) for e in history.alias_history(session, name, alias)]
    target = choose_rollback_target(moves, {v: h.state for v, h in health.items()}, champion,
                                    require_healthy=True)
    guard = d.Guard(control.frozen, control.cooldown_until, _rollbacks_last_day(session, name, now))
    unknown = d.Attribution(d.UNKNOWN_CAUSE, "not checked")
    action = d.decide(True, unknown, guard, target, now, policy)
    attribution = unknown
    if action.kind == "rollback":
        try:
            # comparing the versions' errors says something about a quality drop only; a latency
            # or error-rate breach was measured on the champion's own serving since it took over
            quality_test = test if findings[0].status == d.DEGRADED else None
            attribution = _attribution(session, registry, state, name, champion, took_over, target,
                                       quality_test, now, policy)
        except (RegistryError, ValueError, KeyError) as error:
            action = d.Action("alert", "target_broken", "critical",
                              f"version {target} cannot take over: {error}")
        else:
            action = d.decide(True, attribution, guard, target, now, policy)

    degraded = [f for f in findings if f.status == d.DEGRADED]
    facts = {"version": champion, "rollback target": target,
             **{k: v for f in degraded for k, v in f.numbers.items()},
             "cause": attribution.cause, **attribution.numbers}
    why = "; ".join(f"{f.signal}: {f.reason}" for f in degraded)
    if action.kind == "rollback":
        evidence = {"numbers": {k: v for k, v in facts.items() if k not in ("version",)},
                    "findings": [f.reason for f in degraded], "attribution": attribution.reason,
                    "took_over_at": took_over.isoformat()}
        move_alias_in(session, registry, model_name=name, to_version=target, actor=ACTOR,
                      reason=f"automatic rollback: {why}", kind="auto_rollback", evidence=evidence,
                      severity="warning", now=now)
        history.set_health(session, model_name=name, version=champion, state="bad",
                              evidence=evidence, now=now)
        control.cooldown_until = now + policy.cooldown
        if action.freeze_after:
            control.frozen = True
            control.frozen_reason = (f"{ACTOR}: {guard.rollbacks_last_day + 1} automatic rollbacks in a day "
                                     f"(budget {policy.max_auto_rollbacks_per_day})")
            notes.append("daily budget used: automatic rollbacks frozen until an operator releases them")
        key = _key(name, champion, "degraded")
        alerts.raise_alert(session, key=key, model_name=name, kind="rollback", severity="warning",
                           title=f"{name}: version {champion} degraded, rolled back to version {target}",
                           facts=facts, text=f"{why}. Cause: {attribution.reason}", now=now)
        fresh = _state_for({}, target, now)
        fresh["bake"] = {"key": key, "bad_version": champion, "restored_version": target,
                         "started_at": now.isoformat(), "bad_accuracy": quality.accuracy,
                         "bad_labels": quality.labels}
        control.detector_state = fresh
        notes.append(f"version {champion} marked bad; cooldown until {control.cooldown_until:%H:%M:%S} UTC")
        return action

    suffix = "data" if action.alert_kind == "data_problem" else "degraded"
    alerts.raise_alert(session, key=_key(name, champion, suffix), model_name=name,
                       kind=action.alert_kind, severity=action.severity,
                       title=f"{name} v{champion}: {action.reason}", facts=facts, text=why, now=now)
    if action.freeze_after and not control.frozen:
        control.frozen = True
        control.frozen_reason = f"{ACTOR}: {action.reason}"
    if action.alert_kind != "data_problem" and health.get(champion) is not None \
            and health[champion].state in ("unknown", "healthy"):
        history.set_health(session, model_name=name, version=champion, state="degraded",
                              evidence={"findings": [f.reason for f in degraded]}, now=now)
    notes.append(f"{action.alert_kind} alert ({action.severity}): {action.reason}")
    return action


def _attribution(session: Session, registry: Registry, state: dict[str, Any], name: str, champion: int,
                 took_over: datetime, target: int, test: d.ErrorRateTest | None, now: datetime,
                 policy: d.Policy) -> d.Attribution:
    """A data-problem verdict is kept for ``RECHECK`` so a breaching champion does not make the
    watchdog load the target on every evaluation; anything else is checked right before acting."""
    cached = state.get("attribution")
    if cached and cached["target"] == target and now < _as_time(cached["until"]):
        return d.Attribution(cached["cause"], cached["reason"], cached["numbers"])
    attribution = _check_target(session, registry, name, champion, took_over, target, test, policy)
    if attribution.cause == d.DATA_PROBLEM:
        state["attribution"] = {"target": target, "until": (now + RECHECK).isoformat(),
                                "cause": attribution.cause, "reason": attribution.reason,
                                "numbers": attribution.numbers}
    return attribution


def _check_target(session: Session, registry: Registry, name: str, champion: int, took_over: datetime,
                  target: int, test: d.ErrorRateTest | None, policy: d.Policy) -> d.Attribution:
    """Load the target, make it predict recent logged rows, and score it on the champion's labelled rows.

    Without a quality test (a latency or error-rate breach) the target is only checked. Raises RegistryError (cannot load) or ValueError/KeyError (cannot predict those rows).
    """
    model = registry.load_model(name, target)
    labelled = session.execute(
        select(Prediction.features, Prediction.prediction, Feedback.label)
        .join(Feedback, Feedback.prediction_id == Prediction.id)
        .where(Prediction.model_name == name, Prediction.model_version == champion,
               Prediction.created_at >= took_over)
        .order_by(Feedback.received_at.desc()).limit(ATTRIBUTION_ROWS)
    ).all()
    rows = [r.features for r in labelled] or list(session.scalars(
        select(Prediction.features).where(Prediction.model_name == name, Prediction.status == "ok")
        .order_by(Prediction.created_at.desc()).limit(CHECK_ROWS)))
    if not rows:
        raise ValueError("no logged rows to check it on")
    predicted = model.predict(pd.DataFrame.from_records(rows))
    if len(predicted) != len(rows):
        raise ValueError(f"it returned {len(predicted)} predictions for {len(rows)} rows")
    if test is None:
        return d.Attribution(d.VERSION_PROBLEM, "latency or errors of this version since it took over")
    if not labelled:
        return d.Attribution(d.UNKNOWN_CAUSE, "no labelled rows to compare the versions on")
    current = [d.is_error(r.prediction, r.label) for r in labelled]
    previous = [d.is_error(str(p), r.label) for p, r in zip(predicted, labelled, strict=True)]
    return d.attribute(current, previous, test.margin, policy)


def _bake(session: Session, state: dict[str, Any], name: str, champion: int, quality: d.SprtState,
          test: d.ErrorRateTest | None, now: datetime, policy: d.Policy, notes: list[str]) -> None:
    """After an automatic rollback: say in its alert thread whether the restored version recovered."""
    bake = state.get("bake")
    if not bake:
        return
    started = datetime.fromisoformat(bake["started_at"])
    if bake["restored_version"] != champion:
        alerts.add_followup(session, key=bake["key"], title=f"{name}: bake ended, the alias moved to v{champion}",
                            facts={"restored version": bake["restored_version"], "champion now": champion},
                            now=now)
        state["bake"] = None
        return
    verdict = d.bake_verdict(quality, started, now, policy)
    if verdict == d.PENDING:
        return
    facts = {"restored version": champion, "bad version": bake["bad_version"],
             "accuracy since rollback": _round(quality.accuracy), "labels since rollback": quality.labels,
             "baseline accuracy": _round(1 - test.p0) if test else None,
             "bad version accuracy": _round(bake.get("bad_accuracy")),
             "seconds since rollback": round((now - started).total_seconds(), 1)}
    if verdict == d.RECOVERED:
        alerts.add_followup(session, key=bake["key"], title=f"{name}: recovered on version {champion}",
                            facts=facts, now=now)
        alerts.resolve_alert(session, key=bake["key"], facts=facts,
                             text=f"version {champion} is back at its baseline", now=now)
    else:
        alerts.add_followup(session, key=bake["key"], title=f"{name}: NOT recovered on version {champion}",
                            facts=facts, severity="critical",
                            text="the restored version has not shown its baseline quality", now=now)
    notes.append(f"bake: {verdict} ({quality.labels} labels, accuracy {_round(quality.accuracy)})")
    state["bake"] = None


# -- evidence --------------------------------------------------------------------------------------

_SERVICE_SIGNALS = ("latency_p95_ms", "latency_p99_ms", "error_rate")


def _state_for(saved: dict[str, Any], champion: int, took_over: datetime) -> dict[str, Any]:
    """The saved detector state if it belongs to this champion's tenure, else a fresh one."""
    if saved.get("version") == champion and saved.get("took_over_at") == took_over.isoformat():
        return dict(saved)
    return {"version": champion, "took_over_at": took_over.isoformat(), "bake": saved.get("bake")}


def _took_over_at(session: Session, name: str, alias: str, champion: int) -> datetime:
    moved = session.scalars(
        select(RegistryEvent.created_at)
        .where(RegistryEvent.model_name == name, RegistryEvent.alias == alias,
               RegistryEvent.to_version == champion)
        .order_by(RegistryEvent.created_at.desc(), RegistryEvent.id.desc()).limit(1)
    ).first()
    return moved or _EPOCH  # the alias was set outside Vigil: judge all the version's predictions


def _advance_quality(session: Session, state: dict[str, Any], name: str, champion: int,
                     took_over: datetime, test: d.ErrorRateTest | None, now: datetime) -> d.SprtState:
    """Feed the labels received since the last settled point; save the settled point."""
    settled = d.SprtState.from_dict(state.get("quality"))
    if test is None:
        return settled
    query = (
        select(Feedback.received_at, Feedback.prediction_id, Prediction.prediction, Feedback.label)
        .join(Prediction, Prediction.id == Feedback.prediction_id)
        .where(Prediction.model_name == name, Prediction.model_version == champion,
               Prediction.created_at >= took_over)
        .order_by(Feedback.received_at, Feedback.prediction_id)
    )
    cursor = state.get("cursor")
    if cursor:
        after = _as_time(cursor[0])
        query = query.where(or_(Feedback.received_at > after,
                                and_(Feedback.received_at == after, Feedback.prediction_id > cursor[1])))
    rows = session.execute(query).all()
    settle_before = now - SETTLE
    done = [r for r in rows if r.received_at <= settle_before]
    settled = d.sprt_update(settled, (d.is_error(r.prediction, r.label) for r in done), test)
    if done:
        state["cursor"] = [done[-1].received_at.isoformat(), done[-1].prediction_id]
    state["quality"] = settled.to_dict()
    return d.sprt_update(settled, (d.is_error(r.prediction, r.label) for r in rows[len(done):]), test)


def _advance_service(session: Session, state: dict[str, Any], name: str, champion: int,
                     took_over: datetime, now: datetime, policy: d.Policy) -> list[d.Finding]:
    """One latency / error-rate window step once ``min_requests`` new settled predictions exist."""
    since = _as_time(state["service_cursor"]) if state.get("service_cursor") else took_over
    rows = session.execute(
        select(Prediction.created_at, Prediction.latency_ms, Prediction.status)
        .where(Prediction.model_name == name, Prediction.model_version == champion,
               Prediction.created_at > since, Prediction.created_at >= took_over,
               Prediction.created_at <= now - SETTLE)
        .order_by(Prediction.created_at).limit(MAX_SERVICE_ROWS)
    ).all()
    numbers = d.summarise_service([r.latency_ms for r in rows], [r.status != "ok" for r in rows])
    stepped = numbers.requests >= policy.min_requests
    if stepped:
        state["service_cursor"] = rows[-1].created_at.isoformat()
    limits = {"latency_p95_ms": policy.latency_p95_slo_ms, "latency_p99_ms": policy.latency_p99_slo_ms,
              "error_rate": policy.error_rate_limit}
    values = {"latency_p95_ms": numbers.latency_p95_ms, "latency_p99_ms": numbers.latency_p99_ms,
              "error_rate": numbers.error_rate}
    findings = []
    for signal in _SERVICE_SIGNALS:
        streak = d.StreakState.from_dict(state.get(signal))
        if stepped:
            streak = d.streak_update(streak, values[signal], limits[signal], numbers.requests, policy)
            state[signal] = streak.to_dict()
        findings.append(d.judge_streak(signal, streak, values[signal] if stepped else None,
                                       limits[signal], numbers.requests if stepped else 0, policy))
    return findings


def _drift_finding(session: Session, name: str, champion: int, took_over: datetime,
                   policy: d.Policy) -> d.Finding:
    latest = session.scalars(
        select(func.max(DriftResult.window_end))
        .where(DriftResult.model_name == name, DriftResult.model_version == champion,
               DriftResult.window_end >= took_over)
    ).first()
    if latest is None:
        return d.judge_drift(0, 0, policy)
    flags = session.scalars(
        select(DriftResult.drifted).where(DriftResult.model_name == name,
                                          DriftResult.model_version == champion,
                                          DriftResult.window_end == latest)
    ).all()
    return d.judge_drift(sum(map(bool, flags)), len(flags), policy)


def _rollbacks_last_day(session: Session, name: str, now: datetime) -> int:
    """Automatic rollbacks in the last 24 h, counted from the last operator release if later."""
    released = session.scalars(
        select(func.max(AccessLog.created_at))
        .where(AccessLog.model_name == name, AccessLog.action == "release", AccessLog.allowed.is_(True))
    ).first()
    since = max(now - timedelta(days=1), released or _EPOCH)
    return session.scalars(
        select(func.count()).select_from(RegistryEvent)
        .where(RegistryEvent.model_name == name, RegistryEvent.kind == "auto_rollback",
               RegistryEvent.created_at > since)
    ).one()


def _key(name: str, version: int, what: str) -> str:
    return f"watchdog:{name}:v{version}:{what}"


def _as_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)

"""What the watchdog does about what it found, inside the model's locked transaction.

A degraded champion is rolled back (``promotion.move_alias_in``, kind ``auto_rollback``) after
checking that the target loads and predicts on recent logged rows, the bad version is marked
bad, the cooldown starts, the day's budget is counted and the alert opens -- all in the
transaction that writes the outbox rows announcing it. When a rollback is not allowed or would
not help, an alert is raised instead. A healthy champion resolves its alerts and, once it proved
itself, is marked ``healthy``; after a rollback the bake (recovered / not recovered) is reported
into the rollback's alert thread. Drift alone only alerts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from monitoring.incidents import incident_url
from monitoring.registry.mlflow_registry import Registry, RegistryError
from monitoring.registry.promotion import move_alias_in
from monitoring.registry.rollback_target import choose_rollback_target
from monitoring.serving.servable import load_servable
from monitoring.settings import WatchdogPolicy
from monitoring.store import alerts, history
from monitoring.store import watchdog_evidence as evidence
from monitoring.store.engine import Session
from monitoring.store.tables import ModelControl
from monitoring.watchdog import decisions, detectors, trajectory

ACTOR = "watchdog"
RECHECK = timedelta(minutes=5)  # how long a data-problem verdict stands before the next check
ATTRIBUTION_ROWS = 500  # most recent labelled rows both versions are scored on
CHECK_ROWS = 20  # logged rows the target must predict before it gets the alias


@dataclass
class Case:
    """One evaluation of one model's champion, inside the transaction holding the model's lock."""

    session: Session
    registry: Registry
    control: ModelControl
    state: dict[str, Any]  # the detector state, saved by the caller
    name: str
    champion: int
    took_over: datetime
    now: datetime
    policy: WatchdogPolicy
    health: dict[int, Any]  # version -> its VersionHealth row
    notes: list[str]  # what was done besides the action

    def key(self, what: str, version: int | None = None) -> str:
        """The alert key of ``what`` (degraded, data, drift) about a version (the champion)."""
        return alert_key(self.name, self.champion if version is None else version, what)


def alert_key(name: str, version: int, what: str) -> str:
    return f"watchdog:{name}:v{version}:{what}"


# -- degraded ------------------------------------------------------------------------------------

def act_on_degradation(case: Case, findings: list[decisions.Finding], quality: decisions.SprtState,
                       test: decisions.ErrorRateTest | None) -> decisions.Action:
    """Roll back to the last healthy version if allowed and useful; otherwise alert."""
    alias = case.registry.settings.champion_alias
    moves = [(e.from_version, e.to_version)
             for e in history.alias_history(case.session, case.name, alias)]
    target = choose_rollback_target(moves, {v: h.state for v, h in case.health.items()},
                                    case.champion, require_healthy=True)
    guard = decisions.Guard(case.control.frozen, case.control.cooldown_until,
                    detectors.rollbacks_last_day(case.session, case.name, case.now))
    action, attribution = _decide(case, guard, target, findings, test)
    degraded = [f for f in findings if f.status == decisions.DEGRADED]
    facts = {"version": case.champion, "rollback target": target,
             **{k: v for f in degraded for k, v in f.numbers.items()},
             "cause": attribution.cause, **attribution.numbers}
    if action.kind == "rollback":
        _roll_back(case, action, guard, target, degraded, facts, attribution, quality)
    else:
        _alert_instead(case, action, degraded, facts)
    return action


def _decide(case: Case, guard: decisions.Guard, target: int | None, findings: list[decisions.Finding],
            test: decisions.ErrorRateTest | None) -> tuple[decisions.Action, decisions.Attribution]:
    unknown = decisions.Attribution(decisions.UNKNOWN_CAUSE, "not checked")
    action = decisions.decide(True, unknown, guard, target, case.now, case.policy)
    if action.kind != "rollback":
        return action, unknown
    try:
        # comparing the versions' errors says something about a quality drop only; a latency
        # or error-rate breach was measured on the champion's own serving since it took over
        quality_test = test if findings[0].status == decisions.DEGRADED else None
        attribution = _attribution(case, target, quality_test)
    except (RegistryError, ValueError, KeyError) as error:
        return decisions.Action("alert", "target_broken", "critical",
                        f"version {target} cannot take over: {error}"), unknown
    return decisions.decide(True, attribution, guard, target, case.now, case.policy), attribution


def _roll_back(case: Case, action: decisions.Action, guard: decisions.Guard, target: int,
               degraded: list[decisions.Finding], facts: dict[str, Any], attribution: decisions.Attribution,
               quality: decisions.SprtState) -> None:
    control, policy, now = case.control, case.policy, case.now
    why = "; ".join(f"{f.signal}: {f.reason}" for f in degraded)
    evidence_doc = {"numbers": {k: v for k, v in facts.items() if k not in ("version",)},
                    "findings": [f.reason for f in degraded], "attribution": attribution.reason,
                    "took_over_at": case.took_over.isoformat(), "quality": trajectory.snapshot(case.state)}
    moved = move_alias_in(case.session, case.registry, model_name=case.name, to_version=target, actor=ACTOR,
                  reason=f"automatic rollback: {why}", kind="auto_rollback", evidence=evidence_doc,
                  severity="warning", now=now)
    history.set_health(case.session, model_name=case.name, version=case.champion, state="bad",
                       evidence=evidence_doc, now=now)
    control.cooldown_until = now + policy.cooldown
    if action.freeze_after:
        control.frozen = True
        control.frozen_reason = (f"{ACTOR}: {guard.rollbacks_last_day + 1} automatic rollbacks "
                                 f"in a day (budget {policy.max_auto_rollbacks_per_day})")
        case.notes.append("daily budget used: automatic rollbacks frozen until an operator "
                          "releases them")
    key = case.key("degraded")
    alerts.raise_alert(case.session, key=key, model_name=case.name, kind="rollback",
                       severity="warning",
                       title=f"{case.name}: version {case.champion} degraded, rolled back to "
                             f"version {target}",
                       facts=facts, text=f"{why}. Cause: {attribution.reason}",
                       link=incident_url(case.registry.settings.dashboard_url, moved.id), now=now)
    fresh = detectors.state_for({}, target, now)
    fresh["bake"] = {"key": key, "bad_version": case.champion, "restored_version": target,
                     "started_at": now.isoformat(), "bad_accuracy": quality.accuracy,
                     "bad_labels": quality.labels}
    control.detector_state = fresh
    case.notes.append(f"version {case.champion} marked bad; "
                      f"cooldown until {control.cooldown_until:%H:%M:%S} UTC")


def _alert_instead(case: Case, action: decisions.Action, degraded: list[decisions.Finding],
                   facts: dict[str, Any]) -> None:
    why = "; ".join(f"{f.signal}: {f.reason}" for f in degraded)
    suffix = "data" if action.alert_kind == "data_problem" else "degraded"
    alerts.raise_alert(case.session, key=case.key(suffix), model_name=case.name,
                       kind=action.alert_kind, severity=action.severity,
                       title=f"{case.name} v{case.champion}: {action.reason}", facts=facts,
                       text=why, now=case.now)
    if action.freeze_after and not case.control.frozen:
        case.control.frozen = True
        case.control.frozen_reason = f"{ACTOR}: {action.reason}"
    row = case.health.get(case.champion)
    if action.alert_kind != "data_problem" and row is not None \
            and row.state in ("unknown", "healthy"):
        history.set_health(case.session, model_name=case.name, version=case.champion,
                           state="degraded", evidence={"findings": [f.reason for f in degraded]},
                           now=case.now)
    case.notes.append(f"{action.alert_kind} alert ({action.severity}): {action.reason}")


def _attribution(case: Case, target: int, test: decisions.ErrorRateTest | None) -> decisions.Attribution:
    """A data-problem verdict is kept for ``RECHECK`` so a breaching champion does not make the
    watchdog load the target on every evaluation; anything else is checked right before acting."""
    cached = case.state.get("attribution")
    if cached and cached["target"] == target and case.now < detectors.as_time(cached["until"]):
        return decisions.Attribution(cached["cause"], cached["reason"], cached["numbers"])
    attribution = _check_target(case, target, test)
    if attribution.cause == decisions.DATA_PROBLEM:
        case.state["attribution"] = {"target": target, "until": (case.now + RECHECK).isoformat(),
                                     "cause": attribution.cause, "reason": attribution.reason,
                                     "numbers": attribution.numbers}
    return attribution


def _check_target(case: Case, target: int, test: decisions.ErrorRateTest | None) -> decisions.Attribution:
    """Load the target, make it predict recent logged rows, and score it on the champion's
    labelled rows.

    Without a quality test (a latency or error-rate breach) the target is only checked. Raises
    RegistryError (cannot load) or ValueError/KeyError (cannot predict those rows).
    """
    model = load_servable(case.registry, case.name, target)
    labelled = evidence.newest_labelled_inputs(case.session, case.name, case.champion,
                                               case.took_over, ATTRIBUTION_ROWS)
    rows = [r.features for r in labelled] \
        or evidence.newest_inputs(case.session, case.name, CHECK_ROWS)
    if not rows:
        raise ValueError("no logged rows to check it on")
    predicted = model.predict(pd.DataFrame.from_records(rows))
    if len(predicted) != len(rows):
        raise ValueError(f"it returned {len(predicted)} predictions for {len(rows)} rows")
    if test is None:
        return decisions.Attribution(decisions.VERSION_PROBLEM,
                             "latency or errors of this version since it took over")
    if not labelled:
        return decisions.Attribution(decisions.UNKNOWN_CAUSE, "no labelled rows to compare the versions on")
    current = [test.is_error(r.prediction, r.label) for r in labelled]
    previous = [test.is_error(p, r.label) for p, r in zip(predicted, labelled, strict=True)]
    return decisions.attribute(current, previous, test.margin, case.policy)


# -- healthy, drift, bake ------------------------------------------------------------------------

def settle_healthy(case: Case, findings: list[decisions.Finding], quality: decisions.SprtState,
                   test: decisions.ErrorRateTest | None, service_breaching: bool) -> None:
    """Resolve the champion's degradation alerts; mark it healthy once it earned it."""
    facts = {"version": case.champion, **findings[0].numbers}
    for suffix in ("degraded", "data"):
        if alerts.resolve_alert(case.session, key=case.key(suffix), facts=facts, now=case.now):
            case.notes.append(f"{suffix} alert resolved")
    row = case.health.get(case.champion)
    if row is not None and decisions.earns_health(row.state, quality, service_breaching, case.policy):
        record = {"accuracy": quality.accuracy, "labels": quality.labels, "since": case.took_over.isoformat()}
        if test is not None and test.tolerance is not None:  # a regressor's record: within what
            record["tolerance"] = test.tolerance
        history.set_health(case.session, model_name=case.name, version=case.champion,
                           state="healthy", evidence=record, now=case.now)
        case.notes.append(f"version {case.champion} is now healthy "
                          f"(accuracy {quality.accuracy:.3f} on {quality.labels} labels)")


def act_on_drift(case: Case, drift: decisions.Finding) -> None:
    """Raise the drift alert (drift alone never rolls back) or resolve it."""
    if drift.status == decisions.DEGRADED:
        alerts.raise_alert(case.session, key=case.key("drift"), model_name=case.name, kind="drift",
                           severity="warning",
                           title=f"{case.name} v{case.champion}: input data drifted",
                           facts={"version": case.champion, **drift.numbers},
                           text="Drift alone does not roll back: a new model would not fix the "
                                "data.",
                           now=case.now)
        case.notes.append("drift alert raised")
    elif drift.status == decisions.OK:
        alerts.resolve_alert(case.session, key=case.key("drift"), facts=drift.numbers, now=case.now)


def act_on_estimate(case: Case, estimate: decisions.Finding) -> None:
    """Raise the early warning of an estimated drop (it never rolls back) or resolve it."""
    if estimate.status == decisions.DEGRADED:
        alerts.raise_alert(case.session, key=case.key("estimated"), model_name=case.name, kind="estimated_drop",
                           severity="warning",
                           title=f"{case.name} v{case.champion}: estimated accuracy dropped (before labels)",
                           facts={"version": case.champion, **estimate.numbers},
                           text=f"{estimate.reason}. Estimated from the model's own calibrated probabilities "
                                "(CBPE), not measured: the labels will confirm or clear it. An estimate "
                                "alone never rolls back.", now=case.now)
        case.notes.append("estimated-drop warning raised")
    elif estimate.status == decisions.OK:
        alerts.resolve_alert(case.session, key=case.key("estimated"), facts=estimate.numbers, now=case.now)


def bake(case: Case, quality: decisions.SprtState, test: decisions.ErrorRateTest | None) -> None:
    """After an automatic rollback: say in its alert thread whether the restored version
    recovered."""
    state, name, champion, now = case.state, case.name, case.champion, case.now
    baking = state.get("bake")
    if not baking:
        return
    started = datetime.fromisoformat(baking["started_at"])
    if baking["restored_version"] != champion:
        alerts.add_followup(case.session, key=baking["key"],
                            title=f"{name}: bake ended, the alias moved to v{champion}",
                            facts={"restored version": baking["restored_version"],
                                   "champion now": champion}, now=now)
        state["bake"] = None
        return
    verdict = decisions.bake_verdict(quality, started, now, case.policy)
    if verdict == decisions.PENDING:
        return
    facts = {"restored version": champion, "bad version": baking["bad_version"],
             "accuracy since rollback": _round(quality.accuracy),
             "labels since rollback": quality.labels,
             "baseline accuracy": _round(1 - test.p0) if test else None,
             "bad version accuracy": _round(baking.get("bad_accuracy")),
             "seconds since rollback": round((now - started).total_seconds(), 1)}
    if verdict == decisions.RECOVERED:
        alerts.add_followup(case.session, key=baking["key"],
                            title=f"{name}: recovered on version {champion}", facts=facts, now=now)
        alerts.resolve_alert(case.session, key=baking["key"], facts=facts,
                             text=f"version {champion} is back at its baseline", now=now)
    else:
        alerts.add_followup(case.session, key=baking["key"],
                            title=f"{name}: NOT recovered on version {champion}", facts=facts,
                            severity="critical",
                            text="the restored version has not shown its baseline quality", now=now)
    case.notes.append(f"bake: {verdict} ({quality.labels} labels, "
                      f"accuracy {_round(quality.accuracy)})")
    state["bake"] = None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)

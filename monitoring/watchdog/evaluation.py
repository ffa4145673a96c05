"""Evaluate each model's champion and act on it: one locked, audited transaction per model.

``evaluate_and_act`` is what the Airflow watchdog DAG calls every minute and ``vigil watch`` calls
in a loop. For each model it first reads the champion alias from MLflow, outside any lock: when
MLflow does not answer, the evaluation is skipped and recorded (``monitoring.watchdog.skips``)
without ever holding the lock across the remote call. Then it takes the per-model lock
(``monitoring.store.engine.lock_model``), so two watchdogs running at once take turns: the second
one sees the first one's rollback and the detector state it saved (an alias moved by Vigil between
the read and the lock makes this run skip the model; the next one reads it again). Inside the lock it

1. reads the model's policy (``monitoring.watchdog.model_policy``: its overrides over the
   ``VIGIL_*`` defaults) and the evidence straight from the store
   (``monitoring.store.watchdog_evidence``): the champion's labelled predictions since it took
   over, its latency and failures in new predictions, and the latest drift results;
2. advances the detectors kept in ``model_controls`` (``monitoring.watchdog.detectors``) and
   judges them with ``decisions``;
3. acts (``monitoring.watchdog.actions``): a rollback, an alert, a resolved alert, a version
   promoted to ``healthy``, the bake report after a rollback.

Every run ends with the process's heartbeat (``monitoring.watchdog.heartbeat``), read by those
who must notice a watchdog that stopped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime

from monitoring.events import RollbackControl
from monitoring.registry.mlflow_registry import Registry, RegistryUnavailable
from monitoring.registry.reconciliation import reconcile
from monitoring.runtime import Runtime
from monitoring.settings import WatchdogPolicy
from monitoring.store import history, outbox
from monitoring.store import watchdog_evidence as evidence
from monitoring.store.engine import Session, lock_model, session_scope, utcnow
from monitoring.store.tables import ModelControl, RegistryEvent
from monitoring.watchdog import actions, baselines, decisions, detectors, heartbeat, model_policy, skips
from monitoring.watchdog.detectors import SETTLE
from monitoring.watchdog.release_step import judge_release

SKIPPED = "skipped"

__all__ = ["SETTLE", "SKIPPED", "Outcome", "evaluate_and_act", "freeze", "release", "watched_models"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What one evaluation of one model found and did."""

    model_name: str
    version: int
    status: str  # ok | inconclusive | degraded | error | skipped (MLflow did not answer)
    action: str = "none"  # none | rollback | alert | error
    rolled_back_to: int | None = None
    findings: tuple[decisions.Finding, ...] = ()
    notes: tuple[str, ...] = ()  # what was done besides the action (health, bake, alerts)

    def __str__(self) -> str:
        head = f"{self.model_name}{f' v{self.version}' if self.version else ''}: {self.status}"
        if self.action == "rollback":
            head += f", rolled back to v{self.rolled_back_to}"
        elif self.action != "none":
            head += f", {self.action}"
        lines = [head] + [f"  {f.signal}: {f.status} - {f.reason}" for f in self.findings]
        return "\n".join(lines + [f"  {note}" for note in self.notes])


def evaluate_and_act(
    runtime: Runtime, *, model_name: str | None = None,
    now: datetime | None = None,
) -> list[Outcome]:
    """Evaluate the champion of ``model_name`` (default: every model Vigil knows) and act.

    Each model's alias in MLflow is first reconciled with Vigil's history
    (``monitoring.registry.reconciliation``): a move made outside Vigil is recorded and announced,
    and the champion MLflow names is the one judged.
    """
    url, settings = runtime.store_url, runtime.settings
    names = [model_name] if model_name else watched_models(url, settings.champion_alias)
    outcomes: list[Outcome] = []
    outage: str | None = None  # MLflow did not answer for one model: the others are not asked
    for name in names:
        try:
            outcome = _reconcile_and_evaluate(runtime, name, now or utcnow(), outage)
        except Exception as error:  # one model's failure must not stop the others
            log.exception("watchdog: evaluating %s failed; nothing was changed", name)
            outcome = Outcome(name, 0, "error", "error", notes=(f"{type(error).__name__}: {error}",))
        if outcome is not None and outcome.status not in (SKIPPED, "error") and outcome.version:
            outcome = _with_release(runtime, outcome, now or utcnow())
        if outcome is not None:
            outcomes.append(outcome)
            if outcome.status == SKIPPED and outcome.findings:
                outage = outcome.findings[0].reason
    statuses = [o.status for o in outcomes]
    heartbeat.beat(url, evaluated=len(statuses) - statuses.count(SKIPPED) - statuses.count("error"),
                   skipped=statuses.count(SKIPPED), failed=statuses.count("error"))
    return outcomes


def _with_release(runtime: Runtime, outcome: Outcome, now: datetime) -> Outcome:
    """The champion's outcome with what the model's running release judged and did, if one runs."""
    try:
        champion = outcome.rolled_back_to if outcome.action == "rollback" else outcome.version
        lines = judge_release(runtime, outcome.model_name, champion, now)
    except Exception as error:  # a release's failure must not hide the champion's outcome
        log.exception("watchdog: judging the release of %s failed; nothing was changed", outcome.model_name)
        lines = [f"release: {type(error).__name__}: {error}"]
    return replace(outcome, notes=(*outcome.notes, *lines)) if lines else outcome


def watched_models(url: str, alias: str) -> list[str]:
    """Models Vigil knows: whose alias it recorded a move of, or a version of which it registered."""
    with session_scope(url) as session:
        return evidence.watched_model_names(session, alias)


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
        now = utcnow()
        control = lock_model(session, model_name)
        control.frozen = frozen
        control.frozen_reason = f"{actor}: {reason}" if frozen else None
        history.record_access(session, actor=actor, action=verb, allowed=True, channel=channel,
                                 model_name=model_name, detail=reason)
        outbox.enqueue(session, model_name=model_name, kind=verb, severity="warning" if frozen else "info",
                       title=f"{model_name}: automatic rollback {'frozen' if frozen else 'released'} by {actor}",
                       facts={"model": model_name, "by": actor, "reason": reason}, now=now,
                       event=RollbackControl(type=verb, model=model_name, occurred_at=now,
                                             actor=actor, reason=reason).document())


# -- one model -----------------------------------------------------------------------------------

def _reconcile_and_evaluate(runtime: Runtime, name: str, now: datetime, outage: str | None) -> Outcome | None:
    """Reconcile the alias with the history (a remote read, before the model's lock), then judge."""
    settings = runtime.settings
    try:
        if outage is not None:  # a hung MLflow would cost each model its timeout in this run
            raise RegistryUnavailable(outage)
        reconciled = reconcile(runtime, name, now=now)
    except RegistryUnavailable as error:
        notes = skips.record_skip(runtime.store_url, name, str(error), now,
                                  settings.reliability.mlflow_unreachable_grace_seconds)
        return Outcome(name, 0, SKIPPED, findings=(decisions.Finding("registry", SKIPPED, str(error)),),
                       notes=tuple(notes))
    notes = (reconciled.note,) if reconciled.note else ()
    if not reconciled.settled or reconciled.champion is None:
        return Outcome(name, reconciled.champion or 0, SKIPPED, notes=notes) if notes else None
    outcome = _evaluate_model(runtime, name, reconciled.champion, now)
    if outcome is None:
        return Outcome(name, reconciled.champion, SKIPPED, notes=(*notes, _MOVED_MEANWHILE))
    return replace(outcome, notes=(*notes, *outcome.notes))


def _with_ignored(finding: decisions.Finding, ignored: int, notes: list[str]) -> decisions.Finding:
    """The quality finding with the count of labels left out (from keys not trusted for decisions)."""
    if ignored:
        notes.append(f"quality: {ignored} label(s) from keys not trusted for decisions ignored")
    return replace(finding, numbers={**finding.numbers, "untrusted labels ignored": ignored})


_MOVED_MEANWHILE = "the alias moved during the evaluation; judged again next cycle"


def _evaluate_model(runtime: Runtime, name: str, champion: int, now: datetime) -> Outcome | None:
    """Judge ``champion`` (read from MLflow before the lock) unless the history moved on meanwhile."""
    with session_scope(runtime.store_url) as session:
        control = lock_model(session, name)
        notes = skips.clear_skips(session, control, name, now)
        tenure = history.last_alias_event(session, name, runtime.settings.champion_alias)
        if tenure is None or tenure.to_version != champion:
            return None
        policy = model_policy.effective(session, runtime.settings.watchdog, name)
        return _judge_and_act(session, control, runtime.registry, policy, name, tenure, now, notes)


def _judge_and_act(session: Session, control: ModelControl, registry: Registry, policy: WatchdogPolicy,
                   name: str, tenure: RegistryEvent, now: datetime, notes: list[str]) -> Outcome:
    """Advance the detectors of the champion, judge them and act (the model's lock is held)."""
    champion, took_over = tenure.to_version, tenure.created_at
    case = actions.Case(
        session, registry, control,
        detectors.state_for(control.detector_state or {}, champion, took_over), name, champion,
        took_over, now, policy, {v.version: v for v in history.versions_health(session, name)},
        notes)
    row = case.health.get(champion)
    fallback = baselines.fallback_record(session, case.state, name, champion, tenure, case.health, policy)
    test = decisions.quality_test(row.eval_metrics if row else {},
                                  row.evidence if row and row.state == "healthy" else None, fallback, policy)

    quality = detectors.advance_quality(session, case.state, name, champion, took_over, test, now)
    service = detectors.advance_service(session, case.state, name, champion, took_over, now, policy)
    findings = [_with_ignored(decisions.judge_quality(quality, test, policy),
                              evidence.untrusted_labels(session, name, champion, took_over), case.notes),
                *service]
    drift = detectors.drift_finding(session, name, champion, took_over, policy)
    degraded = any(f.status == decisions.DEGRADED for f in findings)
    status = decisions.DEGRADED if degraded else findings[0].status  # otherwise quality decides

    estimated = evidence.latest_estimate(session, name, champion, took_over)
    baseline = 1.0 - test.p0 if test is not None and test.tolerance is None else None  # a classifier's accuracy
    estimate = decisions.judge_estimate(estimated[0] if estimated else None, estimated[1] if estimated else 0,
                                        baseline, policy)
    actions.bake(case, quality, test)
    actions.act_on_drift(case, drift)
    actions.act_on_estimate(case, estimate)
    findings += [drift, estimate]
    action = decisions.NO_ACTION
    if degraded:
        action = actions.act_on_degradation(case, findings, quality, test)
    else:
        actions.settle_healthy(case, findings, quality, test,
                               service_breaching=any(f.status == decisions.DEGRADED for f in service))

    if action.kind != "rollback":  # a rollback saved the restored version's fresh state
        control.detector_state = case.state
    control.consecutive_breaches = detectors.consecutive_breaches(case.state)
    control.last_evaluated_at = now
    return Outcome(name, champion, status, action.kind, action.target, tuple(findings),
                   tuple(case.notes))

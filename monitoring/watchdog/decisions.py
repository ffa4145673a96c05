"""The watchdog's verdicts as pure functions over plain data: no I/O, no clock, no database.

The detectors feed these rules: ``sequential_test`` (Wald's SPRT on the champion's
per-prediction errors) for quality and ``streaks`` (N consecutive breaching windows, cleared below
a lower threshold) for latency and error rate. From their states this module judges each signal
(fewer samples than the minimum is INCONCLUSIVE, never degraded), attributes a degradation to the
version or to the data, and decides whether to roll back, only alert, or do nothing; it also says
when a version earns health and whether a rollback's bake recovered. Drift is reported but never
makes the champion degraded.

The thresholds are the settings' watchdog section (``monitoring.settings.WatchdogPolicy``) itself.
The detectors' names and the label rule (``is_error``) are re-exported, so the evaluation reads
the watchdog's rules from one namespace.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from monitoring.labels import is_error
from monitoring.settings import WatchdogPolicy
from monitoring.watchdog.sequential_test import (
    ErrorRateTest,
    SprtState,
    baseline_accuracy,
    champion_baseline,
    error_rate_test,
    outcome_record,
    quality_margin,
    quality_test,
    sprt_update,
    sprt_walk,
)
from monitoring.watchdog.streaks import (
    ServiceNumbers,
    StreakState,
    streak_update,
    summarise_service,
)

__all__ = [
    "DATA_PROBLEM", "DEGRADED", "INCONCLUSIVE", "NOT_RECOVERED", "NO_ACTION", "OK", "PENDING",
    "RECOVERED", "UNKNOWN_CAUSE", "VERSION_PROBLEM", "Action", "Attribution", "ErrorRateTest",
    "Finding", "Guard", "ServiceNumbers", "SprtState", "StreakState", "attribute",
    "bake_verdict", "baseline_accuracy", "champion_baseline", "decide", "earns_health", "error_rate_test", "is_error",
    "judge_drift", "judge_estimate", "judge_quality", "judge_streak", "outcome_record", "quality_margin",
    "quality_test", "sprt_update", "sprt_walk",
    "streak_update", "summarise_service",
]

OK, INCONCLUSIVE, DEGRADED = "ok", "inconclusive", "degraded"
VERSION_PROBLEM, DATA_PROBLEM, UNKNOWN_CAUSE = "version", "data", "unknown"
RECOVERED, NOT_RECOVERED, PENDING = "recovered", "not_recovered", "pending"


@dataclass(frozen=True)
class Finding:
    """The verdict on one signal (quality, latency_p95, latency_p99, error_rate, drift)."""

    signal: str
    status: str  # ok | inconclusive | degraded
    reason: str
    numbers: dict[str, Any] = field(default_factory=dict)


# -- quality, latency and error rate ------------------------------------------------------

def judge_quality(state: SprtState, test: ErrorRateTest | None, policy: WatchdogPolicy) -> Finding:
    numbers: dict[str, Any] = {"labels": state.labels, "accuracy": _round(state.accuracy)}
    if test is None:
        return Finding("quality", INCONCLUSIVE, "no baseline accuracy for this version", numbers)
    numbers.update({"baseline accuracy": _round(1 - test.p0), "trip accuracy": _round(1 - test.p1),
                    "sprt llr": _round(state.llr), "sprt upper": _round(test.upper)})
    if test.tolerance is not None:  # a regressor: "accuracy" is the share within the tolerance
        numbers["miss tolerance"] = _round(test.tolerance)
    if state.labels < policy.min_labels:
        return Finding("quality", INCONCLUSIVE,
                       f"{state.labels} labelled predictions, fewer than the minimum {policy.min_labels}",
                       numbers)
    if state.breaching:
        return Finding("quality", DEGRADED,
                       f"sequential test: error rate is above {test.p1:.3f} (baseline {test.p0:.3f}); "
                       f"accuracy {state.accuracy:.3f} on {state.labels} labels", numbers)
    return Finding("quality", OK, f"accuracy {state.accuracy:.3f} on {state.labels} labels", numbers)


def judge_streak(signal: str, state: StreakState, value: float | None, limit: float, samples: int,
                 policy: WatchdogPolicy) -> Finding:
    numbers = {signal: _round(value), f"{signal} limit": limit, "requests": samples,
               "consecutive breaches": state.consecutive}
    if state.breaching:  # tripped earlier: stays degraded until a window clears it
        return Finding(signal, DEGRADED, f"{signal} above {limit:.4g} in {state.consecutive} "
                       "consecutive windows, not yet back under the clear threshold", numbers)
    if value is None or samples < policy.min_requests:
        return Finding(signal, INCONCLUSIVE,
                       f"{samples} new requests, fewer than the minimum {policy.min_requests}", numbers)
    return Finding(signal, OK, f"{signal} {value:.4g} (limit {limit:.4g})", numbers)


# -- drift ---------------------------------------------------------------------------------------

def judge_drift(drifted: int, features: int, policy: WatchdogPolicy) -> Finding:
    """Drift of the latest window: alert-worthy from ``drift_share`` of the features; never a degradation."""
    if features == 0:
        return Finding("drift", INCONCLUSIVE, "no drift results for this version")
    share = drifted / features
    numbers = {"drifted features": drifted, "features": features, "drift share": _round(share)}
    if share >= policy.drift_share:
        return Finding("drift", DEGRADED, f"{drifted} of {features} features drifted", numbers)
    return Finding("drift", OK, f"{drifted} of {features} features drifted", numbers)


def judge_estimate(estimated: float | None, predictions: int, baseline: float | None,
                   policy: WatchdogPolicy) -> Finding:
    """CBPE's estimated accuracy of the newest window against the baseline: an early warning when it
    is below by the quality margin. Advisory: never a degradation that rolls back."""
    if estimated is None or baseline is None:
        return Finding("estimated quality", INCONCLUSIVE,
                       "no estimate" if estimated is None else "no baseline to compare the estimate with")
    margin = quality_margin(baseline, policy)
    numbers = {"estimated accuracy": _round(estimated), "baseline accuracy": _round(baseline),
               "margin": _round(margin), "predictions estimated on": predictions}
    if estimated < baseline - margin:
        return Finding("estimated quality", DEGRADED, f"estimated accuracy {estimated:.3f} is below the baseline "
                       f"{baseline:.3f} by more than {margin:.3f} (estimated, before labels)", numbers)
    return Finding("estimated quality", OK, f"estimated accuracy {estimated:.3f} (baseline {baseline:.3f})",
                   numbers)


# -- attribution ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Attribution:
    cause: str  # version | data | unknown
    reason: str
    numbers: dict[str, Any] = field(default_factory=dict)


def attribute(current_errors: Sequence[bool], previous_errors: Sequence[bool] | None,
              margin: float, policy: WatchdogPolicy) -> Attribution:
    """Is the champion the problem, or the data?

    Both are scored on the same recent labelled rows (the current version's own predictions and
    the previous healthy version's re-predictions). The degradation is measured from the moment
    the current version took over, so if the previous version does clearly better on the same
    rows (by half the margin or more), the version is the problem; if it does not, rolling back
    would not help: a data problem.
    """
    if previous_errors is None or len(previous_errors) < policy.min_labels:
        rows = 0 if previous_errors is None else len(previous_errors)
        return Attribution(UNKNOWN_CAUSE, f"previous version scored on {rows} rows only: cause unknown")
    if len(previous_errors) != len(current_errors):
        raise ValueError("both versions must be scored on the same rows")
    rows = len(current_errors)
    current_rate = sum(map(bool, current_errors)) / rows
    previous_rate = sum(map(bool, previous_errors)) / rows
    numbers = {"rows compared": rows, "current error rate": _round(current_rate),
               "previous error rate": _round(previous_rate)}
    if current_rate - previous_rate >= margin / 2:
        return Attribution(VERSION_PROBLEM, "began when the current version took over; the previous "
                           f"version errs {previous_rate:.3f} vs {current_rate:.3f} on the same rows", numbers)
    return Attribution(DATA_PROBLEM, f"the previous version errs {previous_rate:.3f} on the same rows "
                       f"(current {current_rate:.3f}): a rollback would not help", numbers)


# -- what to do ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Guard:
    """The guard rails' state for one model."""

    frozen: bool
    cooldown_until: datetime | None
    rollbacks_last_day: int


@dataclass(frozen=True)
class Action:
    kind: str  # none | rollback | alert
    alert_kind: str = ""  # rollback | no_target | frozen | cooldown | data_problem | target_broken
    severity: str = "info"
    reason: str = ""
    target: int | None = None
    freeze_after: bool = False  # this rollback uses up the day's budget


NO_ACTION = Action("none")


def decide(degraded: bool, attribution: Attribution, guard: Guard, target: int | None,
           now: datetime, policy: WatchdogPolicy) -> Action:
    """Roll back, only alert, or do nothing, for a champion judged ``degraded`` or not."""
    if not degraded:
        return NO_ACTION
    if attribution.cause == DATA_PROBLEM:
        return Action("alert", "data_problem", "warning",
                      f"retrain / investigate data: {attribution.reason}")
    if guard.frozen:
        return Action("alert", "frozen", "critical",
                      "degraded, but automatic rollback is frozen until an operator releases it")
    if guard.cooldown_until is not None and now < guard.cooldown_until:
        return Action("alert", "cooldown", "critical",
                      f"degraded, but in cooldown after an automatic rollback until "
                      f"{guard.cooldown_until:%H:%M:%S} UTC")
    if guard.rollbacks_last_day >= policy.max_auto_rollbacks_per_day:
        return Action("alert", "frozen", "critical",
                      f"degraded, and {guard.rollbacks_last_day} automatic rollbacks in the last day "
                      "used the budget: frozen until an operator releases it", freeze_after=True)
    if target is None:
        return Action("alert", "no_target", "critical",
                      "degraded, and no version with a healthy production record to roll back to")
    return Action("rollback", "rollback", "warning", f"automatic rollback to version {target}",
                  target=target,
                  freeze_after=guard.rollbacks_last_day + 1 >= policy.max_auto_rollbacks_per_day)


def earns_health(state: str, quality: SprtState, service_breaching: bool, policy: WatchdogPolicy) -> bool:
    """A serving version becomes ``healthy`` once a sequential test accepted its baseline on
    enough labels and nothing breaches; a version marked bad never does."""
    return (state in ("unknown", "degraded") and quality.labels >= policy.min_labels
            and quality.accepted_h0 > 0 and not quality.breaching and not service_breaching)


def bake_verdict(quality: SprtState, started_at: datetime, now: datetime, policy: WatchdogPolicy) -> str:
    """After a rollback: has the restored version shown it recovered, failed, or not yet?"""
    if quality.labels >= policy.min_labels and quality.breaching:
        return NOT_RECOVERED
    if quality.labels >= policy.min_labels and quality.accepted_h0 > 0:
        return RECOVERED
    if now >= started_at + policy.bake:
        return NOT_RECOVERED
    return PENDING


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)

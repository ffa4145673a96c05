"""The watchdog's rules as pure functions over plain data: no I/O, no clock, no database.

Quality is judged with Wald's sequential probability ratio test (SPRT) on the champion's
per-prediction errors since it took over: H0 "error rate p0" (its baseline) against H1 "error rate
p0 + margin", where the margin is the configured absolute or relative quality drop (whichever is
smaller). The test trips at the upper boundary ln((1-beta)/alpha), accepts H0 at the lower
boundary ln(beta/(1-alpha)) and then starts again; trip and clear are different boundaries
(hysteresis). Per test, the chance of tripping on a healthy model is at most alpha/(1-beta).

Latency (p95, p99) and error rate are measured on consecutive, non-overlapping windows of at
least ``min_requests`` predictions; they trip after N consecutive breaching windows and clear only
once a window is back under ``clear_fraction`` of the limit. Fewer samples than the minimum is
INCONCLUSIVE, never degraded. Drift is reported but never makes the champion degraded.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

OK, INCONCLUSIVE, DEGRADED = "ok", "inconclusive", "degraded"
VERSION_PROBLEM, DATA_PROBLEM, UNKNOWN_CAUSE = "version", "data", "unknown"
RECOVERED, NOT_RECOVERED, PENDING = "recovered", "not_recovered", "pending"

# An error rate of exactly 0 or 1 would make a log-likelihood infinite.
_MIN_ERROR_RATE = 0.001


@dataclass(frozen=True)
class Policy:
    """Every threshold the watchdog uses; ``from_settings`` maps the VIGIL_ settings onto it."""

    min_labels: int = 30
    quality_abs_drop: float = 0.10
    quality_rel_drop: float = 0.15
    sprt_alpha: float = 1e-5  # per-test false-alarm probability (bound alpha/(1-beta))
    sprt_beta: float = 0.01  # per-test probability of missing a drop of the full margin
    latency_p95_slo_ms: float = 250.0
    latency_p99_slo_ms: float = 500.0
    error_rate_limit: float = 0.05
    min_requests: int = 100  # predictions per latency/error-rate window (a p99 needs ~100)
    consecutive_breaches: int = 3
    clear_fraction: float = 0.8
    cooldown: timedelta = timedelta(minutes=30)
    max_auto_rollbacks_per_day: int = 2
    bake: timedelta = timedelta(minutes=10)
    drift_share_limit: float = 0.5

    def __post_init__(self) -> None:
        if not (0 < self.sprt_alpha < 0.5 and 0 < self.sprt_beta < 0.5):
            raise ValueError("SPRT alpha and beta must be between 0 and 0.5")
        if self.min_labels < 1 or self.min_requests < 1 or self.consecutive_breaches < 1:
            raise ValueError("min_labels, min_requests and consecutive_breaches must be at least 1")
        if not 0 < self.clear_fraction <= 1:
            raise ValueError("clear_fraction must be in (0, 1]")
        if self.quality_abs_drop <= 0 or self.quality_rel_drop <= 0:
            raise ValueError("quality drops must be positive")
        if self.max_auto_rollbacks_per_day < 1:
            raise ValueError("max_auto_rollbacks_per_day must be at least 1")

    @classmethod
    def from_settings(cls, settings: Any) -> Policy:
        return cls(
            min_labels=settings.min_labels,
            quality_abs_drop=settings.quality_abs_drop,
            quality_rel_drop=settings.quality_rel_drop,
            latency_p95_slo_ms=settings.latency_p95_slo_ms,
            latency_p99_slo_ms=settings.latency_p99_slo_ms,
            error_rate_limit=settings.error_rate_limit,
            consecutive_breaches=settings.consecutive_breaches,
            cooldown=timedelta(minutes=settings.cooldown_minutes),
            max_auto_rollbacks_per_day=settings.max_auto_rollbacks_per_day,
            bake=timedelta(minutes=settings.bake_minutes),
        )


@dataclass(frozen=True)
class Finding:
    """The verdict on one signal (quality, latency_p95, latency_p99, error_rate, drift)."""

    signal: str
    status: str  # ok | inconclusive | degraded
    reason: str
    numbers: dict[str, Any] = field(default_factory=dict)


# -- labels ------------------------------------------------------------------------------------

def is_error(prediction: str | None, label: str) -> bool:
    """Whether a served prediction disagrees with its true label ("1" and "1.0" agree)."""
    if prediction is None:
        return True
    left, right = str(prediction).strip(), str(label).strip()
    if left == right:
        return False
    try:
        return float(left) != float(right)
    except ValueError:
        return True


# -- the sequential test on quality --------------------------------------------------------------

def baseline_accuracy(eval_metrics: Mapping[str, Any], healthy_record: Mapping[str, Any] | None,
                      policy: Policy) -> float | None:
    """The accuracy a version is held to: its registration score and its healthy production record.

    The lower of the two counts, so a version is never held to more than it has shown it does.
    A production record counts from ``min_labels`` labelled predictions.
    """
    candidates = []
    if isinstance(eval_metrics.get("accuracy"), (int, float)):
        candidates.append(float(eval_metrics["accuracy"]))
    if healthy_record and isinstance(healthy_record.get("accuracy"), (int, float)) \
            and int(healthy_record.get("labels", 0)) >= policy.min_labels:
        candidates.append(float(healthy_record["accuracy"]))
    return min(candidates) if candidates else None


@dataclass(frozen=True)
class ErrorRateTest:
    """H0: the error rate is ``p0``; H1: it is ``p1`` (= p0 + margin)."""

    p0: float
    p1: float
    lower: float  # accept H0 at or below
    upper: float  # trip (accept H1) at or above

    @property
    def margin(self) -> float:
        return self.p1 - self.p0

    def increment(self, error: bool) -> float:
        if error:
            return math.log(self.p1 / self.p0)
        return math.log((1 - self.p1) / (1 - self.p0))


def sprt_bounds(alpha: float, beta: float) -> tuple[float, float]:
    """Wald's boundaries on the log-likelihood ratio: (accept H0, accept H1)."""
    return math.log(beta / (1 - alpha)), math.log((1 - beta) / alpha)


def quality_margin(baseline: float, policy: Policy) -> float:
    """The smallest accuracy drop that counts as degradation (absolute or relative, whichever trips first)."""
    return min(policy.quality_abs_drop, policy.quality_rel_drop * baseline)


def error_rate_test(baseline: float, policy: Policy) -> ErrorRateTest:
    margin = quality_margin(baseline, policy)
    p0 = min(max(1.0 - baseline, _MIN_ERROR_RATE), 1.0 - margin - _MIN_ERROR_RATE)
    lower, upper = sprt_bounds(policy.sprt_alpha, policy.sprt_beta)
    return ErrorRateTest(p0=p0, p1=p0 + margin, lower=lower, upper=upper)


@dataclass(frozen=True)
class SprtState:
    """The running test: log-likelihood ratio of the test in progress and what it has seen."""

    llr: float = 0.0
    labels: int = 0
    errors: int = 0
    accepted_h0: int = 0  # completed tests that found the version healthy
    trips: int = 0  # completed tests that found it degraded
    breaching: bool = False  # tripped, and no test has accepted H0 since

    @property
    def accuracy(self) -> float | None:
        return None if self.labels == 0 else 1.0 - self.errors / self.labels

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> SprtState:
        if not data:
            return cls()
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def sprt_update(state: SprtState, errors: Iterable[bool], test: ErrorRateTest) -> SprtState:
    """Feed per-prediction errors, oldest first; each boundary crossing ends a test and starts the next."""
    llr, labels, wrong = state.llr, state.labels, state.errors
    accepted, trips, breaching = state.accepted_h0, state.trips, state.breaching
    up, down = test.increment(True), test.increment(False)
    for error in errors:
        labels += 1
        wrong += bool(error)
        llr += up if error else down
        if llr >= test.upper:
            trips, breaching, llr = trips + 1, True, 0.0
        elif llr <= test.lower:
            accepted, breaching, llr = accepted + 1, False, 0.0
    return SprtState(llr=llr, labels=labels, errors=wrong, accepted_h0=accepted, trips=trips,
                     breaching=breaching)


def judge_quality(state: SprtState, test: ErrorRateTest | None, policy: Policy) -> Finding:
    numbers: dict[str, Any] = {"labels": state.labels, "accuracy": _round(state.accuracy)}
    if test is None:
        return Finding("quality", INCONCLUSIVE, "no baseline accuracy for this version", numbers)
    numbers.update({"baseline accuracy": _round(1 - test.p0), "trip accuracy": _round(1 - test.p1),
                    "sprt llr": _round(state.llr), "sprt upper": _round(test.upper)})
    if state.labels < policy.min_labels:
        return Finding("quality", INCONCLUSIVE,
                       f"{state.labels} labelled predictions, fewer than the minimum {policy.min_labels}",
                       numbers)
    if state.breaching:
        return Finding("quality", DEGRADED,
                       f"sequential test: error rate is above {test.p1:.3f} (baseline {test.p0:.3f}); "
                       f"accuracy {state.accuracy:.3f} on {state.labels} labels", numbers)
    return Finding("quality", OK, f"accuracy {state.accuracy:.3f} on {state.labels} labels", numbers)


# -- latency and error rate: N consecutive breaches, clear below a lower threshold ----------------

@dataclass(frozen=True)
class StreakState:
    consecutive: int = 0
    breaching: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> StreakState:
        if not data:
            return cls()
        return cls(consecutive=int(data.get("consecutive", 0)), breaching=bool(data.get("breaching", False)))


def streak_update(state: StreakState, value: float | None, limit: float, samples: int,
                  policy: Policy) -> StreakState:
    """One evaluation of a thresholded signal; too few samples leaves the state as it was."""
    if value is None or samples < policy.min_requests:
        return state
    if state.breaching:
        if value <= policy.clear_fraction * limit:
            return StreakState()
        return StreakState(state.consecutive + (value > limit), True)
    if value > limit:
        consecutive = state.consecutive + 1
        return StreakState(consecutive, consecutive >= policy.consecutive_breaches)
    return StreakState()


def judge_streak(signal: str, state: StreakState, value: float | None, limit: float, samples: int,
                 policy: Policy) -> Finding:
    numbers = {signal: _round(value), f"{signal} limit": limit, "requests": samples,
               "consecutive breaches": state.consecutive}
    if state.breaching:  # tripped earlier: stays degraded until a window clears it
        return Finding(signal, DEGRADED, f"{signal} above {limit:.4g} in {state.consecutive} "
                       "consecutive windows, not yet back under the clear threshold", numbers)
    if value is None or samples < policy.min_requests:
        return Finding(signal, INCONCLUSIVE,
                       f"{samples} new requests, fewer than the minimum {policy.min_requests}", numbers)
    return Finding(signal, OK, f"{signal} {value:.4g} (limit {limit:.4g})", numbers)


@dataclass(frozen=True)
class ServiceNumbers:
    requests: int
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    error_rate: float | None


def summarise_service(latencies_ms: Sequence[float], failed: Sequence[bool]) -> ServiceNumbers:
    """Latency percentiles and error rate of the predictions in a window."""
    if len(latencies_ms) != len(failed):
        raise ValueError("one failure flag per latency")
    if not latencies_ms:
        return ServiceNumbers(0, None, None, None)
    values = np.asarray(latencies_ms, dtype=float)
    return ServiceNumbers(
        requests=len(values),
        latency_p95_ms=float(np.percentile(values, 95)),
        latency_p99_ms=float(np.percentile(values, 99)),
        error_rate=float(np.mean(np.asarray(failed, dtype=bool))),
    )


# -- drift ---------------------------------------------------------------------------------------

def judge_drift(drifted: int, features: int, policy: Policy) -> Finding:
    """Drift of the latest window: alert-worthy from ``drift_share_limit``; never a degradation."""
    if features == 0:
        return Finding("drift", INCONCLUSIVE, "no drift results for this version")
    share = drifted / features
    numbers = {"drifted features": drifted, "features": features, "drift share": _round(share)}
    if share >= policy.drift_share_limit:
        return Finding("drift", DEGRADED, f"{drifted} of {features} features drifted", numbers)
    return Finding("drift", OK, f"{drifted} of {features} features drifted", numbers)


# -- attribution ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Attribution:
    cause: str  # version | data | unknown
    reason: str
    numbers: dict[str, Any] = field(default_factory=dict)


def attribute(current_errors: Sequence[bool], previous_errors: Sequence[bool] | None,
              margin: float, policy: Policy) -> Attribution:
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
           now: datetime, policy: Policy) -> Action:
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


def earns_health(state: str, quality: SprtState, service_breaching: bool, policy: Policy) -> bool:
    """A serving version becomes ``healthy`` once a sequential test accepted its baseline on
    enough labels and nothing breaches; a version marked bad never does."""
    return (state in ("unknown", "degraded") and quality.labels >= policy.min_labels
            and quality.accepted_h0 > 0 and not quality.breaching and not service_breaching)


def bake_verdict(quality: SprtState, started_at: datetime, now: datetime, policy: Policy) -> str:
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

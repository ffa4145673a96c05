"""The watchdog's detector for quality: Wald's sequential probability ratio test (SPRT).

The champion's per-prediction errors since it took over are tested for H0 "error rate p0" (its
baseline) against H1 "error rate p0 + margin", where the margin is the configured absolute or
relative quality drop (whichever is smaller). The test trips at the upper boundary
ln((1-beta)/alpha), accepts H0 at the lower boundary ln(beta/(1-alpha)) and then starts again;
trip and clear are different boundaries (hysteresis). Per test, the chance of tripping on a
healthy model is at most alpha/(1-beta). Pure functions over plain data.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from monitoring.settings import WatchdogPolicy

# An error rate of exactly 0 or 1 would make a log-likelihood infinite.
_MIN_ERROR_RATE = 0.001


def baseline_accuracy(eval_metrics: Mapping[str, Any], healthy_record: Mapping[str, Any] | None,
                      policy: WatchdogPolicy) -> float | None:
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


def champion_baseline(eval_metrics: Mapping[str, Any], healthy_record: Mapping[str, Any] | None,
                      fallback: Mapping[str, Any] | None, policy: WatchdogPolicy) -> float | None:
    """Every champion's baseline: its own (``baseline_accuracy``), or else ``fallback``, a
    production record (``{"accuracy", "labels"}``: the version it replaced before the move, or
    for an adopted version its own), counted from ``min_labels`` labels."""
    own = baseline_accuracy(eval_metrics, healthy_record, policy)
    if own is not None:
        return own
    if fallback and isinstance(fallback.get("accuracy"), (int, float)) \
            and int(fallback.get("labels", 0)) >= policy.min_labels:
        return float(fallback["accuracy"])
    return None


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


def quality_margin(baseline: float, policy: WatchdogPolicy) -> float:
    """The smallest accuracy drop that counts as degradation (absolute or relative, whichever trips first)."""
    return min(policy.quality_abs_drop, policy.quality_rel_drop * baseline)


def error_rate_test(baseline: float, policy: WatchdogPolicy) -> ErrorRateTest:
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

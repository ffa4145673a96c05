"""The watchdog's detector for quality: Wald's sequential probability ratio test (SPRT).

The champion's per-prediction errors since it took over are tested for H0 "error rate p0" (its
baseline) against H1 "error rate p0 + margin", where the margin is the configured absolute or
relative quality drop (whichever is smaller). The test trips at the upper boundary
ln((1-beta)/alpha), accepts H0 at the lower boundary ln(beta/(1-alpha)) and then starts again;
trip and clear are different boundaries (hysteresis). Per test, the chance of tripping on a
healthy model is at most alpha/(1-beta). Pure functions over plain data.

A regressor is tested the same way on its misses: a baseline record read from labelled
predictions whose labels are continuous numbers (``outcome_record``) carries a ``tolerance``,
the ``REGRESSION_QUANTILE`` of its absolute errors, and its "accuracy" is the share of
predictions within it (about 0.9 by construction). A prediction further from its label than the
tolerance is an error (``labels.misses``), so the test trips when clearly more than a tenth of
the predictions miss by more than that: a regressor whose errors grew.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from monitoring.labels import label_text, misses
from monitoring.settings import WatchdogPolicy

# An error rate of exactly 0 or 1 would make a log-likelihood infinite.
_MIN_ERROR_RATE = 0.001
REGRESSION_QUANTILE = 0.9  # of a regressor's baseline absolute errors: its miss tolerance
_REGRESSION_MIN_VALUES = 20  # distinct labels above which numeric labels are a regressor's (as training infers)


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


def regression_labels(labels: Sequence[Any]) -> bool:
    """Whether labels are a regressor's: all numbers, not all integral, more than 20 distinct."""
    values = set()
    for label in labels:
        text = label_text(label)
        try:
            values.add(float(text) if text is not None else math.nan)
        except ValueError:
            return False
    finite = {v for v in values if math.isfinite(v)}
    return len(finite) == len(values) > _REGRESSION_MIN_VALUES and any(not v.is_integer() for v in finite)


def outcome_record(outcomes: Sequence[tuple[Any, Any]]) -> dict[str, Any] | None:
    """The production record of (prediction, label) pairs: ``accuracy`` and ``labels``; for a
    regressor's labels also its ``tolerance`` (see the module's docstring). None when empty."""
    if not outcomes:
        return None
    tolerance = None
    if regression_labels([label for _, label in outcomes]):  # a prediction that is no number misses
        distances = sorted(d for d in (_distance(p, label) for p, label in outcomes) if math.isfinite(d))
        tolerance = distances[math.ceil(REGRESSION_QUANTILE * len(distances)) - 1] if distances else 0.0
    errors = sum(misses(prediction, label, tolerance) for prediction, label in outcomes)
    record = {"accuracy": 1.0 - errors / len(outcomes), "labels": len(outcomes)}
    return record if tolerance is None else {**record, "tolerance": tolerance}


def _distance(prediction: Any, label: Any) -> float:
    try:
        return abs(float(label_text(prediction)) - float(label_text(label)))
    except (TypeError, ValueError):
        return math.inf


def record_test(record: Mapping[str, Any] | None, policy: WatchdogPolicy) -> ErrorRateTest | None:
    """The test a regressor's record (one with a ``tolerance``) sets, counted from ``min_labels``."""
    if not record or not isinstance(record.get("tolerance"), (int, float)) \
            or int(record.get("labels", 0)) < policy.min_labels:
        return None
    return error_rate_test(float(record["accuracy"]), policy, tolerance=float(record["tolerance"]))


def quality_test(eval_metrics: Mapping[str, Any], healthy_record: Mapping[str, Any] | None,
                 fallback: Mapping[str, Any] | None, policy: WatchdogPolicy) -> ErrorRateTest | None:
    """The champion's quality test: a regressor's by its healthy record, else by its fallback
    record (``record_test``); a classifier's on ``champion_baseline``. None: no baseline yet."""
    for record in (healthy_record, fallback):
        test = record_test(record, policy)
        if test is not None:
            return test
    if (fallback or {}).get("tolerance") is not None:  # a regressor's record: never an accuracy
        fallback = None
    baseline = champion_baseline(eval_metrics, healthy_record, fallback, policy)
    return None if baseline is None else error_rate_test(baseline, policy)


@dataclass(frozen=True)
class ErrorRateTest:
    """H0: the error rate is ``p0``; H1: it is ``p1`` (= p0 + margin).

    An error is a label mismatch, or with a ``tolerance`` (a regressor) a prediction further
    than that from its label (``labels.misses``).
    """

    p0: float
    p1: float
    lower: float  # accept H0 at or below
    upper: float  # trip (accept H1) at or above
    tolerance: float | None = None

    def is_error(self, prediction: Any, label: Any) -> bool:
        return misses(prediction, label, self.tolerance)

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


def error_rate_test(baseline: float, policy: WatchdogPolicy, *, tolerance: float | None = None) -> ErrorRateTest:
    margin = quality_margin(baseline, policy)
    p0 = min(max(1.0 - baseline, _MIN_ERROR_RATE), 1.0 - margin - _MIN_ERROR_RATE)
    lower, upper = sprt_bounds(policy.sprt_alpha, policy.sprt_beta)
    return ErrorRateTest(p0=p0, p1=p0 + margin, lower=lower, upper=upper, tolerance=tolerance)


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
    return sprt_walk(state, errors, test)[0]


def sprt_walk(state: SprtState, errors: Iterable[bool], test: ErrorRateTest) -> tuple[SprtState, list[float]]:
    """``sprt_update``, and the log-likelihood ratio after each label: at a crossing, the value
    that crossed the boundary (the next test then starts from 0)."""
    llr, labels, wrong = state.llr, state.labels, state.errors
    accepted, trips, breaching = state.accepted_h0, state.trips, state.breaching
    up, down = test.increment(True), test.increment(False)
    path: list[float] = []
    for error in errors:
        labels += 1
        wrong += bool(error)
        llr += up if error else down
        path.append(llr)
        if llr >= test.upper:
            trips, breaching, llr = trips + 1, True, 0.0
        elif llr <= test.lower:
            accepted, breaching, llr = accepted + 1, False, 0.0
    return SprtState(llr=llr, labels=labels, errors=wrong, accepted_h0=accepted, trips=trips,
                     breaching=breaching), path

"""The watchdog's quality rule for a regressor, case by case: which labels are a regressor's, the
record and its miss tolerance, the test chosen from the records, and the test on real residuals."""

from __future__ import annotations

import numpy as np
import pytest

from monitoring.settings import WatchdogPolicy
from monitoring.watchdog.sequential_test import (
    SprtState,
    error_rate_test,
    outcome_record,
    quality_test,
    regression_labels,
    sprt_update,
)

POLICY = WatchdogPolicy()
CONTINUOUS = [f"{0.37 * i:.3f}" for i in range(1, 31)]  # 30 distinct numbers, not all integral


@pytest.mark.parametrize(("labels", "expected"), [
    (CONTINUOUS, True),
    ([float(v) for v in CONTINUOUS], True),
    (CONTINUOUS[:20], False),  # 20 distinct values or fewer: classes, as training infers
    ([str(i) for i in range(50)], False),  # integral: counts or classes, matched exactly
    (["0", "1"] * 40, False),
    ([*CONTINUOUS, "high"], False),  # one label that is no number: a classifier's
    ([*CONTINUOUS, float("nan")], False),
    ([], False),
])
def test_regression_labels(labels, expected):
    assert regression_labels(labels) is expected


def test_a_classifier_record_counts_mismatches():
    outcomes = [("1", "1")] * 8 + [("0", "1")] * 2
    assert outcome_record(outcomes) == {"accuracy": 0.8, "labels": 10}
    assert outcome_record([]) is None


def test_a_regressor_record_carries_the_ninetieth_percentile_of_its_errors():
    labels = [float(i) + 0.5 for i in range(100)]  # 100 distinct, continuous
    errors = [0.01 * (i + 1) for i in range(100)]  # 0.01 .. 1.00
    record = outcome_record([(label + error, f"{label}") for label, error in zip(labels, errors, strict=True)])
    assert record["tolerance"] == pytest.approx(0.90)
    assert record["accuracy"] == pytest.approx(0.90) and record["labels"] == 100


def test_a_regressor_prediction_that_is_no_number_misses_and_sets_no_tolerance():
    outcomes = [(f"{0.37 * i + 0.01 * i:.3f}", f"{0.37 * i:.3f}") for i in range(1, 41)] + [(None, "2.5")] * 10
    record = outcome_record(outcomes)  # errors 0.01 .. 0.40 of the 40 numbers: 90th percentile 0.36
    assert record["tolerance"] == pytest.approx(0.36)
    assert record["accuracy"] == pytest.approx(36 / 50)  # 4 further than that, 10 no number


REGRESSOR = {"accuracy": 0.9, "labels": 200, "tolerance": 1.25}
CLASSIFIER = {"accuracy": 0.8, "labels": 300}


@pytest.mark.parametrize(("eval_metrics", "healthy", "fallback", "expected"), [
    ({}, None, REGRESSOR, (0.9, 1.25)),  # the replaced version's (or its own start) record
    ({}, {**REGRESSOR, "tolerance": 0.5, "accuracy": 0.92}, REGRESSOR, (0.92, 0.5)),  # its own first
    ({"rmse": 2.0}, None, REGRESSOR, (0.9, 1.25)),  # registration rmse sets no accuracy
    ({}, None, {**REGRESSOR, "labels": 29}, None),  # fewer than min_labels: no baseline yet
    ({"accuracy": 0.7}, None, {**REGRESSOR, "labels": 29}, (0.7, None)),
    ({}, None, CLASSIFIER, (0.8, None)),  # a classifier: its accuracy, mismatches counted
    ({"accuracy": 0.85}, None, CLASSIFIER, (0.85, None)),
    ({}, None, None, None),
])
def test_quality_test_is_chosen_from_the_records(eval_metrics, healthy, fallback, expected):
    test = quality_test(eval_metrics, healthy, fallback, POLICY)
    if expected is None:
        assert test is None
    else:
        assert (round(1 - test.p0, 6), test.tolerance) == expected


def _residuals(rows: int, shift: float, seed: int) -> list[tuple[float, str]]:
    rng = np.random.default_rng(seed)
    truth = rng.normal(10, 4, rows)
    return [(float(t + shift + rng.normal(0, 1)), repr(float(t))) for t in truth]


def test_a_regressor_at_its_baseline_passes_and_one_off_by_two_trips_within_a_few_dozen_labels():
    baseline = outcome_record(_residuals(2000, 0.0, seed=1))
    test = quality_test({}, None, baseline, POLICY)
    assert baseline["tolerance"] == pytest.approx(1.645, abs=0.1)  # a normal error's 90th percentile

    same = sprt_update(SprtState(), (test.is_error(p, y) for p, y in _residuals(5000, 0.0, seed=2)), test)
    assert same.trips == 0 and same.accepted_h0 >= 5
    shifted, used = SprtState(), 0
    for prediction, label in _residuals(1000, 2.0, seed=3):
        shifted, used = sprt_update(shifted, [test.is_error(prediction, label)], test), used + 1
        if shifted.breaching:
            break
    assert shifted.breaching and used <= 80
    assert error_rate_test(0.9, POLICY, tolerance=1.0).is_error(2.0, "3.5") is True

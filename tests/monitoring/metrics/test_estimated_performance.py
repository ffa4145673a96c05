"""CBPE against the truth on simulations where the probabilities are calibrated by construction (the
outcome of each row drawn with the probability the model says): the estimate lands within a stated
tolerance of the realised metrics, also under covariate shift; with broken calibration it is
clearly off, recalibration on labelled rows brings it back, and unusable probabilities are
refused with the reason. Under concept drift it misses, as it must."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from monitoring.metrics import estimated_performance as cbpe

TOLERANCE = 0.02  # accuracy and ROC AUC on 5,000 rows
RATIO_TOLERANCE = 0.03  # precision, recall, F1


def _window(n: int, seed: int, a: float = 2.0, b: float = 2.0):
    """Probabilities from Beta(a, b) (moving a, b is covariate shift) and outcomes drawn from them."""
    rng = np.random.default_rng(seed)
    p = rng.beta(a, b, n)
    return p, (rng.random(n) < p).astype(int)


def _realised(p, y):
    predicted = (p > 0.5).astype(int)
    return {"estimated_accuracy": skm.accuracy_score(y, predicted),
            "estimated_precision": skm.precision_score(y, predicted),
            "estimated_recall": skm.recall_score(y, predicted),
            "estimated_f1": skm.f1_score(y, predicted),
            "estimated_roc_auc": skm.roc_auc_score(y, p)}


def _close(estimated, realised):
    for name, truth in realised.items():
        tolerance = TOLERANCE if name in ("estimated_accuracy", "estimated_roc_auc") else RATIO_TOLERANCE
        assert estimated[name] == pytest.approx(truth, abs=tolerance), name


@pytest.mark.parametrize(("a", "b"), [(2, 2), (5, 1.5), (0.7, 3)])  # healthy, then two covariate shifts
def test_calibrated_probabilities_estimate_the_realised_metrics(a, b):
    p, y = _window(5000, seed=int(a * 10 + b), a=a, b=b)
    _close(cbpe.estimate(p, p > 0.5), _realised(p, y))


def test_calibration_is_checked_and_repaired_on_labelled_rows():
    truth, y = _window(10000, seed=1)
    distorted = truth ** 3  # the same ranking, overconfident towards 0

    as_given = cbpe.calibrate(truth, y)
    assert as_given.usable and as_given.ece <= cbpe.MAX_ECE and "as given" in as_given.reason

    repaired = cbpe.calibrate(distorted, y)
    assert repaired.usable and repaired.ece > 0.1 and repaired.ece_recalibrated <= cbpe.MAX_ECE
    window_truth, window_y = _window(5000, seed=2, a=4, b=2)
    window = window_truth ** 3
    realised = _realised(window_truth, window_y) | {"estimated_roc_auc": skm.roc_auc_score(window_y, window)}
    wrong = cbpe.estimate(window, window_truth > 0.5)["estimated_accuracy"]
    assert abs(wrong - realised["estimated_accuracy"]) > 0.1  # clearly off without the repair
    fixed = cbpe.estimate(repaired.transform(window), window_truth > 0.5)
    assert fixed["estimated_accuracy"] == pytest.approx(realised["estimated_accuracy"], abs=TOLERANCE)
    assert fixed["estimated_roc_auc"] == pytest.approx(realised["estimated_roc_auc"], abs=TOLERANCE)


def test_probabilities_unfit_for_estimation_are_refused_with_the_reason():
    rng = np.random.default_rng(3)
    outcomes = (rng.random(1000) < 0.5).astype(int)
    says_nothing = cbpe.calibrate(rng.uniform(0.4, 0.95, 1000), outcomes)  # unrelated to the outcome
    assert not says_nothing.usable and "not fit for estimation" in says_nothing.reason

    many = (rng.random(5000) < 0.5).astype(int)
    base_rate = cbpe.calibrate(rng.uniform(0.49, 0.51, 5000), many)  # calibrated, and says nothing
    assert base_rate.ece <= cbpe.MAX_ECE
    assert not base_rate.usable and "barely separate the classes" in base_rate.reason

    few = cbpe.calibrate(np.full(50, 0.5), outcomes[:50])
    assert not few.usable and "fewer than the 200" in few.reason
    one_class = cbpe.calibrate(np.full(500, 0.5), np.ones(500))
    assert not one_class.usable and "one class" in one_class.reason


def test_concept_drift_is_where_the_estimate_misses():
    p, _ = _window(5000, seed=4)
    rng = np.random.default_rng(5)
    y = (rng.random(5000) < 1 - p).astype(int)  # the relation turned around; the inputs did not move
    estimated = cbpe.estimate(p, p > 0.5)["estimated_accuracy"]
    assert estimated - _realised(p, y)["estimated_accuracy"] > 0.3


@pytest.mark.parametrize(("p", "auc"), [
    ([1.0, 1.0, 0.0, 0.0], 1.0),  # certain and right by construction
    ([0.5, 0.5, 0.5, 0.5], 0.5),  # says nothing
    ([0.9, 0.1], 0.1 * 0.9 / 2 + 0.9 * (0.9 + 1.0) / 2),  # expected TPR 0, .9, 1 against FPR 0, .1, 1
])
def test_expected_roc_auc_cases(p, auc):
    assert cbpe.expected_roc_auc(np.asarray(p)) == pytest.approx(auc)


def test_degenerate_windows():
    assert cbpe.estimate([], []) == {}
    everything = cbpe.estimate([0.7, 0.8], [True, True])
    assert everything["estimated_recall"] == 1.0 and everything["estimated_accuracy"] == pytest.approx(0.75)
    assert cbpe.estimate([1.0, 1.0], [True, True])["estimated_roc_auc"] is None  # no expected negative

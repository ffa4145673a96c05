"""Data-quality checks: rates counted as pandas counts them, thresholds learned from the reference
(a healthy window passes, a window with missing, out-of-range or unseen values fails)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitoring.metrics import data_quality as dq
from monitoring.training import datasets

NUMERICAL = ["age", "income", "credit_score"]
CATEGORICAL = ["home_ownership", "region"]


def _frame(rows: int, seed: int) -> pd.DataFrame:
    return datasets.generate_features(rows, seed)[NUMERICAL + CATEGORICAL]


@pytest.fixture(scope="module")
def profiles():
    reference = _frame(5000, 0)
    reference.loc[reference.index[:250], "income"] = np.nan  # 5 % missing in training already
    return dq.profile(reference, NUMERICAL, CATEGORICAL)


def _by(checks):
    return {(c.feature, c.check): c for c in checks}


def test_a_window_like_the_reference_passes_every_check(profiles):
    checks = dq.check_window(profiles, _frame(2000, 1).assign(
        income=lambda f: f.income.mask(f.index % 20 == 0)))  # the same 5 % missing
    assert {c.check for c in checks} == set(dq.CHECKS)
    assert [c for c in checks if c.failed] == []


def test_rates_are_what_pandas_counts(profiles):
    current = _frame(1000, 2)
    current.loc[current.index[:70], "age"] = np.nan
    current.loc[current.index[70:80], "age"] = np.inf
    current.loc[current.index[:40], "region"] = None
    current.loc[current.index[40:100], "region"] = "atlantis"
    current.loc[current.index[100:130], "credit_score"] = 10_000.0
    checks = _by(dq.check_window(profiles, current))

    age = pd.to_numeric(current.age)
    assert checks["age", dq.MISSING].rate == pytest.approx((~np.isfinite(age)).mean())
    regions = current.region.dropna()
    assert checks["region", dq.MISSING].rate == pytest.approx(current.region.isna().mean())
    assert checks["region", dq.UNSEEN_CATEGORY].rate == pytest.approx((regions == "atlantis").mean())
    assert checks["region", dq.UNSEEN_CATEGORY].rows == len(regions)
    profile = next(p for p in profiles if p.feature == "credit_score")
    outside = ((current.credit_score < profile.low) | (current.credit_score > profile.high)).mean()
    assert checks["credit_score", dq.OUT_OF_RANGE].rate == pytest.approx(outside)
    assert {key for key, c in checks.items() if c.failed} == {
        ("age", dq.MISSING), ("region", dq.MISSING), ("region", dq.UNSEEN_CATEGORY),
        ("credit_score", dq.OUT_OF_RANGE)}


def test_the_threshold_is_learned_from_the_reference_rate(profiles):
    income = next(p for p in profiles if p.feature == "income")
    assert income.missing_rate == pytest.approx(0.05)
    ten_percent = _frame(2000, 3).assign(income=lambda f: f.income.mask(f.index % 10 == 0))
    assert _by(dq.check_window(profiles, ten_percent))["income", dq.MISSING].failed
    # 10 % missing on a feature that never misses in training is far worse: it fails too, and a
    # feature that misses 5 % in training is not flagged for 5 %
    assert not _by(dq.check_window(profiles, _frame(2000, 3).assign(
        income=lambda f: f.income.mask(f.index % 20 == 0))))["income", dq.MISSING].failed


@pytest.mark.parametrize(("expected", "reference_rows", "window_rows", "allowed"), [
    (0.0, 1000, 100, 0.0 + 3 * (0.001 * 0.999 / 100) ** 0.5 + 0.005),
    (0.05, 5000, 2000, 0.05 + 3 * (0.05 * 0.95 / 2000) ** 0.5 + 0.005),
    (0.05, 5000, 20, 0.05 + 3 * (0.05 * 0.95 / 20) ** 0.5 + 0.005),
    (0.9, 100, 1, 1.0),
    (0.1, 100, 0, 1.0),
])
def test_the_allowance_shrinks_with_the_window(expected, reference_rows, window_rows, allowed):
    assert dq.allowed_rate(expected, reference_rows, window_rows) == pytest.approx(allowed)


def test_a_feature_missing_from_the_window_is_all_missing_and_an_empty_window_has_no_checks(profiles):
    checks = _by(dq.check_window(profiles, _frame(500, 4).drop(columns=["region"])))
    assert checks["region", dq.MISSING].rate == 1.0 and checks["region", dq.MISSING].failed
    assert ("region", dq.UNSEEN_CATEGORY) not in checks
    assert dq.check_window(profiles, _frame(10, 4).head(0)) == []


def test_an_empty_reference_is_refused():
    with pytest.raises(ValueError, match="no rows"):
        dq.profile(_frame(10, 0).head(0), NUMERICAL, CATEGORICAL)

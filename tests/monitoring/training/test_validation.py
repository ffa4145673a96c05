"""Training-data validation: every problem is named, good data passes."""

from __future__ import annotations

import numpy as np
import pytest

from monitoring.training import datasets
from monitoring.training.validation import ValidationError, problems, validate


def test_good_demo_data_passes():
    report = validate(datasets.generate(500, 0).frame, datasets.TARGET)
    assert report.rows == 500 and report.task == "classification"
    assert report.numeric == datasets.NUMERIC and report.categorical == datasets.CATEGORICAL


def test_every_problem_is_reported_at_once():
    frame = datasets.generate(500, 0).frame.drop(columns=["region"])
    frame.loc[:200, "income"] = np.nan
    frame.loc[3, "credit_score"] = 990
    frame.loc[4, "age"] = np.inf
    frame["home_ownership"] = frame["home_ownership"].where(frame.index > 10)

    found = problems(frame, datasets.TARGET, expected_numeric=["age", "income"],
                     expected_categorical=["region"])

    text = " | ".join(found)
    assert "missing: region" in text
    assert "'income' is missing in 40% of rows" in text
    assert "'credit_score' has 1 values outside [300, 850] (e.g. 990)" in text
    assert "'age' has 1 values outside" in text
    assert "home_ownership" not in text  # 2% missing is within the limit
    with pytest.raises(ValidationError, match="training data failed validation: .*region"):
        validate(frame, datasets.TARGET, expected_categorical=["region"])


@pytest.mark.parametrize("change, message", [
    (lambda f: f.drop(columns=["default"]), "no target column 'default'"),
    (lambda f: f.head(50), "only 50 rows"),
    (lambda f: f.assign(default=f["default"].where(f.index > 0)), "'default' is missing in 0% of rows (limit 0%)"),
    (lambda f: f.assign(age="old"), "must be numeric are not: age"),
    (lambda f: f.assign(default=1), "single value"),
])
def test_a_failed_validation_says_why(change, message):
    with pytest.raises(ValidationError) as error:
        validate(change(datasets.generate(500, 0).frame), "default", expected_numeric=["age"])
    assert message in str(error.value)

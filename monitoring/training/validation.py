"""Checks on a training set before anything is trained on it: schema, missing values, ranges.

Pure functions over a DataFrame. ``validate`` collects every problem and raises one
``ValidationError`` that lists them all, so a failed pipeline run says exactly what to fix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from monitoring.training.datasets import DataError, from_frame

MAX_NULL_SHARE = 0.2  # a feature missing more often than this is a broken upstream, not noise
MIN_ROWS = 200

# Plausible ranges of the loan-default features (applied to the columns a data set has).
KNOWN_RANGES: Mapping[str, tuple[float | None, float | None]] = {
    "age": (18, 120),
    "income": (0, None),
    "loan_amount": (0, None),
    "loan_term_months": (1, 480),
    "credit_score": (300, 850),
    "debt_to_income": (0, 10),
    "years_employed": (0, 80),
    "open_accounts": (0, None),
    "late_payments": (0, None),
    "savings": (0, None),
}


class ValidationError(DataError):
    """The training data failed validation; the message lists every problem."""


@dataclass(frozen=True)
class ValidationReport:
    rows: int
    task: str
    numeric: list[str]
    categorical: list[str]


def problems(
    frame: pd.DataFrame,
    target: str,
    *,
    expected_numeric: Sequence[str] = (),
    expected_categorical: Sequence[str] = (),
    ranges: Mapping[str, tuple[float | None, float | None]] = KNOWN_RANGES,
    max_null_share: float = MAX_NULL_SHARE,
    min_rows: int = MIN_ROWS,
) -> list[str]:
    """Everything wrong with ``frame`` as training data (empty when it is fine)."""
    found: list[str] = []
    if len(frame) < min_rows:
        found.append(f"only {len(frame)} rows; at least {min_rows} are needed")
    if target not in frame.columns:
        return found + [f"no target column {target!r}"]
    missing = [c for c in [*expected_numeric, *expected_categorical] if c not in frame.columns]
    if missing:
        found.append(f"columns the current model uses are missing: {', '.join(missing)}")
    not_numbers = [c for c in expected_numeric
                   if c in frame.columns and not pd.api.types.is_numeric_dtype(frame[c])]
    if not_numbers:
        found.append(f"columns that must be numeric are not: {', '.join(not_numbers)}")
    for column in frame.columns:
        share = float(frame[column].isna().mean()) if len(frame) else 0.0
        limit = 0.0 if column == target else max_null_share
        if share > limit:
            found.append(f"{column!r} is missing in {share:.0%} of rows (limit {limit:.0%})")
    for column, (low, high) in ranges.items():
        if column not in frame.columns or not pd.api.types.is_numeric_dtype(frame[column]):
            continue
        values = frame[column].dropna().to_numpy(dtype=float)
        bad = ~np.isfinite(values)
        if low is not None:
            bad |= values < low
        if high is not None:
            bad |= values > high
        if bad.any():
            found.append(f"{column!r} has {int(bad.sum())} values outside [{low}, {high}] "
                         f"(e.g. {values[bad][0]:g})")
    infinite = [c for c in frame.columns if c not in ranges and pd.api.types.is_float_dtype(frame[c])
                and np.isinf(frame[c].to_numpy()).any()]
    if infinite:
        found.append(f"infinite values in: {', '.join(infinite)}")
    return found


def validate(frame: pd.DataFrame, target: str, **checks) -> ValidationReport:
    """A report of good training data, or ValidationError listing every problem."""
    found = problems(frame, target, **checks)
    if not found:
        try:
            dataset = from_frame(frame, target, origin="training data")
        except DataError as error:
            found.append(str(error))
    if found:
        raise ValidationError("training data failed validation: " + "; ".join(found))
    return ValidationReport(len(dataset.frame), dataset.task, dataset.numeric, dataset.categorical)

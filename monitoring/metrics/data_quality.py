"""Live data quality per window and feature, each check against a threshold learned from the reference.

Three checks, the ones a team looks at first when a model's inputs go wrong:

- ``missing``: the share of a feature's values that are missing (None, NaN; infinities count for
  numerical features, they are as unusable);
- ``out_of_range`` (numerical): the share outside the reference's central range, its 0.5 % and
  99.5 % quantiles, so about 1 % of the reference itself lies outside by construction;
- ``unseen_category`` (categorical): the share of values the reference never contained.

Each check's rate on the reference is its expected rate; a window fails a check when its rate is
above what that expected rate allows at the window's size: the expected rate plus three binomial
standard errors (with the rate floored at one reference row, so that a check expecting 0 % still
allows sampling noise), plus half a percentage point. So a small window needs a large excess to
fail, a large one a smaller excess, and a feature missing 20 % of the time in training is not
flagged for being missing 20 % of the time in production.

Pure functions over DataFrames; no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

MISSING = "missing"
OUT_OF_RANGE = "out_of_range"
UNSEEN_CATEGORY = "unseen_category"
CHECKS = (MISSING, OUT_OF_RANGE, UNSEEN_CATEGORY)

RANGE_QUANTILES = (0.005, 0.995)
STANDARD_ERRORS = 3.0
SLACK = 0.005  # half a percentage point above the statistical allowance


@dataclass(frozen=True)
class FeatureProfile:
    """What the reference says one feature looks like."""

    feature: str
    numerical: bool
    reference_rows: int
    missing_rate: float
    low: float | None = None  # numerical: the central range
    high: float | None = None
    out_of_range_rate: float = 0.0
    categories: frozenset[str] = frozenset()  # categorical: every value the reference holds


@dataclass(frozen=True)
class Check:
    """One check of one feature in one window."""

    feature: str
    check: str
    rate: float  # in the window
    reference_rate: float
    threshold: float  # the highest rate allowed at this window's size
    rows: int  # values checked in the window

    @property
    def failed(self) -> bool:
        return self.rate > self.threshold


def profile(reference: pd.DataFrame, numerical: list[str], categorical: list[str]) -> list[FeatureProfile]:
    """Learn each feature's expected rates (and range, categories) from the reference."""
    rows = len(reference)
    if rows == 0:
        raise ValueError("the reference has no rows: nothing to learn data quality from")
    profiles = []
    for name in numerical:
        values = pd.to_numeric(reference[name], errors="coerce").to_numpy(dtype=float)
        usable = values[np.isfinite(values)]
        if len(usable) == 0:
            profiles.append(FeatureProfile(name, True, rows, 1.0))
            continue
        low, high = (float(q) for q in np.quantile(usable, RANGE_QUANTILES))
        outside = float(((usable < low) | (usable > high)).sum()) / len(usable)
        profiles.append(FeatureProfile(name, True, rows, 1 - len(usable) / rows, low, high, outside))
    for name in categorical:
        present = reference[name].dropna()
        profiles.append(FeatureProfile(name, False, rows, 1 - len(present) / rows,
                                       categories=frozenset(present.astype(str))))
    return profiles


def allowed_rate(reference_rate: float, reference_rows: int, window_rows: int) -> float:
    """The highest rate a window of ``window_rows`` may show when the reference shows ``reference_rate``."""
    if window_rows <= 0:
        return 1.0
    floor = max(reference_rate, 1.0 / reference_rows)
    error = math.sqrt(floor * (1 - min(floor, 0.999999)) / window_rows)
    return min(1.0, reference_rate + STANDARD_ERRORS * error + SLACK)


def check_window(profiles: list[FeatureProfile], current: pd.DataFrame) -> list[Check]:
    """Every check of every profiled feature on the window's rows (a feature absent from them is
    all missing)."""
    rows = len(current)
    if rows == 0:
        return []
    checks = []
    for p in profiles:
        column = current[p.feature] if p.feature in current else pd.Series([None] * rows, dtype=object)
        if p.numerical:
            values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
            usable = values[np.isfinite(values)]
            checks.append(_check(p, MISSING, 1 - len(usable) / rows, p.missing_rate, rows))
            if p.low is not None and len(usable):
                outside = float(((usable < p.low) | (usable > p.high)).sum()) / len(usable)
                checks.append(_check(p, OUT_OF_RANGE, outside, p.out_of_range_rate, len(usable)))
        else:
            present = column.dropna()
            checks.append(_check(p, MISSING, 1 - len(present) / rows, p.missing_rate, rows))
            if len(present):  # each distinct value's text is checked once: a window holds a handful
                codes, distinct = pd.factorize(present)
                known = pd.Index(distinct).astype(str).isin(p.categories)
                unseen = float((~known[codes]).sum()) / len(present)
                checks.append(_check(p, UNSEEN_CATEGORY, unseen, 0.0, len(present)))
    return checks


def _check(p: FeatureProfile, check: str, rate: float, expected: float, rows: int) -> Check:
    return Check(p.feature, check, rate, expected, allowed_rate(expected, p.reference_rows, rows), rows)

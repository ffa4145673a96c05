"""Data drift per feature, with Evidently 0.7's default tests, fast enough for a million rows.

Vigil decides drift itself rather than running Evidently on every monitoring window: the methods,
thresholds and verdicts are those of Evidently 0.7.23's `DataDriftPreset` defaults, so 1M rows x
25 features take seconds rather than minutes. This module checks the input, picks each feature's
test, turns its columns into sorted finite values or category counts, and summarises the dataset;
the tests themselves are in `monitoring.metrics.drift_statistics`. `monitoring.metrics.evidently_report`
runs Evidently itself, for the human-readable report and to check that both agree. Pure
functions over DataFrames; no I/O.

Each feature is compared after dropping its missing and infinite values, as Evidently's
per-feature ValueDrift does (its legacy dataset-level count keeps infinities in a column without
missing values; Vigil does not follow that quirk).

Default method, by reference rows left and distinct values in reference and current together:

    reference rows <= 1000   numerical: KS p-value; chi-square p-value if 3-5 distinct values,
                             z-test p-value if at most 2.  categorical: chi-square, z-test if <= 2
    reference rows > 1000    numerical: normalised Wasserstein distance; Jensen-Shannon distance
                             if at most 5 distinct values.  categorical: Jensen-Shannon distance

A p-value drifts below its threshold (KS: at or below), a distance at or above it. The dataset
drifts when the share of drifted features reaches `drift_share` (the setting `VIGIL_DRIFT_SHARE`,
``settings.watchdog.drift_share``; callers pass it).
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from monitoring.metrics.drift_statistics import (
    CHISQUARE,
    DEFAULT_THRESHOLDS,
    JENSENSHANNON,
    KS,
    WASSERSTEIN,
    Z,
    is_drifted,
    jensenshannon,
    ks_pvalue,
    score_counts,
    sturges_histograms,
    wasserstein_normed,
)

NUMERICAL = "numerical"
CATEGORICAL = "categorical"

# The feature kinds each method accepts when chosen explicitly (Evidently's registry says the same,
# although its automatic choice also applies chi-square and z-test to numerical features).
METHOD_KINDS: Mapping[str, frozenset[str]] = {
    KS: frozenset({NUMERICAL}),
    CHISQUARE: frozenset({CATEGORICAL}),
    Z: frozenset({CATEGORICAL}),
    WASSERSTEIN: frozenset({NUMERICAL}),
    JENSENSHANNON: frozenset({NUMERICAL, CATEGORICAL}),
}

SMALL_REFERENCE_ROWS = 1000
FEW_DISTINCT_VALUES = 5
_HISTOGRAM_ABOVE_DISTINCT = 20  # Jensen-Shannon bins a numerical feature above this many values
_MAX_WORKERS = 4  # sorting releases the GIL; more threads would mostly add memory


@dataclass(frozen=True)
class FeatureDriftConfig:
    """Per-feature override: a method name from DEFAULT_THRESHOLDS and/or a threshold."""

    method: str | None = None
    threshold: float | None = None

    def __post_init__(self) -> None:
        if self.method is not None and self.method not in DEFAULT_THRESHOLDS:
            raise ValueError(
                f"unknown drift method {self.method!r}; known: {', '.join(DEFAULT_THRESHOLDS)}"
            )
        if self.threshold is not None and not (
            isinstance(self.threshold, (int, float))
            and math.isfinite(self.threshold)
            and self.threshold > 0
        ):
            raise ValueError(f"drift threshold must be a positive number, got {self.threshold!r}")


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    method: str
    score: float
    threshold: float
    drifted: bool
    reference_size: int
    current_size: int


@dataclass(frozen=True)
class DatasetDrift:
    features: list[FeatureDrift]
    share_drifted: float
    dataset_drifted: bool

    @property
    def drifted_features(self) -> list[str]:
        return [feature.feature for feature in self.features if feature.drifted]


def default_method(kind: str, reference_size: int, distinct_values: int) -> str:
    """Evidently's automatic choice (`_get_default_stattest`) for one feature.

    `reference_size` counts the reference's non-missing values; `distinct_values` those of
    reference and current together.
    """
    if kind not in (NUMERICAL, CATEGORICAL):
        raise ValueError(f"feature kind must be {NUMERICAL!r} or {CATEGORICAL!r}, got {kind!r}")
    few_values = kind == CATEGORICAL or distinct_values <= FEW_DISTINCT_VALUES
    if reference_size <= SMALL_REFERENCE_ROWS:
        if not few_values:
            return KS
        return CHISQUARE if distinct_values > 2 else Z
    return JENSENSHANNON if few_values else WASSERSTEIN


def compute_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numerical: Sequence[str],
    categorical: Sequence[str],
    overrides: Mapping[str, FeatureDriftConfig] | None = None,
    *,
    drift_share: float,
) -> DatasetDrift:
    """Compare each feature of `current` with `reference`, numerical features first."""
    kinds = _check_inputs(reference, current, numerical, categorical, overrides, drift_share)
    overrides = overrides or {}
    jobs = [
        (name, kind, reference[name], current[name], overrides.get(name, FeatureDriftConfig()))
        for name, kind in kinds.items()
    ]
    workers = max(1, min(_MAX_WORKERS, os.cpu_count() or 1, len(jobs)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        features = list(pool.map(lambda job: _feature_drift(*job), jobs))
    share = sum(feature.drifted for feature in features) / len(features)
    return DatasetDrift(
        features=features, share_drifted=share, dataset_drifted=share >= drift_share
    )


def _check_inputs(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numerical: Sequence[str],
    categorical: Sequence[str],
    overrides: Mapping[str, FeatureDriftConfig] | None,
    drift_share: float,
) -> dict[str, str]:
    for label, frame in (("reference", reference), ("current", current)):
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"{label} data must be a pandas DataFrame, got {type(frame).__name__}")
        if len(frame) == 0:
            raise ValueError(f"{label} data has no rows")
    for label, names in (("numerical", numerical), ("categorical", categorical)):
        if isinstance(names, str):
            raise TypeError(f"{label} features must be a list of column names, not a string")
    kinds = {name: NUMERICAL for name in numerical}
    kinds.update({name: CATEGORICAL for name in categorical})
    if not kinds:
        raise ValueError("no features to compare: numerical and categorical are both empty")
    repeated = [name for name, times in Counter([*numerical, *categorical]).items() if times > 1]
    if repeated:
        raise ValueError(f"features listed more than once: {repeated}")
    for label, frame in (("reference", reference), ("current", current)):
        missing = [name for name in kinds if name not in frame.columns]
        if missing:
            raise ValueError(f"{label} data lacks feature columns: {missing}")
        doubled = sorted(
            {name for name in frame.columns[frame.columns.duplicated()] if name in kinds}
        )
        if doubled:
            raise ValueError(f"{label} data has more than one column named {doubled}")
    for name, config in (overrides or {}).items():
        if name not in kinds:
            raise ValueError(f"drift override for {name!r}, which is not a feature being compared")
        if not isinstance(config, FeatureDriftConfig):
            raise TypeError(f"drift override for {name!r} must be a FeatureDriftConfig")
        if config.method is not None and kinds[name] not in METHOD_KINDS[config.method]:
            raise ValueError(
                f"drift method {config.method!r} does not apply to {kinds[name]} feature {name!r}"
            )
    if not (isinstance(drift_share, (int, float)) and 0 < drift_share <= 1):
        raise ValueError(f"drift_share must be in (0, 1], got {drift_share!r}")
    return kinds


def _feature_drift(
    name: str, kind: str, reference: pd.Series, current: pd.Series, config: FeatureDriftConfig
) -> FeatureDrift:
    if kind == NUMERICAL:
        method, score, reference_size, current_size = _numerical_score(
            name, reference, current, config.method
        )
    else:
        method, score, reference_size, current_size = _categorical_score(
            name, reference, current, config.method
        )
    threshold = DEFAULT_THRESHOLDS[method] if config.threshold is None else float(config.threshold)
    return FeatureDrift(
        feature=name,
        method=method,
        score=score,
        threshold=threshold,
        drifted=is_drifted(method, score, threshold),
        reference_size=reference_size,
        current_size=current_size,
    )


# --- numerical features: the sorted finite values ----------------------------------------------


def _numerical_score(
    name: str, reference: pd.Series, current: pd.Series, method: str | None
) -> tuple[str, float, int, int]:
    for label, column in (("reference", reference), ("current", current)):
        if not pd.api.types.is_numeric_dtype(column):
            raise ValueError(
                f"numerical feature {name!r} has non-numeric {label} values ({column.dtype})"
            )
    ref = _sorted_finite(reference, name, "reference")
    cur = _sorted_finite(current, name, "current")
    if method is None:
        method = default_method(
            NUMERICAL, ref.size, _union_distinct_count(ref, cur, FEW_DISTINCT_VALUES)
        )
    if method == KS:
        score = ks_pvalue(ref, cur)
    elif method == WASSERSTEIN:
        score = wasserstein_normed(ref, cur)
    elif method == JENSENSHANNON and _distinct_count(ref) > _HISTOGRAM_ABOVE_DISTINCT:
        integer_valued = all(pd.api.types.is_integer_dtype(c) for c in (reference, current))
        score = jensenshannon(*sturges_histograms(ref, cur, integer_valued))
    else:
        keys, ref_counts, cur_counts = _sorted_value_counts(ref, cur)
        score = score_counts(method, keys, ref_counts, cur_counts)
    return method, score, int(ref.size), int(cur.size)


def _sorted_finite(column: pd.Series, name: str, label: str) -> np.ndarray:
    values = column.to_numpy() if column.dtype == np.float64 else column.to_numpy(dtype=np.float64, na_value=np.nan)
    ordered = np.sort(values)  # NaN sorts after +inf
    start = np.searchsorted(ordered, -np.inf, side="right")
    stop = np.searchsorted(ordered, np.inf, side="left")
    if start >= stop:
        raise ValueError(f"feature {name!r} has no finite values in the {label} data")
    return ordered[start:stop]


def _distinct_count(ordered: np.ndarray) -> int:
    return int(np.count_nonzero(ordered[1:] != ordered[:-1])) + 1


def _distinct_values(ordered: np.ndarray) -> np.ndarray:
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]


def _union_distinct_count(ref: np.ndarray, cur: np.ndarray, cap: int) -> int:
    """Distinct values of both samples together; exact up to `cap`, otherwise some larger number."""
    in_reference = _distinct_count(ref)
    if in_reference > cap:
        return in_reference
    return int(np.union1d(_distinct_values(ref), _distinct_values(cur)).size)


def _sorted_value_counts(ref: np.ndarray, cur: np.ndarray) -> tuple[list, np.ndarray, np.ndarray]:
    keys = np.union1d(_distinct_values(ref), _distinct_values(cur))
    counts = []
    for ordered in (ref, cur):
        edges = np.searchsorted(ordered, keys, side="left")
        counts.append(np.diff(np.append(edges, ordered.size)))
    return keys.tolist(), counts[0], counts[1]


# --- categorical features: counts per category ----------------------------------------------------


def _categorical_score(
    name: str, reference: pd.Series, current: pd.Series, method: str | None
) -> tuple[str, float, int, int]:
    keys, ref_counts, cur_counts = _category_counts(reference, current)
    reference_size, current_size = int(ref_counts.sum()), int(cur_counts.sum())
    for label, size in (("reference", reference_size), ("current", current_size)):
        if size == 0:
            raise ValueError(f"feature {name!r} has no non-missing values in the {label} data")
    if method is None:
        method = default_method(CATEGORICAL, reference_size, len(keys))
    try:
        score = score_counts(method, keys, ref_counts, cur_counts)
    except TypeError as error:
        raise ValueError(
            f"categories of feature {name!r} cannot be ordered for the z-test: {error}"
        ) from error
    return method, score, reference_size, current_size


def _category_counts(
    reference: pd.Series, current: pd.Series
) -> tuple[list, np.ndarray, np.ndarray]:
    """Union of the non-missing categories, and how often each occurs in reference and current."""
    per_side = []
    for column in (reference, current):
        if pd.api.types.is_float_dtype(column) and np.isinf(column.to_numpy()).any():
            column = column.replace([np.inf, -np.inf], np.nan)
        codes, uniques = pd.factorize(column, use_na_sentinel=True)
        counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
        per_side.append((pd.Index(np.asarray(uniques, dtype=object), dtype=object), counts))
    (ref_keys, ref_counts), (cur_keys, cur_counts) = per_side
    position = ref_keys.get_indexer(cur_keys)
    new = position < 0
    keys = ref_keys.tolist() + cur_keys[new].tolist()
    aligned_cur = np.zeros(len(keys), dtype=np.int64)
    aligned_cur[position[~new]] = cur_counts[~new]
    aligned_cur[len(ref_keys) :] = cur_counts[new]
    aligned_ref = np.concatenate((ref_counts, np.zeros(int(new.sum()), dtype=np.int64)))
    return keys, aligned_ref, aligned_cur



"""Data drift per feature, with Evidently 0.7's default tests, fast enough for a million rows.

Vigil decides drift itself rather than running Evidently on every monitoring window: the methods,
thresholds and verdicts are those of Evidently 0.7.23's `DataDriftPreset` defaults
(`evidently.legacy.calculations.stattests`), computed on sorted numpy arrays and category counts
instead of pandas Series, so 1M rows x 25 features take seconds rather than minutes.
`monitoring.metrics.evidently_report` runs Evidently itself, for the human-readable report and to check
that both agree. Pure functions over DataFrames; no I/O.

Each feature is compared after dropping its missing and infinite values, as Evidently's
per-feature ValueDrift does (its legacy dataset-level count keeps infinities in a column without
missing values; Vigil does not follow that quirk).

Default method, by reference rows left and distinct values in reference and current together:

    reference rows <= 1000   numerical: KS p-value; chi-square p-value if 3-5 distinct values,
                             z-test p-value if at most 2.  categorical: chi-square, z-test if <= 2
    reference rows > 1000    numerical: normalised Wasserstein distance; Jensen-Shannon distance
                             if at most 5 distinct values.  categorical: Jensen-Shannon distance

A p-value drifts below its threshold (KS: at or below), a distance at or above it. The dataset
drifts when the share of drifted features reaches `drift_share` (half by default).
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
from scipy import stats
from scipy.spatial import distance

KS = "ks"
CHISQUARE = "chisquare"
Z = "z"
WASSERSTEIN = "wasserstein"
JENSENSHANNON = "jensenshannon"

NUMERICAL = "numerical"
CATEGORICAL = "categorical"

DEFAULT_THRESHOLDS: Mapping[str, float] = {
    KS: 0.05,
    CHISQUARE: 0.05,
    Z: 0.05,
    WASSERSTEIN: 0.1,
    JENSENSHANNON: 0.1,
}
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
_SCIPY_EXACT_KS_ROWS = 10_000  # scipy's ks_2samp "auto" mode is exact up to this sample size
_WASSERSTEIN_MIN_STD = 0.001
_EXACT_FLOAT_INTEGERS = 2**53
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


def is_drifted(method: str, score: float, threshold: float) -> bool:
    """Evidently's verdict: p-values drift below the threshold (KS at or below), distances at or above."""
    if method == KS:
        return score <= threshold
    if method in (CHISQUARE, Z):
        return score < threshold
    return score >= threshold


def compute_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numerical: Sequence[str],
    categorical: Sequence[str],
    overrides: Mapping[str, FeatureDriftConfig] | None = None,
    drift_share: float = 0.5,
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


# --- numerical features: everything from the sorted finite values -------------------------------


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
        score = _ks_pvalue(ref, cur)
    elif method == WASSERSTEIN:
        score = _wasserstein_normed(ref, cur)
    elif method == JENSENSHANNON and _distinct_count(ref) > _HISTOGRAM_ABOVE_DISTINCT:
        integer_valued = all(pd.api.types.is_integer_dtype(c) for c in (reference, current))
        score = _jensenshannon(*_sturges_histograms(ref, cur, integer_valued))
    else:
        keys, ref_counts, cur_counts = _sorted_value_counts(ref, cur)
        score = _score_counts(method, keys, ref_counts, cur_counts)
    return method, score, int(ref.size), int(cur.size)


def _sorted_finite(column: pd.Series, name: str, label: str) -> np.ndarray:
    if column.dtype == np.float64:
        values = column.to_numpy()
    else:
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
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


def _merged_cdf_difference(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both samples merged in order, and F_ref - F_cur at each merged position (for KS).

    Inside a run of equal values the counts are partial, which is harmless for Wasserstein (the
    run has zero width) and masked out for KS; at a run's last position they equal scipy's
    `searchsorted(..., side="right")` counts.
    """
    n, m = ref.size, cur.size
    positions = np.searchsorted(cur, ref, side="left")
    positions += np.arange(n)
    from_ref = np.zeros(n + m, dtype=bool)
    from_ref[positions] = True
    merged = np.empty(n + m, dtype=np.float64)
    merged[positions] = ref
    merged[~from_ref] = cur
    ref_counts = np.cumsum(from_ref)
    del from_ref, positions
    difference = ref_counts / n
    cur_counts = np.subtract(np.arange(1, n + m + 1), ref_counts, out=ref_counts)
    difference -= cur_counts / m
    return merged, difference


def _wasserstein_normed(ref: np.ndarray, cur: np.ndarray) -> float:
    norm = max(float(np.std(ref)), _WASSERSTEIN_MIN_STD)
    if ref.size * cur.size >= _EXACT_FLOAT_INTEGERS:
        merged, difference = _merged_cdf_difference(ref, cur)
        np.abs(difference, out=difference)
        return float(np.dot(difference[:-1], np.diff(merged))) / norm
    return _wasserstein_by_quantiles(ref, cur) / norm


def _wasserstein_by_quantiles(ref: np.ndarray, cur: np.ndarray) -> float:
    """W1 as the integral over t in [0, 1) of |Q_ref(t) - Q_cur(t)|: scipy's value, fewer passes.

    Counted in steps of 1/(n*m), the reference's quantile function steps at i*m and the
    current's at j*n. Merging both progressions (arithmetic, no search) cuts [0, 1) into
    intervals on which both quantiles are constant. Needs n*m < 2**53 to stay exact in float64.
    """
    n, m = ref.size, cur.size
    # reference step i comes after i of its own steps and ceil(i*m/n) of the current's
    ref_step = np.arange(n, dtype=np.float64)
    ref_step_position = np.ceil(ref_step * m / n)
    ref_step_position += ref_step
    is_ref_step = np.zeros(n + m, dtype=bool)
    is_ref_step[ref_step_position.astype(np.intp)] = True
    del ref_step, ref_step_position
    ref_index = np.cumsum(is_ref_step)
    ref_index -= 1
    del is_ref_step
    cur_index = np.arange(-1, n + m - 1)
    cur_index -= ref_index
    # both samples' first steps start at 0: skip the empty interval between them
    ref_index, cur_index = ref_index[1:], cur_index[1:]
    starts = np.multiply(ref_index, float(m))
    np.maximum(starts, np.multiply(cur_index, float(n)), out=starts)
    lengths = np.empty_like(starts)
    np.subtract(starts[1:], starts[:-1], out=lengths[:-1])
    lengths[-1] = n * m - starts[-1]
    del starts
    gaps = ref[ref_index]
    gaps -= cur[cur_index]
    np.abs(gaps, out=gaps)
    return float(np.dot(gaps, lengths)) / (n * m)


def _ks_pvalue(ref: np.ndarray, cur: np.ndarray) -> float:
    n, m = ref.size, cur.size
    if max(n, m) <= _SCIPY_EXACT_KS_ROWS:
        return float(stats.ks_2samp(ref, cur).pvalue)
    # scipy's asymptotic branch, fed with a statistic computed without its full searchsorted
    merged, difference = _merged_cdf_difference(ref, cur)
    run_ends = np.flatnonzero(merged[1:] != merged[:-1])
    statistic = float(np.abs(difference[run_ends]).max()) if run_ends.size else 0.0
    larger, smaller = sorted([float(n), float(m)], reverse=True)
    effective_size = larger * smaller / (larger + smaller)
    return float(np.clip(stats.kstwo.sf(statistic, np.round(effective_size)), 0, 1))


def _sturges_histograms(
    ref: np.ndarray, cur: np.ndarray, integer_valued: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Counts on `np.histogram_bin_edges(both, bins="sturges")`, as `np.histogram` bins them."""
    low, high = min(ref[0], cur[0]), max(ref[-1], cur[-1])
    total = ref.size + cur.size
    width = (high - low) / (np.log2(total) + 1.0)
    if integer_valued and width < 1:
        width = 1
    bins = int(np.ceil((high - low) / width)) if width else 1
    if low == high:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, bins + 1)
    counts = []
    for ordered in (ref, cur):
        below = np.searchsorted(ordered, edges, side="left")
        below[-1] = ordered.size  # the last bin includes its right edge
        counts.append(np.diff(below))
    return counts[0], counts[1]


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
        score = _score_counts(method, keys, ref_counts, cur_counts)
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


def _score_counts(method: str, keys: list, ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    if method == CHISQUARE:
        return _chisquare_pvalue(ref_counts, cur_counts)
    if method == Z:
        return _z_pvalue(keys, ref_counts, cur_counts)
    if method == JENSENSHANNON:
        return _jensenshannon(ref_counts, cur_counts)
    raise ValueError(f"drift method {method!r} does not work on category counts")


def _chisquare_pvalue(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    expected = ref_counts * (int(cur_counts.sum()) / int(ref_counts.sum()))
    with np.errstate(divide="ignore", invalid="ignore"):  # a category new in current: p = 0
        return float(stats.chisquare(cur_counts, expected).pvalue)


def _z_pvalue(keys: list, ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Two-proportion z-test: the smallest category against all others (as Evidently does)."""
    in_ref, in_cur = np.flatnonzero(ref_counts), np.flatnonzero(cur_counts)
    if in_ref.size == 1 and in_cur.size == 1 and in_ref[0] == in_cur[0]:
        return 1.0
    first = keys.index(min(keys))
    n1, n2 = int(ref_counts.sum()), int(cur_counts.sum())
    p1 = float(n1 - ref_counts[first]) / n1
    p2 = float(n2 - cur_counts[first]) / n2
    pooled = float(p1 * n1 + p2 * n2) / (n1 + n2)
    z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    return float(2 * (1 - stats.norm.cdf(np.abs(z))))


def _jensenshannon(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    return float(
        distance.jensenshannon(ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum())
    )

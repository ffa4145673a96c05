"""The statistical tests behind Vigil's drift verdicts, on sorted numpy arrays and category counts.

The same tests, thresholds and verdicts as Evidently 0.7.23's `DataDriftPreset` defaults
(`evidently.legacy.calculations.stattests`), computed without pandas Series so a million rows take
seconds: Kolmogorov-Smirnov, normalised Wasserstein distance, chi-square, two-proportion z-test and
Jensen-Shannon distance. `monitoring.metrics.drift` chooses a test per feature and summarises the
dataset. Pure functions; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import stats
from scipy.spatial import distance

KS = "ks"
CHISQUARE = "chisquare"
Z = "z"
WASSERSTEIN = "wasserstein"
JENSENSHANNON = "jensenshannon"

DEFAULT_THRESHOLDS: Mapping[str, float] = {
    KS: 0.05,
    CHISQUARE: 0.05,
    Z: 0.05,
    WASSERSTEIN: 0.1,
    JENSENSHANNON: 0.1,
}
_SCIPY_EXACT_KS_ROWS = 10_000  # scipy's ks_2samp "auto" mode is exact up to this sample size
_WASSERSTEIN_MIN_STD = 0.001
_EXACT_FLOAT_INTEGERS = 2**53


def is_drifted(method: str, score: float, threshold: float) -> bool:
    """Evidently's verdict: p-values drift below the threshold (KS at or below), distances at or above."""
    if method == KS:
        return score <= threshold
    if method in (CHISQUARE, Z):
        return score < threshold
    return score >= threshold


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


def wasserstein_normed(ref: np.ndarray, cur: np.ndarray) -> float:
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


def ks_pvalue(ref: np.ndarray, cur: np.ndarray) -> float:
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


def sturges_histograms(
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


def score_counts(method: str, keys: list, ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    if method == CHISQUARE:
        return _chisquare_pvalue(ref_counts, cur_counts)
    if method == Z:
        return _z_pvalue(keys, ref_counts, cur_counts)
    if method == JENSENSHANNON:
        return jensenshannon(ref_counts, cur_counts)
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


def jensenshannon(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    return float(
        distance.jensenshannon(ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum())
    )

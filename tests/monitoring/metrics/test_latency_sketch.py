"""The mergeable latency histogram: percentiles within its stated error, merges equal to the union."""

from __future__ import annotations

import numpy as np
import pytest

from monitoring.metrics import latency_sketch


def _nearest_rank(values, q):
    ordered = np.sort(values)
    return ordered[max(1, int(np.ceil(q * len(ordered)))) - 1]


@pytest.mark.parametrize("q", [0.01, 0.5, 0.95, 0.99, 1.0])
def test_a_percentile_is_within_the_stated_relative_error(q):
    latencies = np.random.default_rng(1).lognormal(1.5, 1.2, 20_000)
    exact = _nearest_rank(latencies, q)
    assert latency_sketch.percentile(latency_sketch.histogram(latencies), q) == pytest.approx(
        exact, rel=latency_sketch.RELATIVE_ERROR + 1e-12)


def test_merged_windows_equal_the_histogram_of_their_union():
    rng = np.random.default_rng(2)
    fast, slow = rng.lognormal(0.5, 0.3, 5_000), rng.lognormal(4.0, 0.3, 300)
    merged = latency_sketch.merge([latency_sketch.histogram(fast), latency_sketch.histogram(slow)])
    assert merged == latency_sketch.histogram(np.concatenate([fast, slow]))
    union_p99 = _nearest_rank(np.concatenate([fast, slow]), 0.99)
    assert latency_sketch.percentile(merged, 0.99) == pytest.approx(union_p99, rel=latency_sketch.RELATIVE_ERROR)
    # what averaging the windows' own p99s gives instead: far from the range's p99
    averaged = (_nearest_rank(fast, 0.99) + _nearest_rank(slow, 0.99)) / 2
    assert abs(averaged - union_p99) / union_p99 > 0.2


def test_zero_and_tiny_latencies_share_the_smallest_bucket():
    counts = latency_sketch.histogram([0.0, 1e-9, latency_sketch.SMALLEST_MS])
    assert counts == {latency_sketch.bucket(latency_sketch.SMALLEST_MS): 3}


def test_an_empty_histogram_has_no_percentile_and_a_bad_quantile_is_refused():
    assert latency_sketch.percentile({}, 0.5) is None
    for q in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="quantile"):
            latency_sketch.percentile({1: 1}, q)

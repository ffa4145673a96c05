"""Latency histograms that merge: a window's latencies counted once in log-spaced buckets, so that
the percentiles of any longer range (an hour on the Overview, a day's chart bucket) come from
adding the windows' counts, not from averaging their percentiles (which is not a percentile).

Bucket ``i`` holds the latencies in (γ^(i-1), γ^i] ms; a bucket is read as the point whose
relative distance to both of its ends is the same, so any latency, and so any percentile read
from the merged counts, is off by at most (γ - 1) / (γ + 1): under 1 % with γ = 1.02. Pure logic:
``monitoring/store/latency_histograms.py`` counts the buckets in the database and stores them.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from itertools import accumulate

GAMMA = 1.02
LOG_GAMMA = math.log(GAMMA)
RELATIVE_ERROR = (GAMMA - 1) / (GAMMA + 1)
SMALLEST_MS = 1e-3  # a latency under a microsecond counts as one


def bucket(latency_ms: float) -> int:
    """The bucket of a latency (ceil of its log to the base γ)."""
    return math.ceil(math.log(max(latency_ms, SMALLEST_MS)) / LOG_GAMMA - 1e-9)


def histogram(latencies_ms: Iterable[float]) -> dict[int, int]:
    """Counts per bucket of the given latencies."""
    counts: dict[int, int] = {}
    for latency in latencies_ms:
        index = bucket(float(latency))
        counts[index] = counts.get(index, 0) + 1
    return counts


def merge(histograms: Iterable[Mapping[int, int]]) -> dict[int, int]:
    """The histogram of the union of the windows the histograms count."""
    merged: dict[int, int] = {}
    for counts in histograms:
        for index, count in counts.items():
            merged[int(index)] = merged.get(int(index), 0) + int(count)
    return merged


def value(index: int) -> float:
    """The latency a bucket stands for: as far, relatively, from both of its ends."""
    return 2.0 * GAMMA ** index / (GAMMA + 1.0)


def percentile(counts: Mapping[int, int], q: float) -> float | None:
    """The ``q`` quantile (0 < q <= 1) of the counted latencies (the nearest-rank one; None if empty)."""
    if not 0 < q <= 1:
        raise ValueError(f"a quantile is in (0, 1], not {q}")
    total = sum(counts.values())
    if total == 0:
        return None
    indices = sorted(counts)
    ranks = list(accumulate(counts[index] for index in indices))
    return value(indices[bisect_left(ranks, max(1, math.ceil(q * total)))])

"""The watchdog's live evidence about a champion, as the Overview and Quality pages show it.

Read from the detector state the watchdog saves per model after every evaluation
(``model_controls.detector_state``, see ``monitoring.watchdog.detectors``): the labels since the
champion took over, the quality test's log-likelihood ratio against its two boundaries and its
trajectory, the latency and error rate of the steps so far, and how long ago the watchdog last
looked. So a degradation shows within seconds, not at the next monitoring window. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class LiveEvidence:
    model_name: str
    version: int
    took_over_at: datetime
    current: bool  # the saved state is this champion's (False: not evaluated since it took over)
    seconds_since_evaluation: float | None
    labels: int = 0
    errors: int = 0
    llr: float = 0.0
    lower: float | None = None  # accept "as good as its baseline" at or below
    upper: float | None = None  # "degraded" at or above
    baseline_accuracy: float | None = None
    trip_accuracy: float | None = None
    breaching: bool = False
    trajectory: tuple[tuple[int, float, float], ...] = ()  # (labels, llr, unix seconds)
    requests: int = 0  # in the latency / error-rate steps so far
    failed: int = 0
    latency_p95_ms: float | None = None  # of the last step
    latency_p99_ms: float | None = None

    @property
    def accuracy(self) -> float | None:
        return None if self.labels == 0 else 1 - self.errors / self.labels

    @property
    def error_rate(self) -> float | None:
        return None if self.requests == 0 else self.failed / self.requests

    @property
    def verdict(self) -> str:
        """``degraded``, ``healthy so far`` (a test accepted the baseline or the LLR is below 0),
        ``watching`` or ``no evidence yet``."""
        if not self.current or self.labels == 0:
            return "no evidence yet"
        if self.breaching:
            return "degraded"
        return "healthy so far" if self.llr <= 0 else "watching"


def live_evidence(model_name: str, version: int, took_over_at: datetime, control: dict[str, Any] | None,
                  now: datetime) -> LiveEvidence:
    """The live evidence of champion ``version`` (alias taken at ``took_over_at``) from the model's
    ``model_controls`` row as a dict (None: the watchdog never evaluated the model)."""
    evaluated = (control or {}).get("last_evaluated_at")
    since = (now - evaluated).total_seconds() if evaluated is not None else None
    state = (control or {}).get("detector_state") or {}
    current = state.get("version") == version and state.get("took_over_at") == took_over_at.isoformat()
    if not current:
        return LiveEvidence(model_name, version, took_over_at, False, since)
    quality = state.get("live_quality") or state.get("quality") or {}
    test = state.get("quality_test") or {}
    totals = state.get("service_totals") or {}
    last = state.get("service_last") or {}
    points = list(state.get("trajectory") or []) + list(state.get("trajectory_tail") or [])
    return LiveEvidence(
        model_name, version, took_over_at, True, since,
        labels=int(quality.get("labels", 0)), errors=int(quality.get("errors", 0)),
        llr=float(quality.get("llr", 0.0)), lower=test.get("lower"), upper=test.get("upper"),
        baseline_accuracy=1 - test["p0"] if "p0" in test else None,
        trip_accuracy=1 - test["p1"] if "p1" in test else None,
        breaching=bool(quality.get("breaching", False)),
        trajectory=tuple((int(n), float(llr), float(at)) for n, llr, at in points),
        requests=int(totals.get("requests", 0)), failed=int(totals.get("errors", 0)),
        latency_p95_ms=last.get("latency_p95_ms"), latency_p99_ms=last.get("latency_p99_ms"),
    )

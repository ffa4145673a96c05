"""Realistic traffic for the API: loan applications at a steady rate, and their true outcomes later.

Used by ``vigil simulate`` and ``vigil demo``. It is an ordinary HTTP client of the API, so
everything it sends is logged and monitored like any application's traffic. Outcomes come from
the demo generator's ground-truth rule for the chosen scenario, and are sent back to
``/feedback`` after a delay, as they would be in production. It sends the client key given
(``VIGIL_CLIENT_KEY`` for ``vigil simulate``; scopes predict, feedback, and trusted if its labels
are to count in the watchdog's decisions), or none against an API with open access (the demo).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import numpy as np

from monitoring.client_keys import HEADER
from monitoring.training import datasets

SCENARIOS = ("healthy", "covariate_drift", "concept_drift")


@dataclass
class TrafficReport:
    sent: int = 0
    answered: int = 0
    failed: int = 0
    labels_sent: int = 0
    correct: int = 0
    versions: dict[int, int] = field(default_factory=dict)
    wrong: dict[int, int] = field(default_factory=dict)  # labelled answers that were wrong, by version
    last_error: str | None = None

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.labels_sent if self.labels_sent else None

    def line(self) -> str:
        accuracy = f"{self.accuracy:.3f}" if self.accuracy is not None else "n/a"
        versions = ", ".join(f"v{v}: {n}" for v, n in sorted(self.versions.items())) or "none"
        return (f"sent {self.sent}, answered {self.answered}, failed {self.failed}, "
                f"labels {self.labels_sent}, accuracy {accuracy}, by version {versions}")


def simulate(
    api_url: str,
    *,
    scenario: str = "healthy",
    rate: float = 20.0,
    duration: float = 60.0,
    label_delay: float = 2.0,
    label_share: float = 1.0,
    seed: int = 0,
    report_every: float = 10.0,
    progress: Callable[[str], None] = lambda _line: None,
    client: httpx.Client | None = None,
    key: str | None = None,
    until: Callable[[], bool] | None = None,
) -> TrafficReport:
    """Send ``rate`` predictions per second for ``duration`` seconds; label a share of them.

    ``key``: the client key sent as ``X-Vigil-Key`` (none: the API must run with open access);
    ``until``: asked about once a second, stops the traffic early when it says so (the labels
    still due are sent).
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
    if rate <= 0 or duration <= 0:
        raise ValueError("rate and duration must be positive")
    if not 0 <= label_share <= 1:
        raise ValueError("label share must be between 0 and 1")
    total = max(1, math.ceil(rate * duration))
    features = datasets.generate_features(total, seed, scenario)
    truth = np.random.default_rng(seed + 1).random(total) < datasets.true_default_probability(features, scenario)
    labelled = np.random.default_rng(seed + 2).random(total) < label_share
    rows = features.to_dict(orient="records")

    report = TrafficReport()
    pending: deque[tuple[float, str, int, object]] = deque()
    own_client = client is None
    http = client or httpx.Client(base_url=api_url, timeout=10.0, headers={HEADER: key} if key else None)
    started = time.monotonic()
    next_report, next_check = started + report_every, started + 1.0
    try:
        for index, row in enumerate(rows):
            _wait_until(started + index / rate)
            if until is not None and time.monotonic() >= next_check:
                next_check = time.monotonic() + 1.0
                if until():
                    break
            _send_due_labels(http, pending, report)
            report.sent += 1
            answer = _predict(http, row, report)
            if answer is not None and labelled[index]:
                pending.append((time.monotonic() + label_delay, answer["prediction_id"], int(truth[index]),
                                (answer["prediction"], answer["model_version"])))
            if time.monotonic() >= next_report:
                progress(report.line())
                next_report += report_every
        while pending:
            _wait_until(pending[0][0])
            _send_due_labels(http, pending, report)
    finally:
        if own_client:
            http.close()
    progress(report.line())
    return report


def _wait_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def _predict(http: httpx.Client, row: dict, report: TrafficReport) -> dict | None:
    try:
        response = http.post("/predict", json=row)
    except httpx.HTTPError as error:
        report.failed += 1
        report.last_error = f"API unreachable: {type(error).__name__}"
        return None
    if response.status_code != 200:
        report.failed += 1
        report.last_error = f"HTTP {response.status_code}: {response.text[:200]}"
        return None
    answer = response.json()
    report.answered += 1
    report.versions[answer["model_version"]] = report.versions.get(answer["model_version"], 0) + 1
    return answer


def _send_due_labels(http: httpx.Client, pending: deque, report: TrafficReport) -> None:
    due = []
    now = time.monotonic()
    while pending and pending[0][0] <= now:
        due.append(pending.popleft())
    if not due:
        return
    body = [{"prediction_id": pid, "label": label} for _, pid, label, _ in due]
    try:
        response = http.post("/feedback", json=body)
    except httpx.HTTPError as error:
        report.last_error = f"feedback failed: {type(error).__name__}"
        return
    if response.status_code not in (200, 207):
        report.last_error = f"feedback HTTP {response.status_code}: {response.text[:200]}"
        return
    taken = [item for item, result in zip(due, response.json()["results"], strict=True) if result["status"] == 200]
    if len(taken) < len(due):
        report.last_error = f"feedback: {len(due) - len(taken)} label(s) refused"
    report.labels_sent += len(taken)
    for _, _, label, (predicted, version) in taken:
        if str(label) == str(predicted):
            report.correct += 1
        else:
            report.wrong[version] = report.wrong.get(version, 0) + 1

"""Incidents: every rollback of a champion (by the watchdog or by an operator), told as a story.

An incident is the registry event of the rollback; ``monitoring.store.incidents`` reads its facts
(the promotion it undid, the first answers of both versions, what the bad version served, its
Slack thread), and the functions here assemble them into what the incident page and ``vigil
demo`` show: a timeline, the evidence, the wrong answers served, the time to recover. Pure: plain
data in, plain data out, no I/O.

The time to recover runs from the bad version's first answer (else its promotion) to the restored
version's first answer after the rollback (else the rollback's commit): how long users were
answered by the bad version. The mean time to recover (MTTR) is the mean over incidents.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

ROLLBACK_KINDS = ("auto_rollback", "manual_rollback")
PAGE = "incidents"
CROSSED = "quality test crossed its boundary"


@dataclass(frozen=True)
class Move:
    """One alias move of Vigil's history."""

    id: int
    kind: str
    actor: str
    reason: str
    from_version: int | None
    to_version: int | None
    created_at: datetime
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Served:
    """What the bad version answered during its tenure: requests, failures, labels, wrong answers."""

    requests: int = 0
    failed: int = 0
    labelled: int = 0
    wrong: int = 0


@dataclass(frozen=True)
class Message:
    """One outbox message of the incident (what Slack got, or would have got)."""

    id: int
    kind: str
    title: str
    created_at: datetime
    delivered_at: datetime | None
    attempts: int
    last_error: str | None
    text: str


@dataclass(frozen=True)
class Facts:
    """Everything the store knows about one rollback."""

    model_name: str
    rollback: Move
    promotion: Move | None  # the move that gave the alias to the version rolled back
    first_bad_answer_at: datetime | None
    restored_serving_at: datetime | None  # first answer of the restored version after the rollback
    served: Served
    messages: tuple[Message, ...] = ()


@dataclass(frozen=True)
class Moment:
    """One entry of an incident's timeline."""

    what: str
    at: datetime
    detail: str = ""


@dataclass(frozen=True)
class Incident:
    id: int
    model_name: str
    kind: str
    actor: str
    reason: str
    bad_version: int | None
    restored_version: int | None
    promoted_at: datetime | None
    rolled_back_at: datetime
    timeline: tuple[Moment, ...]
    served: Served
    labels: int | None  # labels the quality test had seen when the rollback was decided
    accuracy: float | None
    baseline_accuracy: float | None
    trip_accuracy: float | None
    lower: float | None  # the quality test's boundaries on its log-likelihood ratio
    upper: float | None
    trajectory: tuple[tuple[int, float, float], ...]  # (labels, llr, unix seconds)
    seconds_to_recover: float | None
    messages: tuple[Message, ...]

    @property
    def automatic(self) -> bool:
        return self.kind == "auto_rollback"

    @property
    def quality_crossed(self) -> bool:
        """The quality test crossed its "degraded" boundary before the rollback."""
        return any(m.what == CROSSED for m in self.timeline)

    @property
    def seconds_after_promotion(self) -> float | None:
        if self.promoted_at is None:
            return None
        return (self.rolled_back_at - self.promoted_at).total_seconds()

    @property
    def error_rate(self) -> float | None:
        """Failed requests of the bad version over its requests."""
        return self.served.failed / self.served.requests if self.served.requests else None

    @property
    def wrong_rate(self) -> float | None:
        """Wrong answers of the bad version over its labelled answers."""
        return self.served.wrong / self.served.labelled if self.served.labelled else None


def incident_url(dashboard_url: str, event_id: int) -> str:
    """The incident page of rollback ``event_id`` (what its Slack messages link to)."""
    return f"{dashboard_url.rstrip('/')}/{PAGE}?id={int(event_id)}"


def assemble(facts: Facts) -> Incident:
    """The incident told by ``facts``: timeline, evidence, wrong answers, time to recover."""
    rollback, evidence = facts.rollback, facts.rollback.evidence or {}
    numbers = evidence.get("numbers") or {}
    quality = evidence.get("quality") or {}
    test = quality.get("test") or {}
    points = tuple((int(n), float(llr), float(at)) for n, llr, at in quality.get("trajectory") or ())
    labels = numbers.get("labels", quality.get("labels"))
    accuracy = numbers.get("accuracy")
    if accuracy is None and quality.get("labels"):
        accuracy = 1 - quality.get("errors", 0) / quality["labels"]
    baseline = numbers.get("baseline accuracy", 1 - test["p0"] if "p0" in test else None)
    start = facts.first_bad_answer_at or (facts.promotion.created_at if facts.promotion else None)
    end = facts.restored_serving_at or rollback.created_at
    return Incident(
        id=rollback.id, model_name=facts.model_name, kind=rollback.kind, actor=rollback.actor,
        reason=rollback.reason, bad_version=rollback.from_version, restored_version=rollback.to_version,
        promoted_at=facts.promotion.created_at if facts.promotion else None,
        rolled_back_at=rollback.created_at, timeline=timeline(facts, points, test.get("upper")),
        served=facts.served, labels=int(labels) if labels is not None else None,
        accuracy=_number(accuracy), baseline_accuracy=_number(baseline),
        trip_accuracy=_number(numbers.get("trip accuracy", 1 - test["p1"] if "p1" in test else None)),
        lower=_number(test.get("lower")), upper=_number(test.get("upper")), trajectory=points,
        seconds_to_recover=max(0.0, (end - start).total_seconds()) if start is not None else None,
        messages=facts.messages,
    )


def timeline(facts: Facts, points: Sequence[tuple[int, float, float]], upper: float | None) -> tuple[Moment, ...]:
    """The incident's moments in time order: promotion, first answer, test crossing, rollback,
    the restored version answering, the recovered (or not) message."""
    rollback, bad, good = facts.rollback, facts.rollback.from_version, facts.rollback.to_version
    moments = []
    if facts.promotion is not None:
        moments.append(Moment("promotion", facts.promotion.created_at,
                              f"version {bad} took the alias ({facts.promotion.actor}: {facts.promotion.reason})"))
    if facts.first_bad_answer_at is not None:
        moments.append(Moment("first answer of the new version", facts.first_bad_answer_at,
                              f"version {bad} answered its first request"))
    crossing = crossing_point(points, upper)
    if crossing is not None:
        moments.append(Moment(CROSSED, _from_unix(crossing[2]),
                              f"log-likelihood ratio {crossing[1]:.2f} ≥ {upper:.2f} on label {crossing[0]}"))
    who = "the watchdog" if rollback.kind == "auto_rollback" else rollback.actor
    moments.append(Moment("rollback committed", rollback.created_at, f"to version {good} by {who}"))
    if facts.restored_serving_at is not None:
        moments.append(Moment(f"API serving version {good}", facts.restored_serving_at,
                              f"first answer of version {good} after the rollback"))
    outcome = next((m for m in facts.messages if m.kind == "followup" and "recovered" in m.title), None)
    if outcome is not None:
        what = "not recovered message" if "NOT recovered" in outcome.title else "recovered message"
        moments.append(Moment(what, outcome.created_at, outcome.title))
    return tuple(sorted(moments, key=lambda m: m.at))


def crossing_point(points: Sequence[tuple[int, float, float]], upper: float | None) -> tuple[int, float, float] | None:
    """The last point at or over the upper boundary: where the test found the version degraded."""
    if upper is None:
        return None
    return next((p for p in reversed(points) if p[1] >= upper), None)


def mean_seconds_to_recover(incidents: Iterable[Incident]) -> float | None:
    """MTTR: the mean time to recover over the incidents that have one (None: none has)."""
    times = [i.seconds_to_recover for i in incidents if i.seconds_to_recover is not None]
    return sum(times) / len(times) if times else None


def narration(incident: Incident) -> str:
    """One line saying what happened, e.g. "version 2 rolled back to version 1 by the watchdog
    7.4 s after the promotion, on 96 labels (accuracy 0.54 vs baseline 0.83)" when the quality test
    decided it, else with the rollback's reason (latency, an operator's words)."""
    who = "the watchdog" if incident.automatic else incident.actor
    line = f"version {incident.bad_version} rolled back to version {incident.restored_version} by {who}"
    after = incident.seconds_after_promotion
    if after is not None:
        line += f" {after:.1f} s after the promotion"
    if incident.automatic and incident.quality_crossed and incident.labels is not None \
            and incident.accuracy is not None:
        baseline = f" vs baseline {incident.baseline_accuracy:.2f}" if incident.baseline_accuracy is not None else ""
        return f"{line}, on {incident.labels} labels (accuracy {incident.accuracy:.2f}{baseline})"
    return f"{line} ({incident.reason})" if incident.reason else line


def duration(seconds: float | None) -> str:
    """``7.4 s``, ``3.2 min``, ``1.5 h``: a time to recover as a person reads it."""
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _from_unix(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)

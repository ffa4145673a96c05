"""The release judge's evidence, read from the store: what each arm of a running release did.

A canary's arms are the champion's rows (``role='champion'``) and the challenger's
(``role='canary'``) since the release started; a shadow's are the champion's rows and the
challenger's shadow rows paired with them (``paired_id``). Only trusted labels count, as for the
watchdog. Each function reads in the caller's session (which holds the model's lock).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from monitoring.labels import label_text, misses
from monitoring.store.tables import Feedback, Prediction, Release
from monitoring.watchdog.challenger_judge import ArmCounts, PairCounts, ServiceCounts
from monitoring.watchdog.sequential_test import outcome_record

RECENT_ROWS = 50_000  # per arm: the newest rows the latency, failure and agreement figures use
RUNNING = "running"
ENDED = ("promoted", "aborted", "stopped")


def running_release(session: Session, model_name: str) -> Release | None:
    """The model's running release, or None."""
    return session.scalars(select(Release).where(Release.model_name == model_name, Release.state == RUNNING)
                           .order_by(Release.id.desc()).limit(1)).first()


def version_release(session: Session, model_name: str, version: int) -> Release | None:
    """The newest release (running or ended) that had ``version`` as its challenger, or None."""
    return session.scalars(select(Release).where(Release.model_name == model_name,
                                                 Release.challenger_version == version)
                           .order_by(Release.id.desc()).limit(1)).first()


def releases(session: Session, model_name: str | None = None, limit: int = 50) -> list[Release]:
    """The newest releases (of one model, or of all), newest first."""
    query = select(Release).order_by(Release.id.desc()).limit(limit)
    if model_name is not None:
        query = query.where(Release.model_name == model_name)
    return list(session.scalars(query))


def _arm(release: Release, role: str, version: int):
    return ((Prediction.model_name == release.model_name) & (Prediction.role == role)
            & (Prediction.model_version == version) & (Prediction.created_at >= release.started_at))


def _tolerance(labelled: list[tuple[Any, str]]) -> float | None:
    """None for a classifier (a miss is a wrong class); for a regressor's labels, the tolerance of
    the champion's own record over the release (``sequential_test.outcome_record``): a miss is a
    prediction further from its label than that, for both arms."""
    return (outcome_record(labelled) or {}).get("tolerance")


def canary_outcomes(session: Session, release: Release) -> list[tuple[datetime, str, bool]]:
    """Each labelled prediction of a canary: when it was made, which arm answered (``champion`` or
    ``challenger``) and whether it missed its label."""
    def labelled(role: str, version: int) -> list[tuple[datetime, Any, str]]:
        query = (select(Prediction.created_at, Prediction.prediction, Feedback.label)
                 .join(Feedback, Feedback.prediction_id == Prediction.id)
                 .where(_arm(release, role, version), Prediction.status == "ok", Feedback.trusted.is_(True)))
        return list(session.execute(query).tuples())

    champion = labelled("champion", release.champion_version)
    challenger = labelled("canary", release.challenger_version)
    tolerance = _tolerance([(p, label) for _, p, label in champion])
    return ([(at, "champion", misses(p, label, tolerance)) for at, p, label in champion]
            + [(at, "challenger", misses(p, label, tolerance)) for at, p, label in challenger])


def arm_counts(outcomes: list[tuple[datetime, str, bool]]) -> ArmCounts:
    """The judge's canary evidence from ``canary_outcomes`` (or a prefix of them)."""
    champion = [missed for _, arm, missed in outcomes if arm == "champion"]
    challenger = [missed for _, arm, missed in outcomes if arm == "challenger"]
    return ArmCounts(len(champion), sum(champion), len(challenger), sum(challenger))


def canary_counts(session: Session, release: Release) -> ArmCounts:
    """Labelled predictions and misses of each arm of a canary."""
    return arm_counts(canary_outcomes(session, release))


def shadow_outcomes(session: Session, release: Release) -> list[tuple[datetime, bool | None, bool | None, bool]]:
    """Each pair of a shadow (the newest ``RECENT_ROWS``): when, whether the champion and the
    challenger missed the label (None for an unlabelled pair), and whether they agree."""
    champion, shadow = Prediction, aliased(Prediction)
    pairs = (select(champion.created_at, champion.prediction, shadow.prediction, Feedback.label)
             .join(shadow, shadow.paired_id == champion.id)
             .outerjoin(Feedback, (Feedback.prediction_id == champion.id) & Feedback.trusted.is_(True))
             .where(_arm(release, "champion", release.champion_version),
                    shadow.role == "shadow", shadow.model_version == release.challenger_version,
                    champion.status == "ok", shadow.status == "ok")
             .order_by(champion.created_at.desc()).limit(RECENT_ROWS))
    rows = list(session.execute(pairs).tuples())
    tolerance = _tolerance([(a, label) for _, a, _, label in rows if label is not None])
    return [(at, None if label is None else misses(a, label, tolerance),
             None if label is None else misses(b, label, tolerance), _agree(a, b, tolerance))
            for at, a, b, label in rows]


def pair_counts(outcomes: list[tuple[datetime, bool | None, bool | None, bool]]) -> PairCounts:
    """The judge's shadow evidence from ``shadow_outcomes`` (or a part of them)."""
    labelled = [(a, b) for _, a, b, _ in outcomes if a is not None]
    return PairCounts(len(labelled), sum(b and not a for a, b in labelled), sum(a and not b for a, b in labelled),
                      sum(agree for *_, agree in outcomes), len(outcomes))


def shadow_counts(session: Session, release: Release) -> PairCounts:
    """Labelled pairs of a shadow, where only one of the two erred, and how often they agree."""
    return pair_counts(shadow_outcomes(session, release))


def _agree(a: Any, b: Any, tolerance: float | None) -> bool:
    if tolerance is None:
        return label_text(a) == label_text(b)
    try:
        return abs(float(a) - float(b)) <= tolerance
    except (TypeError, ValueError):
        return False


def service_rows(session: Session, release: Release) -> list[tuple[datetime, str, float, str]]:
    """The requests of each arm (the newest ``RECENT_ROWS`` of each): when, which arm
    (``champion`` or ``challenger``), latency and status."""
    challenger_role = "canary" if release.mode == "canary" else "shadow"

    def arm(name: str, role: str, version: int) -> list[tuple[datetime, str, float, str]]:
        rows = session.execute(select(Prediction.created_at, Prediction.latency_ms, Prediction.status)
                               .where(_arm(release, role, version))
                               .order_by(Prediction.created_at.desc()).limit(RECENT_ROWS)).tuples()
        return [(at, name, latency, status) for at, latency, status in rows]

    return arm("champion", "champion", release.champion_version) + arm(
        "challenger", challenger_role, release.challenger_version)


def service_counts(session: Session, release: Release) -> ServiceCounts:
    """Requests, failures and latency p95 of each arm (the newest ``RECENT_ROWS`` of each)."""
    rows = service_rows(session, release)

    def arm(name: str) -> tuple[int, int, float | None]:
        mine = [(latency, status) for _, who, latency, status in rows if who == name]
        latencies = sorted(latency for latency, _ in mine)
        p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))] if latencies else None
        return len(mine), sum(status != "ok" for _, status in mine), p95

    return ServiceCounts(*arm("champion"), *arm("challenger"))

"""The watchdog's detectors, advanced on the evidence that arrived since the last evaluation.

Three of them, judged with ``monitoring.watchdog.decisions``: the SPRT on the champion's labelled
errors, the latency / error-rate streaks over steps of ``min_requests`` predictions, and the
champion's newest drift window. Their state is a JSON document kept in ``model_controls``
(``detector_state``) and belongs to one champion's tenure: a new champion starts fresh.

Feedback is read in the order it was received. Rows received in the last ``SETTLE`` are counted
provisionally and read again next time, so a row committed a little after its timestamp (the
API writes in batches) is not skipped.

Besides what the detectors need, the state keeps what a person watching wants to see: the quality
test's boundaries and its trajectory (``monitoring.watchdog.trajectory``), the provisional count
(``live_quality``), and the latency / error-rate numbers of the last step and the tenure's totals.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from monitoring.settings import WatchdogPolicy
from monitoring.store import watchdog_evidence as evidence
from monitoring.store.engine import Session
from monitoring.watchdog import decisions, trajectory

SETTLE = timedelta(seconds=10)
MAX_SERVICE_ROWS = 20_000  # predictions read per latency window step
SERVICE_SIGNALS = ("latency_p95_ms", "latency_p99_ms", "error_rate")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def state_for(saved: dict[str, Any], champion: int, took_over: datetime) -> dict[str, Any]:
    """The saved detector state if it belongs to this champion's tenure, else a fresh one."""
    if saved.get("version") == champion and saved.get("took_over_at") == took_over.isoformat():
        return dict(saved)
    return {"version": champion, "took_over_at": took_over.isoformat(), "bake": saved.get("bake")}


def consecutive_breaches(state: dict[str, Any]) -> int:
    """The longest current latency / error-rate streak."""
    return max((int(state.get(s, {}).get("consecutive", 0)) for s in SERVICE_SIGNALS), default=0)


def advance_quality(
    session: Session,
    state: dict[str, Any],
    name: str,
    champion: int,
    took_over: datetime,
    test: decisions.ErrorRateTest | None,
    now: datetime,
) -> decisions.SprtState:
    """Feed the labels received since the last settled point; save the settled point."""
    settled = decisions.SprtState.from_dict(state.get("quality"))
    if test is None:
        return settled
    saved = state.get("cursor")
    cursor = (as_time(saved[0]), saved[1]) if saved else None
    rows = evidence.labels_after(session, name, champion, took_over, cursor)
    settle_before = now - SETTLE
    done = [r for r in rows if r.received_at <= settle_before]
    start = settled.labels
    settled, path = decisions.sprt_walk(settled, _errors(done, test), test)
    if done:
        state["cursor"] = [done[-1].received_at.isoformat(), done[-1].prediction_id]
    state["quality"] = settled.to_dict()
    state["quality_test"] = trajectory.bounds_of(test.p0, test.p1, test.lower, test.upper)
    state["trajectory"] = trajectory.bounded(
        list(state.get("trajectory") or []) + trajectory.points(start, path, [r.received_at for r in done]))
    pending = rows[len(done):]
    live, tail = decisions.sprt_walk(settled, _errors(pending, test), test)
    state["trajectory_tail"] = trajectory.bounded(
        trajectory.points(settled.labels, tail, [r.received_at for r in pending]))
    state["live_quality"] = live.to_dict()
    return live


def _errors(rows: list[evidence.Label], test: decisions.ErrorRateTest) -> list[bool]:
    return [test.is_error(r.prediction, r.label) for r in rows]


def advance_service(
    session: Session,
    state: dict[str, Any],
    name: str,
    champion: int,
    took_over: datetime,
    now: datetime,
    policy: WatchdogPolicy,
) -> list[decisions.Finding]:
    """One latency / error-rate window step once ``min_requests`` new settled predictions exist."""
    after = as_time(state["service_cursor"]) if state.get("service_cursor") else took_over
    rows = evidence.served_between(
        session,
        name,
        champion,
        after=after,
        since=took_over,
        until=now - SETTLE,
        limit=MAX_SERVICE_ROWS,
    )
    numbers = decisions.summarise_service([r.latency_ms for r in rows], [r.status != "ok" for r in rows])
    stepped = numbers.requests >= policy.min_requests
    if stepped:
        _record_step(state, rows, numbers)
    limits = {
        "latency_p95_ms": policy.latency_p95_slo_ms,
        "latency_p99_ms": policy.latency_p99_slo_ms,
        "error_rate": policy.error_rate_limit,
    }
    values = {
        "latency_p95_ms": numbers.latency_p95_ms,
        "latency_p99_ms": numbers.latency_p99_ms,
        "error_rate": numbers.error_rate,
    }
    findings = []
    for signal in SERVICE_SIGNALS:
        streak = decisions.StreakState.from_dict(state.get(signal))
        if stepped:
            streak = decisions.streak_update(
                streak, values[signal], limits[signal], numbers.requests, policy
            )
            state[signal] = streak.to_dict()
        findings.append(
            decisions.judge_streak(
                signal,
                streak,
                values[signal] if stepped else None,
                limits[signal],
                numbers.requests if stepped else 0,
                policy,
            )
        )
    return findings


def _record_step(state: dict[str, Any], rows: list[evidence.Served], numbers: decisions.ServiceNumbers) -> None:
    """Move the service cursor past a complete step; keep the step's numbers and the tenure's totals."""
    state["service_cursor"] = rows[-1].created_at.isoformat()
    totals = state.get("service_totals") or {"requests": 0, "errors": 0, "steps": 0}
    state["service_totals"] = {"requests": totals["requests"] + numbers.requests,
                               "errors": totals["errors"] + sum(r.status != "ok" for r in rows),
                               "steps": totals["steps"] + 1}
    state["service_last"] = {"requests": numbers.requests, "latency_p95_ms": numbers.latency_p95_ms,
                             "latency_p99_ms": numbers.latency_p99_ms, "error_rate": numbers.error_rate,
                             "at": rows[-1].created_at.isoformat()}


def drift_finding(
    session: Session, name: str, champion: int, took_over: datetime, policy: WatchdogPolicy
) -> decisions.Finding:
    flags = evidence.latest_drift_flags(session, name, champion, took_over)
    if flags is None:
        return decisions.judge_drift(0, 0, policy)
    return decisions.judge_drift(sum(flags), len(flags), policy)


def rollbacks_last_day(session: Session, name: str, now: datetime) -> int:
    """Automatic rollbacks in the last 24 h, counted from the last operator release if later."""
    since = max(now - timedelta(days=1), evidence.last_release_at(session, name) or EPOCH)
    return evidence.automatic_rollbacks_after(session, name, since)


def as_time(text: str) -> datetime:
    return datetime.fromisoformat(text)

"""What an operator sees of a model's releases (the API's ``GET /releases`` and the dashboard's
Release page): the running one with the judge's evidence now, the last few ended ones, and, for
charts, both arms over time and the judge's path toward a verdict.

The evidence is the watchdog's own verdict (``release_step.verdict_for``) computed at read time,
so it is current between watchdog cycles; the decision the watchdog last acted on stays on the
release row (``evidence['decision']``). Nothing here writes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd

from monitoring.settings import Settings
from monitoring.store import releases as evidence
from monitoring.store.engine import session_scope, utcnow
from monitoring.store.tables import Release
from monitoring.watchdog import challenger_judge as judge
from monitoring.watchdog.release_step import policy_from, verdict_for

ENDED_SHOWN = 5
Z_95 = 1.96


@dataclass(frozen=True)
class ReleaseSummary:
    """One release as an operator reads it."""

    id: int
    model_name: str
    mode: str
    challenger_version: int
    champion_version: int
    share: float
    state: str
    started_at: datetime
    started_by: str
    bake_until: datetime
    bake_minutes_left: float
    ended_at: datetime | None
    ended_by: str | None
    decision: str | None  # the judge's: now for a running release, at the end for an ended one
    reason: str
    numbers: dict[str, float | int | None] = field(default_factory=dict)

    def rate(self, arm: str) -> float | None:
        """The share of ``arm``'s labelled predictions that missed (``champion`` or ``challenger``)."""
        labels = self.numbers.get(f"{arm} labels")
        errors = self.numbers.get(f"{arm} errors")
        return errors / labels if labels and errors is not None else None


def summaries(settings: Settings, model_name: str, *, now: datetime | None = None,
              ended: int = ENDED_SHOWN) -> tuple[ReleaseSummary | None, list[ReleaseSummary]]:
    """The model's running release (None when none runs) and its last ``ended`` ended ones."""
    now = now or utcnow()
    with session_scope(settings.read_url) as session:
        rows = evidence.releases(session, model_name, limit=ended + 1)
        running = next((r for r in rows if r.state == evidence.RUNNING), None)
        current = _running(session, running, settings, now) if running is not None else None
        past = [describe(r, now) for r in rows if r.state != evidence.RUNNING][:ended]
    return current, past


def _running(session, release: Release, settings: Settings, now: datetime) -> ReleaseSummary:
    verdict = verdict_for(session, release, policy_from(settings), now)
    numbers = dict(verdict.numbers)
    if release.mode == judge.SHADOW:  # each side's own misses over the labelled pairs
        pairs = [(a, b) for _, a, b, _ in evidence.shadow_outcomes(session, release) if a is not None]
        numbers.update({"champion labels": len(pairs), "challenger labels": len(pairs),
                        "champion errors": sum(a for a, _ in pairs), "challenger errors": sum(b for _, b in pairs)})
    return _summary(release, now, verdict.decision, verdict.reason, numbers)


def describe(release: Release, now: datetime | None = None) -> ReleaseSummary:
    """``release`` with the evidence stored on it: the final numbers of an ended release, the
    watchdog's latest of a running one (``summaries`` gives a running one's evidence now)."""
    stored = release.evidence or {}
    if release.state == evidence.RUNNING:
        return _summary(release, now or utcnow(), stored.get("decision"), release.verdict_reason or "",
                        stored.get("latest") or {})
    return _summary(release, now or utcnow(), release.state, release.verdict_reason or "", stored.get("final") or {})


def _summary(release: Release, now: datetime, decision: str | None, reason: str, numbers: dict) -> ReleaseSummary:
    left = max((release.bake_until - now).total_seconds() / 60, 0.0) if release.state == evidence.RUNNING else 0.0
    return ReleaseSummary(
        id=release.id, model_name=release.model_name, mode=release.mode,
        challenger_version=release.challenger_version, champion_version=release.champion_version,
        share=release.share, state=release.state, started_at=release.started_at, started_by=release.started_by,
        bake_until=release.bake_until, bake_minutes_left=round(left, 2), ended_at=release.ended_at,
        ended_by=release.ended_by, decision=decision, reason=reason,
        numbers={str(k): v for k, v in numbers.items() if v is None or isinstance(v, (int, float))})


def bucket_seconds(release: Release | ReleaseSummary, now: datetime, points: int = 60) -> int:
    """A bucket size that draws the release's life so far in about ``points`` buckets (at least a minute)."""
    span = ((release.ended_at or now) - release.started_at).total_seconds()
    return max(60, int(math.ceil(span / points / 60)) * 60)


def arms_over_time(settings: Settings, release: Release | ReleaseSummary, bucket: int) -> pd.DataFrame:
    """Both arms per time bucket, long format (``bucket, arm, metric, value, low, high``): quality
    (the share of labels right, with a 95 % Wilson band), latency p95, requests, the challenger's
    traffic share and, for a shadow, how often the two agree."""
    with session_scope(settings.read_url) as session:
        served = pd.DataFrame(evidence.service_rows(session, release), columns=["at", "arm", "latency", "status"])
        if release.mode == judge.CANARY:
            labelled = pd.DataFrame(evidence.canary_outcomes(session, release), columns=["at", "arm", "missed"])
            pairs = pd.DataFrame(columns=["at", "champion", "challenger", "agree"])
        else:
            pairs = pd.DataFrame(evidence.shadow_outcomes(session, release),
                                 columns=["at", "champion", "challenger", "agree"])
            known = pairs.dropna(subset=["champion"])
            labelled = pd.concat([known.assign(arm="champion", missed=known["champion"]),
                                  known.assign(arm="challenger", missed=known["challenger"])])[["at", "arm", "missed"]]
    parts = [_quality(labelled, bucket), _service(served, bucket, release.mode), _agreement(pairs, bucket)]
    parts = [part for part in parts if not part.empty]
    if not parts:
        return pd.DataFrame(columns=["bucket", "arm", "metric", "value", "low", "high"])
    return pd.concat(parts, ignore_index=True).sort_values(["metric", "arm", "bucket"], ignore_index=True)


def _bucketed(frame: pd.DataFrame, bucket: int) -> pd.DataFrame:
    at = pd.to_datetime(frame["at"], utc=True)
    return frame.assign(bucket=at.dt.floor(f"{bucket}s"))


def _quality(labelled: pd.DataFrame, bucket: int) -> pd.DataFrame:
    if labelled.empty:
        return pd.DataFrame()
    grouped = _bucketed(labelled, bucket).groupby(["bucket", "arm"])["missed"].agg(["size", "sum"]).reset_index()
    n, right = grouped["size"].astype(float), grouped["size"] - grouped["sum"].astype(float)
    centre, half = _wilson(right, n)
    return pd.DataFrame({"bucket": grouped["bucket"], "arm": grouped["arm"], "metric": "quality",
                         "value": right / n, "low": centre - half, "high": centre + half})


def _wilson(right: pd.Series, n: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Centre and half-width of the 95 % Wilson score interval of ``right`` successes in ``n``."""
    p, z2 = right / n, Z_95 ** 2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z_95 * ((p * (1 - p) / n + z2 / (4 * n * n)) ** 0.5) / (1 + z2 / n)
    return centre, half


def _service(served: pd.DataFrame, bucket: int, mode: str) -> pd.DataFrame:
    if served.empty:
        return pd.DataFrame()
    grouped = _bucketed(served, bucket).groupby(["bucket", "arm"])
    latency = grouped["latency"].quantile(0.95).rename("value").reset_index().assign(metric="latency p95")
    requests = grouped.size().rename("value").reset_index().assign(metric="requests")
    wide = requests.pivot_table(index="bucket", columns="arm", values="value", aggfunc="sum").fillna(0)
    champion = wide.get("champion", pd.Series(0.0, index=wide.index))
    challenger = wide.get("challenger", pd.Series(0.0, index=wide.index))
    # a canary's share of all requests; a shadow's share of the champion's requests it also scored
    share = (challenger / (champion + challenger) if mode == judge.CANARY else challenger / champion.where(champion > 0))
    shares = share.rename("value").reset_index().assign(arm="challenger", metric="traffic share")
    return pd.concat([latency, requests, shares], ignore_index=True).assign(low=None, high=None)


def _agreement(pairs: pd.DataFrame, bucket: int) -> pd.DataFrame:
    if pairs.empty:
        return pd.DataFrame()
    agreed = _bucketed(pairs, bucket).groupby("bucket")["agree"].mean().rename("value").reset_index()
    return agreed.assign(arm="challenger", metric="agreement", low=None, high=None)


def judge_path(settings: Settings, release: Release | ReleaseSummary, bucket: int) -> pd.DataFrame:
    """The judge's two statistics at the end of each bucket, on the labels until then
    (``bucket, challenger labels, promote evidence, promote needs, abort evidence, abort needs``):
    it promotes when the promote evidence reaches its need (after the bake time and enough labels),
    aborts when the abort evidence reaches its own."""
    policy = policy_from(settings)
    with session_scope(settings.read_url) as session:
        if release.mode == judge.CANARY:
            outcomes = sorted(evidence.canary_outcomes(session, release))
            count, verdict = evidence.arm_counts, judge.judge_canary
        else:
            outcomes = sorted(o for o in evidence.shadow_outcomes(session, release) if o[1] is not None)
            count, verdict = evidence.pair_counts, judge.judge_shadow
    rows, step, index = [], timedelta(seconds=bucket), 0
    end = pd.Timestamp(release.started_at).floor(f"{bucket}s").to_pydatetime() + step
    last = outcomes[-1][0] if outcomes else None
    while last is not None and end - step <= last:
        while index < len(outcomes) and outcomes[index][0] < end:
            index += 1
        numbers = verdict(count(outcomes[:index]), judge.ServiceCounts(), policy, baked=True).numbers
        if "promote evidence" in numbers:
            rows.append({"bucket": end - step, "challenger labels": numbers.get("challenger labels",
                                                                                numbers.get("labelled pairs")),
                         **{k: numbers[k] for k in ("promote evidence", "promote needs", "abort evidence",
                                                    "abort needs")}})
        end += step
    return pd.DataFrame(rows, columns=["bucket", "challenger labels", "promote evidence", "promote needs",
                                       "abort evidence", "abort needs"])

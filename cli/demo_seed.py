"""A realistic monitoring history written straight into Vigil's store, for demos, tests and the
dashboard benchmark.

For each model it tells one story over ``days``: version 1 is champion, version 2 is promoted,
degrades and is rolled back automatically, version 3 is promoted and is champion now; in the last
tenth of the period three features drift. It writes what the monitoring pipeline and the watchdog
would have written: per-window metrics, per-feature drift, registry events, version health, alerts
with their outbox (Slack) messages, and optionally logged predictions. On PostgreSQL the bulk
tables are loaded with COPY (millions of rows in minutes); elsewhere with batched INSERTs.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from monitoring import metric_names
from monitoring.store import history, seeding
from monitoring.store.bulk_load import bulk_append, text_times
from monitoring.store.engine import Session, session_scope, utcnow
from monitoring.store.tables import DriftResult, MetricWindow, Prediction
from monitoring.training.datasets import CATEGORICAL, NUMERIC, generate_features

DRIFTING_FEATURES = ("credit_score", "age", "purpose")
PREDICTION_CHUNK = 250_000
PREDICTION_COLUMNS = ["id", "model_name", "model_version", "created_at", "features", "prediction",
                      "score", "latency_ms", "status", "error", "source"]


@dataclass(frozen=True)
class ChampionSpan:
    """One version serving traffic from ``start`` to ``end``, with its typical accuracy."""

    version: int
    start: datetime
    end: datetime
    accuracy: float = 0.86


@dataclass(frozen=True)
class SeedSpec:
    models: tuple[str, ...] = ("loan-default",)
    days: float = 7.0
    window_minutes: int = 1
    drift_every_minutes: int = 60
    predictions: int = 0  # logged predictions per model
    end: datetime | None = None  # default: now, to the minute
    seed: int = 0


@dataclass
class SeedSummary:
    rows: dict[str, int] = field(default_factory=dict)
    champions: dict[str, int] = field(default_factory=dict)

    def add(self, table: str, count: int) -> None:
        self.rows[table] = self.rows.get(table, 0) + count


def seed(url: str, spec: SeedSpec, progress: Callable[[str], None] = lambda _m: None) -> SeedSummary:
    """Write the whole story for every model of ``spec``; returns the row counts written."""
    if spec.days <= 0 or spec.window_minutes <= 0 or spec.drift_every_minutes <= 0:
        raise ValueError("days, window_minutes and drift_every_minutes must be positive")
    end = (spec.end or utcnow()).replace(second=0, microsecond=0)
    summary = SeedSummary()
    for index, model_name in enumerate(spec.models):
        spans = story(model_name, end, spec.days, summary, url)
        summary.champions[model_name] = spans[-1].version
        drift_from = end - timedelta(days=spec.days / 10)
        progress(f"{model_name}: metric windows and drift results")
        seed_windows(url, model_name, spans, window_minutes=spec.window_minutes,
                     drift_every_minutes=spec.drift_every_minutes, drift_from=drift_from,
                     seed=spec.seed + index, summary=summary)
        if spec.predictions:
            seed_predictions(url, model_name, spans, spec.predictions, seed=spec.seed + index,
                             summary=summary, progress=progress)
    return summary


def story(model_name: str, end: datetime, days: float, summary: SeedSummary, url: str) -> list[ChampionSpan]:
    """Registry events, version health, alerts and outbox rows of the demo story; its spans."""
    start = end - timedelta(days=days)
    promoted_2, degraded_2, rolled_back, promoted_3 = (
        (start + timedelta(days=days * share)).replace(second=0, microsecond=0)
        for share in (0.55, 0.58, 0.60, 0.80))
    spans = [
        ChampionSpan(1, start, promoted_2, 0.86),
        ChampionSpan(2, promoted_2, degraded_2, 0.87),
        ChampionSpan(2, degraded_2, rolled_back, 0.68),
        ChampionSpan(1, rolled_back, promoted_3, 0.86),
        ChampionSpan(3, promoted_3, end, 0.88),
    ]
    registered = {1: start - timedelta(hours=1), 2: promoted_2 - timedelta(minutes=5),
                  3: promoted_3 - timedelta(minutes=5)}
    moves = [
        (start, None, 1, "promote", "cli:demo", "first version: no champion yet", {}),
        (promoted_2, 1, 2, "promote", "dashboard:alice", "accuracy 0.874 beats 0.861 on the same holdout", {}),
        (rolled_back, 2, 1, "auto_rollback", "watchdog",
         "accuracy fell below the champion's baseline for 3 consecutive windows",
         {"numbers": {"accuracy": 0.68, "baseline accuracy": 0.874, "labelled samples": 412}}),
        (promoted_3, 1, 3, "promote", "dashboard:alice", "accuracy 0.879 beats 0.861 on the same holdout", {}),
    ]
    with session_scope(url) as session:
        seeding.reset_control(session, model_name, end)
        _story_versions(session, model_name, registered, moves)
        for version, state, since in ((1, "healthy", promoted_2), (2, "bad", rolled_back),
                                      (3, "healthy", promoted_3 + timedelta(hours=2))):
            history.set_health(session, model_name=model_name, version=version, state=state,
                                  evidence={"windows": 30, "source": "demo"}, now=since)
        alerts = _story_alerts(session, model_name, degraded_2, rolled_back,
                               drift_opened=end - timedelta(days=days / 10) + timedelta(hours=1))
        summary.add("registry_events", len(registered) + len(moves))
        summary.add("alerts", alerts)
    return spans


_EVALS = {1: {"accuracy": 0.861, "f1": 0.71, "roc_auc": 0.91},
          2: {"accuracy": 0.874, "f1": 0.73, "roc_auc": 0.92},
          3: {"accuracy": 0.879, "f1": 0.74, "roc_auc": 0.93}}


def _story_versions(session: Session, model_name: str, registered: dict[int, datetime],
                    moves: list[tuple]) -> None:
    """Each version's registration and training event, then the champion alias's moves."""
    for version, when in registered.items():
        history.upsert_version(session, model_name=model_name, version=version, registered_at=when,
                               run_id=f"demo-run-{version}", eval_metrics=_EVALS[version], now=when)
        history.record_event(session, model_name=model_name, kind="train", actor="cli:demo",
                             reason="scheduled retraining", to_version=version,
                             evidence={"metrics": _EVALS[version]}, now=when)
    for when, before, after, kind, actor, reason, evidence in moves:
        history.record_event(session, model_name=model_name, kind=kind, actor=actor, reason=reason,
                             alias="champion", from_version=before, to_version=after,
                             evidence=evidence, now=when)


def _story_alerts(session: Session, model_name: str, degraded_2: datetime, rolled_back: datetime,
                  drift_opened: datetime) -> int:
    """The degradation and rollback alerts (resolved) and the drift alert (firing); how many."""
    alerts = [
        (f"{model_name}:degradation:2", "degradation", "critical", "accuracy degraded on version 2",
         degraded_2 + timedelta(minutes=20), rolled_back + timedelta(minutes=15),
         {"version": 2, "accuracy": 0.68, "baseline": 0.874}),
        (f"{model_name}:rollback:2", "rollback", "warning", "rolled back automatically to version 1",
         rolled_back, rolled_back + timedelta(minutes=15), {"from version": 2, "to version": 1}),
        (f"{model_name}:drift", "drift", "warning", f"{len(DRIFTING_FEATURES)} features drifted",
         drift_opened, None,
         {"drifted features": ", ".join(DRIFTING_FEATURES), "drift share": 0.21}),
    ]
    for key, kind, severity, title, opened, resolved, facts in alerts:
        seeding.past_alert(session, key=key, model_name=model_name, kind=kind, severity=severity,
                           title=title, facts=facts, opened=opened, resolved=resolved,
                           resolved_facts={"version now": 1})
    return len(alerts)


def seed_windows(
    url: str, model_name: str, spans: list[ChampionSpan], *, window_minutes: int = 1,
    drift_every_minutes: int = 60, drift_from: datetime | None = None, seed: int = 0,
    summary: SeedSummary | None = None,
) -> None:
    """Metric windows (quality, service, process, drift share) and per-feature drift for the spans."""
    rng = np.random.default_rng(seed)
    summary = summary if summary is not None else SeedSummary()
    for span in spans:
        windows = _metric_frame(model_name, span, window_minutes, drift_from, rng)
        summary.add("metric_windows", _write(url, MetricWindow, windows))
        drift = _drift_frame(model_name, span, drift_every_minutes, drift_from, rng)
        summary.add("drift_results", _write(url, DriftResult, drift))


def _starts(span: ChampionSpan, minutes: int) -> pd.DatetimeIndex:
    """Window starts inside the span, on a fixed grid of ``minutes`` (as a scheduler would run)."""
    freq = f"{minutes}min"
    return pd.date_range(pd.Timestamp(span.start).ceil(freq), span.end, freq=freq, inclusive="left")


def _metric_frame(model_name: str, span: ChampionSpan, minutes: int, drift_from: datetime | None,
                  rng: np.random.Generator) -> pd.DataFrame:
    starts = _starts(span, minutes)
    n = len(starts)
    if n == 0:
        return pd.DataFrame()
    hour = (starts.hour + starts.minute / 60).to_numpy()
    daily = 1 + 0.5 * np.sin((hour - 9) / 24 * 2 * np.pi)  # traffic peaks in the afternoon
    rps = np.clip(4 * daily + rng.normal(0, 0.4, n), 0.2, None)
    requests = np.round(rps * 60 * minutes)
    labelled = rng.poisson(np.clip(0.12 * requests, 1, None))
    accuracy = np.clip(span.accuracy + rng.normal(0, 0.02, n), 0, 1)
    p50 = 35 + 10 * daily + rng.gamma(2, 2, n)
    drifting = (starts >= drift_from) if drift_from is not None else np.zeros(n, dtype=bool)
    values = {
        metric_names.ACCURACY: (accuracy, labelled),
        metric_names.F1: (np.clip(accuracy - 0.14 + rng.normal(0, 0.02, n), 0, 1), labelled),
        metric_names.ROC_AUC: (np.clip(accuracy + 0.05 + rng.normal(0, 0.01, n), 0, 1), labelled),
        metric_names.LATENCY_P50: (p50, requests),
        metric_names.LATENCY_P95: (p50 * 2.6 + rng.gamma(2, 5, n), requests),
        metric_names.LATENCY_P99: (p50 * 4.5 + rng.gamma(2, 12, n), requests),
        metric_names.ERROR_RATE: (rng.beta(1, 600, n), requests),
        metric_names.THROUGHPUT: (rps, requests),
        metric_names.REQUESTS: (requests, requests),
        metric_names.CPU_PERCENT: (np.clip(12 + 6 * daily + rng.normal(0, 2, n), 0, 100), requests),
        metric_names.MEMORY_MB: (340 + 0.2 * np.arange(n) % 60 + rng.normal(0, 3, n), requests),
        metric_names.DRIFT_SHARE: (np.where(drifting, 3 / 14, 0.0) + rng.binomial(1, 0.02, n) / 14, requests),
    }
    computed = starts + pd.Timedelta(minutes=minutes, seconds=20)
    return pd.concat([
        pd.DataFrame({"model_name": model_name, "model_version": span.version, "window_start": starts,
                      "window_end": starts + pd.Timedelta(minutes=minutes), "metric": metric,
                      "value": value, "sample_count": count.astype(int), "computed_at": computed})
        for metric, (value, count) in values.items()
    ], ignore_index=True)


def _drift_frame(model_name: str, span: ChampionSpan, minutes: int, drift_from: datetime | None,
                 rng: np.random.Generator) -> pd.DataFrame:
    starts = _starts(span, minutes)
    if len(starts) == 0:
        return pd.DataFrame()
    frames = []
    for feature in [*NUMERIC, *CATEGORICAL]:
        method = "wasserstein" if feature in NUMERIC else "jensenshannon"
        score = rng.gamma(2, 0.02, len(starts))
        if drift_from is not None and feature in DRIFTING_FEATURES:
            score = np.where(starts >= drift_from, score + 0.15, score)
        frames.append(pd.DataFrame({
            "model_name": model_name, "model_version": span.version, "window_start": starts,
            "window_end": starts + pd.Timedelta(minutes=minutes), "feature": feature, "method": method,
            "score": score, "threshold": 0.1, "drifted": score >= 0.1, "reference_size": 50_000,
            "current_size": 240 * minutes, "computed_at": starts + pd.Timedelta(minutes=minutes, seconds=40),
            "report_path": None,
        }))
    return pd.concat(frames, ignore_index=True)


def seed_predictions(
    url: str, model_name: str, spans: list[ChampionSpan], total: int, *, seed: int = 0,
    summary: SeedSummary | None = None, progress: Callable[[str], None] = lambda _m: None,
) -> None:
    """``total`` logged predictions spread evenly over the spans, served by each span's version.

    Rows are drawn from a pool of pre-rendered (features, outcome, latency) tails, so building a
    chunk costs a few vectorised string joins and the time goes into the load itself.
    """
    start, end = spans[0].start, spans[-1].end
    tails = _prediction_tails(seed)
    rng = np.random.default_rng(seed)
    step_ns = (end - start) / total / pd.Timedelta(nanoseconds=1)
    boundaries = pd.DatetimeIndex([s.end for s in spans])
    versions = np.array([str(s.version) for s in spans], dtype=object)
    written = 0
    for first in range(0, total, PREDICTION_CHUNK):
        count = min(PREDICTION_CHUNK, total - first)
        index = np.arange(first, first + count)
        created = pd.DatetimeIndex(pd.Timestamp(start) + pd.to_timedelta(index * step_ns, unit="ns"))
        served = versions[np.minimum(boundaries.searchsorted(created, side="right"), len(spans) - 1)]
        frame = pd.DataFrame({
            "id": [f"{seed:08x}-0000-4000-8000-{i:012x}" for i in index],
            "model_name": model_name,
            "model_version": served,
            "created_at": created,
        })
        picks = rng.integers(0, len(tails), count)
        bulk_append(url, Prediction, columns=PREDICTION_COLUMNS,
                    frame=lambda frame=frame, served=served, picks=picks: frame.assign(
                        model_version=served.astype(int),
                        **tails.iloc[picks].reset_index(drop=True).drop(columns="csv")),
                    csv_text=lambda frame=frame, served=served, picks=picks: _csv_lines(
                        frame, served, model_name, tails["csv"].to_numpy(object)[picks]))
        written += count
        progress(f"{model_name}: {written:,} / {total:,} predictions")
    if summary is not None:
        summary.add("predictions", written)


def _prediction_tails(seed: int, size: int = 5_000) -> pd.DataFrame:
    """A pool of logged outcomes: features (as JSON), prediction, score, latency, status, error."""
    rng = np.random.default_rng(seed + 11)
    pool = generate_features(size, seed)
    score = rng.beta(2, 6, size)
    errors = rng.random(size) < 0.002
    tails = pd.DataFrame({
        "features": [json.dumps(row, separators=(",", ":")) for row in pool.to_dict("records")],
        "prediction": np.where(errors, None, np.where(score >= 0.5, "1", "0")),
        "score": np.where(errors, np.nan, score),
        "latency_ms": rng.gamma(3, 15, size),
        "status": np.where(errors, "error", "ok"),
        "error": np.where(errors, "model raised ValueError", None),
        "source": "api",
    })
    buffer = io.StringIO()
    tails.to_csv(buffer, index=False, header=False)
    tails["csv"] = buffer.getvalue().splitlines()
    tails["features"] = [json.loads(text) for text in tails["features"]]
    return tails


def _csv(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _csv_lines(frame: pd.DataFrame, served: np.ndarray, model_name: str, tails: np.ndarray) -> str:
    """COPY-ready CSV of the chunk: id, model, version and time, then the pre-rendered tails."""
    lines = (frame["id"].to_numpy(object) + f",{_csv(model_name)}," + served + ","
             + text_times(frame)["created_at"].to_numpy(object) + "," + tails)
    return "\n".join(lines) + "\n"


def _write(url: str, table, frame: pd.DataFrame) -> int:
    """Append ``frame`` to ``table``: COPY on PostgreSQL, batched INSERTs elsewhere."""
    if frame.empty:
        return 0
    bulk_append(url, table, frame)
    return len(frame)


def main(argv: list[str] | None = None) -> None:
    """``python -m cli.demo_seed``: seed the store of VIGIL_DATABASE_URL for a demo."""
    import argparse

    from monitoring.settings import get_settings
    from monitoring.store.migrations import upgrade

    parser = argparse.ArgumentParser(description="Seed Vigil's store with a demo monitoring history.")
    parser.add_argument("--models", default=None, help="comma-separated (default: VIGIL_MODEL_NAME)")
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--drift-every-minutes", type=int, default=60)
    parser.add_argument("--predictions", type=int, default=10_000, help="per model")
    args = parser.parse_args(argv)
    url = get_settings().database_url
    upgrade(url)
    models = tuple(args.models.split(",")) if args.models else (get_settings().model_name,)
    summary = seed(url, SeedSpec(models=models, days=args.days, drift_every_minutes=args.drift_every_minutes,
                                 predictions=args.predictions), progress=print)
    print(", ".join(f"{table}: {count:,}" for table, count in summary.rows.items()))


if __name__ == "__main__":
    main()
